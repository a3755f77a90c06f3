"""The research warehouse: tables (``models``), migrations, engines, loaders and roles.

Import the submodules directly (``extractors.warehouse.load`` …); this package stays light so
that importing the row models does not pull in SQLAlchemy.
"""
