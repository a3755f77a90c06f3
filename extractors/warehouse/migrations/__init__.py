"""Alembic migration environment of the warehouse (run it with ``extractors.warehouse.migrate``)."""
