"""The annotation workbench: sampling reports into tasks, the web app radiologists label in,
agreement and adjudication, and the ``rrief annotate`` command. The store it writes lives in
:mod:`extractors.gold.annotations`."""
