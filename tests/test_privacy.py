"""Keyed pseudonyms, identifier scrubbing, and the record → warehouse-row step."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from extractors.privacy import (
    DEMO_PSEUDONYM_KEY,
    Pseudonymizer,
    PseudonymKeyError,
    choose_key,
    load_key,
    pseudonymize,
    pseudonymize_record,
    scrub_identifiers,
)
from extractors.ris.base import ReportRecord
from extractors.settings import get_settings

KEY = "unit-test-key-0123456789abcdef-0123"


def test_pseudonym_is_the_keyed_hmac_of_namespace_and_value() -> None:
    got = pseudonymize("  MRN00123 ", KEY, "patient")
    expected = hmac.new(KEY.encode(), b"patient\x1fMRN00123", hashlib.sha256).hexdigest()
    assert got == expected and len(got) == 64
    assert pseudonymize("MRN00123", KEY, "patient") == got  # stable, spaces ignored
    assert pseudonymize("MRN00123", KEY, "accession") != got  # namespaces do not collide
    assert pseudonymize("MRN00123", KEY + "x", "patient") != got  # the key matters
    assert pseudonymize("MRN00124", KEY, "patient") != got


def test_bad_input_is_refused_precisely() -> None:
    with pytest.raises(ValueError, match="empty patient identifier"):
        pseudonymize("   ", KEY, "patient")
    with pytest.raises(PseudonymKeyError, match="too short"):
        pseudonymize("x", "short", "patient")
    with pytest.raises(ValueError, match="namespace"):
        pseudonymize("x", KEY, "")


def test_key_comes_from_settings_first_and_is_never_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "s3cret-from-the-environment-0123456789"
    monkeypatch.setenv("RRIEF_PSEUDONYM_KEY", secret)

    def must_not_be_asked() -> str:
        raise AssertionError("a fallback was consulted although RRIEF_PSEUDONYM_KEY is set")

    key = choose_key(get_settings().pseudonym_key, must_not_be_asked)
    assert key == secret and load_key(key) == secret.encode()
    p = Pseudonymizer(key)
    assert p.patient_key("P1") == pseudonymize("P1", secret, "patient")
    assert secret not in repr(p) and secret not in repr(get_settings())
    monkeypatch.setenv("RRIEF_PSEUDONYM_KEY", "")
    with pytest.raises(PseudonymKeyError, match="RRIEF_PSEUDONYM_KEY") as err:
        choose_key(get_settings().pseudonym_key, lambda: None)
    assert secret not in str(err.value)
    with pytest.raises(PseudonymKeyError, match="too short"):
        choose_key("", lambda: "short")


def test_key_fallbacks_are_asked_in_order() -> None:
    asked: list[str] = []

    def source(name: str, value: str | None):
        def get() -> str | None:
            asked.append(name)
            return value

        return get

    key = choose_key(
        "", source("airflow", None), source("demo", DEMO_PSEUDONYM_KEY), source("never", "x" * 20)
    )
    assert key == DEMO_PSEUDONYM_KEY and asked == ["airflow", "demo"]


def test_report_key_depends_on_source_and_accession() -> None:
    p = Pseudonymizer(KEY)
    assert p.report_key("ris-a", "ACC1") == p.report_key("ris-a", " ACC1")
    assert p.report_key("ris-a", "ACC1") != p.report_key("ris-b", "ACC1")
    assert p.report_key("ris-a", "ACC1") != p.accession_key("ACC1")


def test_scrub_replaces_own_ids_and_labelled_numbers_only() -> None:
    text = (
        "Accession: A7788991. Patient MRN: 00456789. Compared with 2024-01-03.\n"
        "Follow-up for p4455667. Nodule 7 mm, series 3 image 45. ACC A7788991x stays a word."
    )
    out, n = scrub_identifiers(text, ["p4455667", "7"])
    assert out == (
        "Accession: [ID]. Patient MRN: [ID]. Compared with 2024-01-03.\n"
        "Follow-up for [ID]. Nodule 7 mm, series 3 image 45. ACC A7788991x stays a word."
    )
    assert n == 3


def test_record_becomes_a_row_without_raw_identifiers() -> None:
    rec = ReportRecord(
        source="ris-a",
        patient_id="PAT-4455667",
        accession_number="ACC-7788991",
        modality="dx",
        procedure="XR CHEST 2 VIEWS",
        report_final_at=datetime(2025, 1, 2, 10, tzinfo=UTC),
        text="EXAM: ACC-7788991\nFINDINGS: No effusion for PAT-4455667.",
    )
    assert "4455667" not in repr(rec) and "No effusion" not in repr(rec)
    p = Pseudonymizer(DEMO_PSEUDONYM_KEY)
    row = pseudonymize_record(rec, p)
    dumped = row.model_dump_json()
    assert "4455667" not in dumped and "7788991" not in dumped
    assert row.report_text == "EXAM: [ID]\nFINDINGS: No effusion for [ID]."
    assert row.content_sha256 == hashlib.sha256(row.report_text.encode()).hexdigest()
    assert row.patient_key == p.patient_key("PAT-4455667")
    assert row.report_key == p.report_key("ris-a", "ACC-7788991")
    assert (row.modality, row.report_type) == ("DX", "cxr")


def test_ascii_fast_path_replaces_exactly_what_the_token_regex_does() -> None:
    import random

    from extractors.privacy.scrub import PLACEHOLDER, _replace_token, _token_pattern

    rng = random.Random(0)
    alphabet = "ab1 .-_:/\nAB"
    for _ in range(3000):
        value = "".join(rng.choice("ab1AB-") for _ in range(rng.randint(1, 4)))
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        assert _replace_token(text, value) == _token_pattern(value).subn(PLACEHOLDER, text)
    # non-ASCII text takes the regex path
    assert _replace_token("Patiént ab12 ß", "AB12") == ("Patiént [ID] ß", 1)


def test_the_documented_minimum_key_length_is_the_one_the_code_enforces() -> None:
    from pathlib import Path

    from extractors.privacy.pseudonym import MIN_KEY_BYTES

    root = Path(__file__).resolve().parents[1]
    env_example = (root / ".env.example").read_text(encoding="utf-8")
    readme = (root / "README.md").read_text(encoding="utf-8")
    key_doc = env_example[: env_example.index("RRIEF_PSEUDONYM_KEY=")].rsplit("\n\n", 1)[-1]
    assert f"at least {MIN_KEY_BYTES} bytes" in key_doc
    row = next(line for line in readme.splitlines() if line.startswith("| `RRIEF_PSEUDONYM_KEY`"))
    assert f"at least {MIN_KEY_BYTES} bytes" in row
    load_key("k" * MIN_KEY_BYTES)
    with pytest.raises(PseudonymKeyError, match=f"use at least {MIN_KEY_BYTES}"):
        load_key("k" * (MIN_KEY_BYTES - 1))
