"""RIS connectors: one interface (``RISConnector.fetch(start, end)``), three sources.

``sql.SqlConnector`` (a query or view over any SQLAlchemy URL), ``fhir.FhirConnector`` /
``fhir.FhirBundleConnector`` (R4 DiagnosticReport over REST or from Bundle files) and
``hl7v2.Hl7FolderConnector`` (ORU^R01 messages from a drop folder).
"""

from extractors.ris.base import ReportRecord, RISConnector, RISRecordError

__all__ = ["RISConnector", "RISRecordError", "ReportRecord"]
