"""Keyed pseudonyms: HMAC-SHA256 of an identifier under a secret key and a namespace.

The same id always maps to the same pseudonym (so reports of one patient link up), nobody
without the key can reverse or recompute it, and namespaces keep a patient id and an accession
number that happen to be equal from colliding. The key comes from ``RRIEF_PSEUDONYM_KEY`` (or
the Airflow variable ``rrief_pseudonym_key`` in production), is chosen in one place
(:func:`choose_key`) and is never logged or shown in a repr.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

MIN_KEY_BYTES = 32  # the number .env.example and README state too (tests/test_privacy.py)
# For the demo and tests ONLY: public, so pseudonyms made with it protect nothing.
DEMO_PSEUDONYM_KEY = "rrief-DEMO-pseudonym-key-public-never-use-with-real-patient-data"

NAMESPACE_PATIENT = "patient"
NAMESPACE_ACCESSION = "accession"
NAMESPACE_REPORT = "report"
_SEP = "\x1f"  # unit separator: cannot appear in a namespace or a stripped identifier part


class PseudonymKeyError(ValueError):
    """The HMAC key is missing or too short (the message never contains the key)."""


def load_key(key: str | bytes | None) -> bytes:
    """The key as bytes; refuse a missing or weak key (the message never shows the key)."""
    if key is None:
        key = b""
    raw = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    if not raw:
        raise PseudonymKeyError(
            "no pseudonymization key: set RRIEF_PSEUDONYM_KEY (a secret of at least "
            f"{MIN_KEY_BYTES} bytes) before writing to the warehouse"
        )
    if len(raw) < MIN_KEY_BYTES:
        raise PseudonymKeyError(
            f"pseudonymization key too short ({len(raw)} bytes); use at least {MIN_KEY_BYTES}"
        )
    return raw


KeySource = Callable[[], "str | None"]


def choose_key(configured: str | None, *fallbacks: KeySource) -> str:
    """The pseudonym key: ``configured`` (``RRIEF_PSEUDONYM_KEY``) when set, else the first of
    ``fallbacks`` that yields one (the Airflow variable; the demo's public key); validated.

    The one place the precedence is decided, for the DAG tasks, the CLI and the demo.
    """
    key = configured
    sources = iter(fallbacks)
    while not key and (source := next(sources, None)) is not None:
        key = source()
    load_key(key)  # refuse missing or short keys here, before any record is read
    return str(key)


def pseudonymize(value: str, key: str | bytes, namespace: str) -> str:
    """64 hex digits: HMAC-SHA256(key, namespace + SEP + value). Surrounding spaces ignored."""
    if not namespace or _SEP in namespace:
        raise ValueError("namespace must be a non-empty name without control characters")
    value = value.strip()
    if not value:
        raise ValueError(f"cannot pseudonymize an empty {namespace} identifier")
    message = f"{namespace}{_SEP}{value}".encode()
    return hmac.new(load_key(key), message, hashlib.sha256).hexdigest()


class Pseudonymizer:
    """Holds the key once and derives the warehouse keys of a report."""

    __slots__ = ("_key",)

    def __init__(self, key: str | bytes) -> None:
        self._key = load_key(key)

    def __repr__(self) -> str:
        return "Pseudonymizer(key=<hidden>)"

    def patient_key(self, patient_id: str) -> str:
        return pseudonymize(patient_id, self._key, NAMESPACE_PATIENT)

    def accession_key(self, accession_number: str) -> str:
        return pseudonymize(accession_number, self._key, NAMESPACE_ACCESSION)

    def report_key(self, source: str, accession_number: str) -> str:
        """Accession numbers are unique per source only, so the source is part of the key."""
        if _SEP in source:
            raise ValueError("source name contains a control character")
        return pseudonymize(
            f"{source.strip()}{_SEP}{accession_number.strip()}", self._key, NAMESPACE_REPORT
        )
