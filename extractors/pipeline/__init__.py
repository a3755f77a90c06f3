"""The functions the ``rrief_daily`` DAG tasks call; all pipeline logic lives here, not in dags/.

``fetch_window`` (RIS → pseudonymize → raw.reports, with a look-back for late reports),
``reconcile`` (RIS vs warehouse counts per day), ``plan_batches`` (small descriptors, never
report text), ``extract_batch`` (extract → validate → load, one transaction), ``run_dbt`` and
``record_failure`` (the failure callback); ``tasks`` holds the DAG task bodies.
"""
