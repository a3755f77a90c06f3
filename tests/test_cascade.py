"""The rules→LLM cascade: the routing policy and which backend decided each report."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from extractors.extract.base import Extractor, Outcome
from extractors.extract.cascade import CascadeExtractor, RoutingPolicy, route
from extractors.extract.registry import BackendError, make_extractor
from extractors.results import ExtractorInfo, ReportInput
from extractors.schemas import get_schema

CXR = get_schema("cxr")
PLAIN = "FINDINGS: Heart size is normal. No pleural effusion or pneumothorax."


def _labels(**values: str) -> dict:
    return CXR.empty_labels() | {k.replace("_", " "): v for k, v in values.items()}


def test_plain_confident_report_stays_with_the_rules() -> None:
    labels = _labels(Cardiomegaly="negative", Pleural_Effusion="negative", Pneumothorax="negative")
    assert route(CXR, PLAIN, labels) == []


def test_uncertain_label_routes() -> None:
    sure = {"Cardiomegaly": "negative", "Pleural_Effusion": "negative", "Pneumothorax": "negative"}
    hedged = _labels(Pneumonia="uncertain", **sure)
    assert route(CXR, PLAIN, hedged) == ["uncertain"]
    assert route(CXR, PLAIN, hedged, RoutingPolicy(uncertain=False)) == []


def test_a_matched_but_unresolved_finding_term_routes() -> None:
    text = "FINDINGS: Calcified granuloma in the right upper lobe, a nodule."
    assert "Lung Lesion" in __import__("extractors.rules.cxr", fromlist=["x"]).mentioned_findings(
        text
    )
    assert route(CXR, text, CXR.empty_labels()) == ["unresolved"]  # the term, no label
    assert route(CXR, text, _labels(Lung_Lesion="positive")) == []


def test_long_text_and_rules_errors_route() -> None:
    long_text = "FINDINGS: " + "Stable appearance. " * 80
    assert route(CXR, long_text, CXR.empty_labels()) == ["long"]
    assert route(CXR, long_text, CXR.empty_labels(), RoutingPolicy(max_chars=None)) == []
    assert route(CXR, PLAIN, None) == ["rules_error"]


class _FakeLLM(Extractor):
    """Stands in for the LLM stage (its own tests cover it): Edema positive, or a failure."""

    backend = "hf"

    def __init__(self, fail: bool = False) -> None:
        super().__init__(CXR)
        self.fail = fail
        self.seen: list[str] = []

    @property
    def version(self) -> str:
        return "fake@1"

    def extract_many(self, reports: Sequence[ReportInput]) -> list[Outcome]:
        self.seen.extend(r.report_id for r in reports)
        if self.fail:
            return [RuntimeError("model down") for _ in reports]
        return [(_labels(Edema="positive"), {}) for _ in reports]


def test_cascade_output_names_the_backend_that_decided() -> None:
    rules = make_extractor("rules", CXR)
    llm = _FakeLLM()
    cascade = CascadeExtractor(CXR, rules, llm, RoutingPolicy())
    reports = [
        ReportInput(report_id="plain", text=PLAIN),
        ReportInput(report_id="hedged", text="IMPRESSION: Possible pneumonia."),
    ]
    results = cascade.extract_batch(reports)
    assert llm.seen == ["hedged"]
    assert [r.extractor.backend for r in results] == ["rules", "hf"]
    assert results[1].labels["Edema"] == "positive" and results[1].extractor == ExtractorInfo(
        backend="hf", version="fake@1"
    )
    assert (cascade.seen, cascade.routed) == (2, 1)


def test_an_llm_failure_keeps_the_rules_labels() -> None:
    cascade = CascadeExtractor(
        CXR, make_extractor("rules", CXR), _FakeLLM(fail=True), RoutingPolicy()
    )
    (result,) = cascade.extract_batch(
        [ReportInput(report_id="h", text="IMPRESSION: Possible pneumonia.")]
    )
    assert result.status == "ok" and result.extractor.backend == "rules"
    assert result.labels["Pneumonia"] == "uncertain"


def test_cascade_options_are_checked() -> None:
    with pytest.raises(BackendError, match="llm_backend"):
        make_extractor("cascade", CXR, llm_backend="rules")
    with pytest.raises(BackendError, match="needs --adapter"):
        make_extractor("cascade", CXR)
