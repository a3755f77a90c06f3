"""Rule extractor for chest X-ray reports (schema ``cxr``): the 14 CheXpert findings.

For each sentence of the findings/impression (or of a report without headers) the rules find
*mentions* of each finding with word-boundary regexes, ask :mod:`extractors.rules.scope` whether
each mention is affirmed, denied or hedged, and aggregate per finding with the precedence
``positive > uncertain > negative`` (a finding stated anywhere beats a hedge, which beats a
denial). *Normal statements* ("heart size is normal", "lungs are clear", "costophrenic angles
are sharp") count as denials of their findings. No Finding follows the CheXpert rule; the
hierarchy (e.g. Edema implies Lung Opacity) is NOT applied. The full semantics are in
``docs/label-semantics.md``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from extractors.extract.base import EvidenceMap, Labels
from extractors.results import Evidence
from extractors.rules.base import RuleExtractor, evidence_of
from extractors.rules.patterns import PatternSet, sentence_cache
from extractors.rules.scope import Assertion, analyze
from extractors.text.document import Document
from extractors.text.sentences import Sentence

NO_FINDING = "No Finding"
SUPPORT_DEVICES = "Support Devices"

# Sections whose sentences describe the request or the history, not this exam.
SKIPPED_SECTIONS = frozenset({"indication", "comparison", "technique"})

_PRECEDENCE: dict[str, int] = {"positive": 3, "uncertain": 2, "negative": 1}


@dataclass(frozen=True)
class MentionRule:
    """A finding's phrase. ``head`` names the group scope is checked on (default: the match).

    ``fixed`` gives the assertion of *normal statements* ("heart size is normal"): they deny the
    finding without a negation cue, so scope is not consulted (a cue elsewhere in the sentence
    must not turn "heart size is normal" into a finding). ``sign_only`` marks a non-specific
    sign ("blunted costophrenic angle"): affirmed, it makes the finding uncertain, not positive.
    ``unless``: context checks (sentence text, match) that make a match no mention of the
    finding at all ("lytic lesion of a rib" is no Lung Lesion).
    """

    finding: str
    regex: re.Pattern[str]
    fixed: Assertion | None = None
    sign_only: bool = False
    unless: tuple[Callable[[str, re.Match[str]], bool], ...] = ()


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w-])(?:{pattern})(?![\w-])", re.IGNORECASE)


# A short gap of words inside one clause (no punctuation that ends a clause).
_GAP = r"(?:\s+[\w/-]+){0,4}?\s+"
_HEART = r"(?:heart|cardiac(?:\s+(?:silhouette|shadow|size|contour|contours|diameter))?)"
_NORMAL = r"(?:normal|within\s+normal\s+limits|unremarkable|not\s+enlarged)"
# A gap that may not contain words describing an abnormal heart.
_CLEAN_GAP = (
    r"(?:(?!enlarg|borderline|upper|top|large|increas|prominen|\bbut\b|cardiomegaly)[^;:]){0,100}?"
)

# --- context that makes a lesion or opacity word no finding of the lung ---------------------
# Bones and soft tissues in view: a lesion there is no Lung Lesion ("lytic lesion of the left
# humerus", "rib lesion", "soft tissue mass of the chest wall", "osseous metastases").
_SITE = (
    r"(?:ribs?|costal|humer(?:us|al|i)|clavic(?:le|les|ular)|scapula(?:e|r)?|spine|spinal|"
    r"vertebra(?:e|l)?|sternum|sternal|shoulders?|glenoid|acromi(?:on|al)|bones?|bony|osseous|"
    r"skeletal|skin|cutaneous|subcutaneous|soft[\s-]tissues?|chest\s+wall|breasts?|nipples?|"
    r"axilla(?:e|ry)?|neck|thyroid|liver|hepatic|kidneys?|renal|spleen|splenic|adrenal|"
    r"abdomen|abdominal|stomach|gastric)"
)
# Words that may stand between a preposition and the site ("of the left 6th posterior rib").
_SITE_MODIFIER = (
    r"(?:left|right|bilateral|upper|lower|mid|middle|anterior|posterior|lateral|medial|"
    r"proximal|distal|inferior|superior|(?:mid|upper|lower)?-?(?:thoracic|lumbar|cervical)|"
    r"\d+(?:st|nd|rd|th)?|first|"
    r"second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|[tlc]\d+|xxxx)"
)
_SITE_AFTER_RE = re.compile(
    r"\s*(?:\([^()]*\)\s*)?,?\s*(?:(?:is|are|seen|noted|identified|located|present)\s+)?"
    r"(?:of|in|within|involving|along|at|on|to|arising\s+from)\s+(?:the\s+|a\s+)?"
    r"(?:" + _SITE_MODIFIER + r"[\s,-]+){0,3}" + _SITE + r"(?![\w-])",
    re.IGNORECASE,
)
_SITE_BEFORE_RE = re.compile(
    r"(?<![\w-])"
    + _SITE
    + r"(?:\s+(?:head|shaft|body|bodies|neck|tissue|wall))?\s+(?:[\w-]+\s+)?$",
    re.IGNORECASE,
)
# A density the same clause explains as something that is no lung lesion: "nodular opacity
# may represent an overlying lead", "... consistent with granulomatous disease", "likely a
# healing fracture", "a nipple shadow".
_EXPLAIN_LINK = (
    r"represents?|representing|reflects?|reflecting|due\s+to|related\s+to|secondary\s+to|"
    r"caused\s+by|attribut(?:able|ed)\s+to|consistent\s+with|compatible\s+with|"
    r"in\s+keeping\s+with|suggestive\s+of|suggesting|characteristic\s+of|typical\s+of|"
    r"corresponds?\s+to|corresponding\s+to|likely|probably|possibly|presumably|"
    r"(?:is|are)\s+an?|which\s+(?:is|are)|(?:may|could|might)\s+be"
)
_NOT_A_LESION = (
    r"(?:rib\s+)?fractures?|callus|artifacts?|artefacts?|overlying|superimposed|"
    r"superimposition|summation|overlap(?:ping)?|composite|nipples?|"
    r"(?:telemetry|ecg|ekg|monitor(?:ing)?)\s+(?:leads?|wires?|pads?|electrodes?)|electrodes?|"
    r"buttons?|snaps?|clothing|hair|braids?|skin\s+folds?|(?P<granuloma>granulom(?:a|as|ata|atous))|"
    r"calcified\s+(?:lymph\s+)?nodes?|vessels?\s+(?:seen\s+)?end[\s-]on|end[\s-]on\s+vessels?|"
    r"vascular\s+(?:shadows?|structures?|confluence)|bone\s+islands?|enostos(?:is|es)|"
    r"costochondral|osteophytes?"
)
_EXPLAINED_RE = re.compile(
    r"(?:(?![;:]|\b(?:but|however|versus|vs)\b).){0,80}?(?<![\w-])(?:"
    + _EXPLAIN_LINK
    + r")\s+(?:[\w-]+\s+){0,4}?(?:"
    + _NOT_A_LESION
    + r")(?![\w-])",
    re.IGNORECASE | re.DOTALL,
)


def _outside_the_lung(text: str, m: re.Match[str]) -> bool:
    """Whether a lesion word names a bone or soft tissue as its site (before or after it)."""
    if _SITE_AFTER_RE.match(text, m.end()):
        return True
    return _SITE_BEFORE_RE.search(text, max(0, m.start() - 50), m.start()) is not None


# A named nodule stays a nodule when called granulomatous (a granuloma is a nodule, and the
# readers of Open-i code it as one); a nodular *density* or opacity so explained is no lesion.
_NODULE_NOUN_RE = re.compile(r"nodules?|mass(?:es)?", re.IGNORECASE)


def _explained_away(text: str, m: re.Match[str]) -> bool:
    """Whether the clause goes on to explain the density as no lung lesion."""
    explained = _EXPLAINED_RE.match(text, m.end())
    if explained is None:
        return False
    return not (explained.group("granuloma") and _NODULE_NOUN_RE.fullmatch(m.group()))


_RULES: list[MentionRule] = [
    # --- Enlarged Cardiomediastinum ------------------------------------------------------
    MentionRule(
        "Enlarged Cardiomediastinum",
        _rx(
            r"(?:widen(?:ed|ing)|enlarged|enlargement\s+of\s+the)\s+(?:superior\s+)?"
            r"(?:cardio)?mediastin(?:um|al\s+(?:silhouette|contours?))"
            r"|(?:cardio)?mediastinal\s+(?:widening|enlargement)"
            r"|(?:cardio)?mediastin(?:um|al\s+(?:silhouette|contours?))"
            + _GAP
            + r"(?P<head>widened|enlarged|wide)"
        ),
    ),
    MentionRule(
        "Enlarged Cardiomediastinum",
        _rx(
            r"(?:cardio)?mediastin(?:um|al\s+(?:silhouette|contours?|structures))"
            + _CLEAN_GAP
            + r"\b"
            + _NORMAL
            + r"|normal\s+(?:size\s+(?:of\s+the\s+)?)?(?:(?:heart|cardiac)(?:\s+size)?\s+and\s+)?"
            r"(?:cardio)?mediastin(?:um|al)"
        ),
        fixed="negative",
    ),
    # --- Cardiomegaly ----------------------------------------------------------------------
    MentionRule(
        "Cardiomegaly",
        _rx(
            r"cardiomegaly|cardiac\s+enlargement|enlarged\s+(?:heart|cardiac\s+(?:silhouette|shadow))"
            r"|enlargement\s+of\s+the\s+(?:heart|cardiac\s+silhouette)"
            r"|borderline\s+(?:enlarged\s+)?(?:heart|cardiac)(?:\s+(?:size|silhouette|shadow))?"
            r"|" + _HEART + _GAP + r"(?P<head>enlarged|enlargement|large|increased|borderline)"
        ),
    ),
    MentionRule(
        "Cardiomegaly",
        _rx(
            _HEART
            + r"(?:\s+size)?"
            + _CLEAN_GAP
            + r"\b"
            + _NORMAL
            + r"|normal\s+(?:sized?\s+)?(?:heart|cardiac|cardiomediastinal)"
            # "upper limits of normal" / "top normal" describe a heart of normal size
            + r"|(?:upper|high|top)(?:\s+limits?\s+of)?(?:\s+the)?\s+normal\s+(?:heart|cardiac)"
            + r"|"
            + _HEART
            + _GAP
            + r"(?:at\s+)?(?:the\s+)?(?:near\s+)?"
            r"(?:(?:upper|high)(?:\s+limits?\s+of)?|top(?:\s+of)?)\s+normal"
        ),
        fixed="negative",
    ),
    # --- Lung Opacity ----------------------------------------------------------------------
    MentionRule(
        "Lung Opacity",
        _rx(
            r"opacit(?:y|ies)|opacification|opacified|infiltrates?|infiltration|infiltrative"
            r"|air[\s-]?space\s+(?:disease|process|opacit(?:y|ies)|filling)"
            r"|(?<!calcified\s)(?<!bone\s)densit(?:y|ies)|haziness|hazy|ground[\s-]glass"
            r"|interstitial\s+(?:disease|opacit(?:y|ies)|prominence|thickening|pattern)"
            r"|reticular|reticulonodular"
        ),
        unless=(_explained_away,),
    ),
    MentionRule(
        "Lung Opacity",
        _rx(
            r"lungs?\s+(?:are\s+|is\s+|remain\s+|appear\s+)?(?:[\w-]+\s+){0,3}?clear"
            r"|clear\s+lungs?"
        ),
        fixed="negative",
    ),
    # --- Lung Lesion -----------------------------------------------------------------------
    MentionRule(
        "Lung Lesion",
        _rx(
            r"nodules?|nodular\s+(?:\w+\s+)?(?:opacit(?:y|ies)|densit(?:y|ies)|lesions?)"
            r"|fibronodular"
            r"|(?<!thyroid\s)(?<!soft\s-tissue\s)mass(?:es)?(?!\s+effect)|mass[\s-]?like"
            r"|(?<!lytic\s)(?<!bony\s)(?<!skin\s)(?<!sclerotic\s)(?<!osseous\s)lesions?"
            r"|tumou?rs?|neoplasms?|malignan(?:cy|cies|t)|carcinoma|metasta(?:sis|ses|tic)"
        ),
        unless=(_outside_the_lung, _explained_away),
    ),
    # --- Edema -----------------------------------------------------------------------------
    MentionRule(
        "Edema",
        _rx(r"(?<!soft\s)(?<!tissue\s)(?<!subcutaneous\s)(?:o)?edema|edematous"),
    ),
    # --- Consolidation ---------------------------------------------------------------------
    MentionRule("Consolidation", _rx(r"consolidat(?:ion|ions|ive|ed)")),
    # --- Pneumonia -------------------------------------------------------------------------
    MentionRule("Pneumonia", _rx(r"(?:broncho)?pneumonias?|pneumonitis")),
    # Infection without the diagnosis: a sign of pneumonia (uncertain), not pneumonia itself
    MentionRule(
        "Pneumonia",
        _rx(r"(?<!granulomatous\s)(?:infection|infectious\s+(?:process|etiology))"),
        sign_only=True,
    ),
    # --- Atelectasis -----------------------------------------------------------------------
    MentionRule(
        "Atelectasis",
        _rx(
            r"atelecta(?:sis|ses|tic)"
            r"|(?:lung|lobe|lobar|segmental)\s+collapse|collapsed?\s+(?:\w+\s+){0,3}(?:lung|lobe)"
            r"|collapse\s+of\s+(?:\w+\s+){0,4}?(?:lung|lobe)"
        ),
    ),
    # --- Pneumothorax ----------------------------------------------------------------------
    MentionRule("Pneumothorax", _rx(r"(?:hydro)?pneumothora(?:x|ces|xes)")),
    # --- Pleural Effusion ------------------------------------------------------------------
    MentionRule(
        "Pleural Effusion",
        _rx(
            r"(?<!pericardial\s)(?<!joint\s)effusions?|pleural\s+fluid|hydrothorax"
            r"|hydropneumothorax|subpulmonic\s+fluid|fissural\s+fluid"
            r"|fluid\s+(?:with)?in\s+the\s+(?:(?:right|left|minor|major|horizontal|oblique)\s+)*"
            r"fissures?"
        ),
    ),
    MentionRule(
        "Pleural Effusion",
        _rx(
            r"blunt(?:ed|ing)\s+(?:of\s+)?(?:the\s+)?(?:[\w-]+\s+){0,3}?"
            r"(?:costophrenic|cp)\s+(?:angles?|recess(?:es)?|sulc(?:us|i)|xxxx)"
            r"|(?:costophrenic|cp)\s+(?:angles?\s+|recess(?:es)?\s+|sulc(?:us|i)\s+|xxxx\s+)?"
            r"(?:are\s+|is\s+)?blunt(?:ed|ing)"
        ),
        sign_only=True,
    ),
    MentionRule(
        "Pleural Effusion",
        _rx(
            r"costophrenic\s+(?:angles?|recess(?:es)?|sulc(?:us|i))\s+(?:are\s+|is\s+|remain\s+)?"
            r"(?:sharp(?:ly\s+defined)?|clear|preserved|normal)"
            r"|sharp\s+costophrenic"
        ),
        fixed="negative",
    ),
    # --- Pleural Other ---------------------------------------------------------------------
    MentionRule(
        "Pleural Other",
        _rx(
            r"pleural\s+(?:thickening|plaques?|scarring|calcifications?|fibrosis|reaction)"
            r"|thickening\s+of\s+the\s+(?:\w+\s+)?pleura|fibrothorax"
            r"|pleuro-?parenchymal\s+(?:scarring|thickening)|pleural-parenchymal\s+scarring"
            r"|apical\s+(?:pleural\s+)?(?:cap|capping|thickening)"
        ),
    ),
    # --- Fracture --------------------------------------------------------------------------
    MentionRule("Fracture", _rx(r"fractures?|fractured|fx")),
    MentionRule(
        "Fracture",
        _rx(
            r"no\s+(?:acute\s+|displaced\s+|acute,?\s+displaced\s+)?(?:bony|osseous|skeletal)\s+"
            r"(?:abnormalit(?:y|ies)|injur(?:y|ies)|findings?)"
            r"|(?:bony|osseous|skeletal)\s+(?:structures\s+|thorax\s+)?(?:are\s+|is\s+|appear\s+)?"
            r"(?:grossly\s+)?intact"
        ),
        fixed="negative",
    ),
    # --- Support Devices -------------------------------------------------------------------
    MentionRule(
        SUPPORT_DEVICES,
        _rx(
            r"pacemakers?|pacer|pacing\s+(?:leads?|wires?)|defibrillator|aicd|icd"
            r"|(?:central\s+venous|picc|venous|arterial|dialysis|jugular|subclavian|ij)\s+"
            r"(?:line|catheter)s?|picc|catheters?|port-?a-?cath|(?:chest|infusion)\s+port"
            r"|(?:endotracheal|et|nasogastric|ng|og|orogastric|feeding|enteric|chest|"
            r"tracheostomy|gastric|dobhoff)\s+tubes?|tracheostomy|swan[\s-]ganz"
            r"|(?:sternotomy|sternal)\s+(?:wires?|sutures)|stents?|(?:surgical\s+)?clips"
            r"|prosthe(?:sis|tic\s+valve)|valve\s+replacement|loop\s+recorder|(?:orthopedic\s+)?hardware"
            r"|(?:monitor|monitoring|ecg|ekg|telemetry|pacer|pacemaker|pacing|icd)\s+leads?"
            r"|leads?(?=\s+(?:in|terminat|project|overl|tip))|drains?|(?:internal\s+)?fixation"
            r"|(?:closure|cardiac|implanted|implantable|vascular)\s+devices?"
        ),
    ),
]

# Statements that the exam is normal; they support (never decide) a positive No Finding.
_NORMAL_STUDY = _rx(
    r"no\s+(?:radiographic\s+(?:evidence\s+of\s+)?|evidence\s+of\s+|definite\s+|xxxx\s+of\s+)?"
    r"(?:acute|active)\s+(?:\w+\s+){0,2}?(?:abnormalit(?:y|ies)|disease|process|findings?|pathology)"
    r"|(?:normal|unremarkable)\s+(?:\w+\s+)?(?:chest|radiographs?|study|exam(?:ination)?|x-?rays?)"
    r"|(?:chest|study|exam|examination|radiograph)\s+(?:is\s+)?(?:within\s+normal\s+limits|normal)"
    r"|negative\s+(?:chest|study|exam(?:ination)?)"
    r"|no\s+(?:acute\s+)?(?:cardiopulmonary|intrathoracic)\s+(?:abnormalit(?:y|ies)|disease|process)"
)

# Every rule's regex and _NORMAL_STUDY (last), matched in one scan of each sentence.
_PATTERNS = PatternSet([*(rule.regex for rule in _RULES), _NORMAL_STUDY], prefix=r"(?<![\w-])")


@dataclass
class _Found:
    state: str = "not_mentioned"
    sentences: list[Sentence] | None = None


# Reports repeat sentences ("The lungs are clear."): what a sentence says depends on its text
# only, so it is read once per distinct text.
@sentence_cache
def _read_sentence(text: str) -> tuple[tuple[tuple[str, str], ...], bool]:
    """(finding, assertion) per mention in rule order, and whether it is a normal statement."""
    mentions: list[tuple[str, str]] = []
    scope = None
    *per_rule, normal = _PATTERNS.finditer_all(text)
    for rule, matches in zip(_RULES, per_rule, strict=True):
        for m in matches:
            if any(check(text, m) for check in rule.unless):
                continue
            if scope is None:
                scope = analyze(text)
            start, end = m.span("head") if m.groupdict().get("head") else m.span()
            assertion = rule.fixed or scope.assertion(start, end)
            if rule.sign_only and assertion == "positive":
                assertion = "uncertain"
            mentions.append((rule.finding, assertion))
    return tuple(mentions), bool(normal)  # normal: _NORMAL_STUDY matched


def mentioned_findings(text: str) -> set[str]:
    """Findings whose phrase occurs anywhere in ``text``, before scope, context and sections.

    The cascade (:mod:`extractors.extract.cascade`) compares this with the labels: a phrase that
    occurs while its finding stays ``not_mentioned`` is a term the rules matched but did not
    resolve (explained away, outside the lung, in a skipped section), worth a second opinion.
    """
    return {rule.finding for rule in _RULES if rule.regex.search(text)}


class CxrRuleExtractor(RuleExtractor):
    """The 14 CheXpert findings from CXR report text by phrase rules plus negation scope."""

    schema_name = "cxr"
    rules_version = "1"

    def extract_doc(self, doc: Document) -> tuple[Labels, EvidenceMap]:
        labels: Labels = self.schema.empty_labels()
        # finding -> assertion -> sentences (in text order, no repeats)
        found: dict[str, dict[str, list[Sentence]]] = {}
        normal_sentences: list[Sentence] = []
        for sentence in doc.sentences:
            if sentence.section in SKIPPED_SECTIONS:
                continue
            mentions, normal = _read_sentence(sentence.text)
            for finding, assertion in mentions:
                bucket = found.setdefault(finding, {}).setdefault(assertion, [])
                if not bucket or bucket[-1] is not sentence:
                    bucket.append(sentence)
            if normal:
                normal_sentences.append(sentence)

        evidence: EvidenceMap = {}
        for finding, by_state in found.items():
            state = max(by_state, key=_PRECEDENCE.__getitem__)
            labels[finding] = state
            evidence[finding] = [evidence_of(s) for s in by_state[state]]

        no_finding = self._no_finding(labels, found, normal_sentences)
        if no_finding is not None:
            labels[NO_FINDING] = "positive"
            evidence[NO_FINDING] = no_finding
        return labels, evidence

    @staticmethod
    def _no_finding(
        labels: Labels,
        found: dict[str, dict[str, list[Sentence]]],
        normal_sentences: list[Sentence],
    ) -> list[Evidence] | None:
        """Evidence for a positive No Finding, or None when No Finding stays not_mentioned.

        Positive only when no finding other than Support Devices is positive or uncertain and
        the report says something about the chest: a normal statement, or at least one
        denied finding (a report that mentions nothing at all is not called normal).
        """
        for finding, state in labels.items():
            if finding in (NO_FINDING, SUPPORT_DEVICES):
                continue
            if state in ("positive", "uncertain"):
                return None
        if normal_sentences:
            return [evidence_of(s) for s in normal_sentences]
        # keyed by start offset: a sentence denying several findings is listed once (a set,
        # not a list scan, so a report with thousands of sentences stays linear)
        denied: dict[int, Sentence] = {}
        for finding, by_state in found.items():
            if finding != SUPPORT_DEVICES:
                for s in by_state.get("negative", []):
                    denied.setdefault(s.start, s)
        if not denied:
            return None
        return [evidence_of(denied[start]) for start in sorted(denied)]
