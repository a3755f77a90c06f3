"""The adapter lifecycle: the registry (``ops.adapters``), gold snapshots, the promotion gate,
training and evaluation of candidates, and re-extraction of the warehouse after a promotion.
The ``rrief_train`` and ``rrief_reextract`` DAGs call :mod:`extractors.lifecycle.tasks`."""
