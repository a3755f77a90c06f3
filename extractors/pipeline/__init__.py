"""The functions the ``rrief_daily`` DAG tasks call; all pipeline logic lives here, not in dags/.

``fetch_window`` (RIS → pseudonymize → raw.reports), ``plan_batches`` (small descriptors,
never report text), ``extract_batch`` (extract → validate → load, one transaction),
``run_dbt`` and ``record_failure`` (the failure callback).
"""
