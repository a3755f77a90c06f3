"""Privacy: keyed HMAC pseudonyms for identifiers and identifier scrubbing for text.

``pseudonymize_record`` is where raw patient ids and accession numbers stop; the warehouse
loaders only accept its output.
"""

from extractors.privacy.pseudonym import (
    DEMO_PSEUDONYM_KEY,
    Pseudonymizer,
    PseudonymKeyError,
    choose_key,
    load_key,
    pseudonymize,
)
from extractors.privacy.records import content_sha256, pseudonymize_record
from extractors.privacy.scrub import scrub_identifiers

__all__ = [
    "DEMO_PSEUDONYM_KEY",
    "PseudonymKeyError",
    "Pseudonymizer",
    "choose_key",
    "content_sha256",
    "load_key",
    "pseudonymize",
    "pseudonymize_record",
    "scrub_identifiers",
]
