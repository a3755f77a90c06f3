"""Decoding, section detection and sentence offsets on awkward real-world text."""

from __future__ import annotations

from extractors.text import Document, decode_report, find_sections, split_sentences


def _check_offsets(text: str) -> None:
    for s in split_sentences(text):
        assert text[s.start : s.end] == s.text
        assert s.text == s.text.strip() and s.text


def test_sections_detected_case_insensitively() -> None:
    text = "indication: cough\ncomparison: none\nfindings: Lungs clear.\nimpression: normal."
    names = [s.name for s in find_sections(text)]
    assert names == ["indication", "comparison", "findings", "impression"]
    upper = "FINDINGS: LUNGS CLEAR. IMPRESSION: NORMAL CHEST."
    sections = find_sections(upper)
    assert [s.name for s in sections] == ["findings", "impression"]
    assert sections[1].text(upper).strip() == "NORMAL CHEST."


def test_report_without_headers_is_one_preamble_section() -> None:
    text = "Heart size normal. No pleural effusion."
    sections = find_sections(text)
    assert [(s.name, s.start, s.end) for s in sections] == [("preamble", 0, len(text))]
    assert [s.section for s in split_sentences(text)] == ["preamble", "preamble"]


def test_sentences_keep_decimals_abbreviations_and_masks() -> None:
    text = "FINDINGS: A 2.5 cm nodule, e.g. in the XXXX lobe. No effusion; no pneumothorax.\nIMPRESSION: Nodule."
    sentences = [s.text for s in split_sentences(text)]
    assert sentences == [
        "A 2.5 cm nodule, e.g. in the XXXX lobe.",
        "No effusion;",
        "no pneumothorax.",
        "Nodule.",
    ]
    _check_offsets(text)


def test_headers_are_not_sentences_and_sections_are_assigned() -> None:
    text = "FINDINGS: Heart normal. IMPRESSION: No acute disease."
    sents = split_sentences(text)
    assert [(s.text, s.section) for s in sents] == [
        ("Heart normal.", "findings"),
        ("No acute disease.", "impression"),
    ]


def test_windows_line_endings_and_bad_bytes_are_normalized_and_flagged() -> None:
    raw = "FINDINGS: Heart normal.\r\nIMPRESSION: Clear \xff lungs.".encode("latin-1")
    decoded = decode_report(raw)
    assert "\r" not in decoded.text
    assert decoded.flags == ["invalid_utf8_replaced"]
    assert "\ufffd" in decoded.text
    _check_offsets(decoded.text)


def test_nul_bytes_are_replaced_not_dropped() -> None:
    decoded = decode_report("No\x00 effusion.")
    assert decoded.text == "No  effusion." and "nul_bytes_replaced" in decoded.flags


def test_long_report_is_not_truncated() -> None:
    text = "FINDINGS: " + " ".join(f"Sentence number {i} is normal." for i in range(20_000))
    doc = Document.from_text(text)
    assert len(doc.sentences) == 20_000
    assert doc.sentences[-1].end == len(text)


def test_other_headers_end_the_previous_section() -> None:
    text = (
        "INDICATION: Screening.\nBREAST COMPOSITION: Heterogeneously dense.\nIMPRESSION: BI-RADS 1."
    )
    sents = split_sentences(text)
    assert [(s.text, s.section) for s in sents] == [
        ("Screening.", "indication"),
        ("Heterogeneously dense.", "other"),
        ("BI-RADS 1.", "impression"),
    ]
