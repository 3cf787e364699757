"""Yes / no / uncertain from a free-text answer to a yes/no question, and scoring against ground truth.

MedGemma answers in sentences, so the reader works the way a radiologist reads a report against the
question that was asked. It follows ConText (Harkema, Dowling, Thornblade and Chapman, "ConText: an
algorithm for determining negation, experiencer, and temporal status from clinical reports", J Biomed
Inform 2009; after NegEx, Chapman et al. 2001): trigger terms (negation, hedge) modify the findings in
their *scope*, which runs from the trigger to the end of the clause or to a termination term ("but",
"however", "although", "which", a new assertion after a comma or "and"). Everything is matched on
whole words, never substrings: "no" inside "normal", "know" or "cannot" is nothing.

How an answer is read (``read_answer``; ``parse_answer`` returns only its label):

1. Gemma control tokens (``<end_of_turn>``, ``<eos>``, ...), markdown emphasis, a leading "model" turn
   marker and "Answer:" are blanked (character positions are kept, so spans index the raw answer).
2. The question is read for what it asks: its findings (lexicon concepts such as effusion or
   cardiomegaly), or anatomy with a property ("Is the heart enlarged?" asks about cardiomegaly, "Is
   the mediastinum widened?" about mediastinal widening, "Are the lungs clear?" whether the lungs are
   normal), and the side ("left", "right", "bilateral") and lobe it names. A question naming no finding
   the lexicon knows and no property has its own noun phrase taken as the finding ("Is there an air
   collection?", "Do you see any unclear area?"), matched in the answer with its inflections; a hedge
   word it asks about ("unclear") is then the finding, not a hedge. A phrase that names no particular
   finding ("any acute disease?") stays a question about any finding.
3. The answer is cut into sentences and scopes. In each scope every finding, and every anatomy word
   carrying a property ("The heart is normal in size", "The mediastinum appears widened"), becomes a
   mention: *present*, *absent* (a negation trigger before it, or "absent", "not seen", "ruled out",
   "resolved", ": none" after it), or *possible* (a hedge in its scope: "may", "likely", "possible",
   "cannot be excluded", "suspicious for", ...). A negation whose scope holds a hedge governs it ("no
   consolidation to suggest pneumonia" is absent). Each mention takes the side and lobe words between
   it and the previous finding of its scope, else the side phrase right after it. In a clause naming
   no finding, "none" and "(a small) one" stand for the finding last named. A relative clause ("...,
   which is a common sign of pleural effusion") after a clause that denies a sign denies its findings
   with the sign; a generic statement ("Blunting is a common sign of effusion.", "A pneumothorax would
   appear as ...") asserts none (ConText's "hypothetical").
4. Mentions of the asked finding decide: a present one on a compatible side gives ``yes``; an absent
   one ``no`` (both on the same side: ``uncertain``, contradiction); a possible one ``uncertain``
   (hedge); a present one only on another side or lobe ``no`` (laterality or lobe mismatch). A broader
   concept's absence answers a narrower one ("No lines or tubes." answers a central-line question) and
   a narrower one's presence a broader one ("consolidation" answers "Is there an opacity?").
5. Without a mention of the finding, a statement that the asked property is normal answers it: "The
   heart is normal in size." is ``no`` for cardiomegaly, "The lungs are clear." is ``no`` for
   parenchymal findings (consolidation, opacity, edema, nodule, ...) but says nothing about pleural ones
   (effusion, pneumothorax), "The costophrenic angles are sharp." is ``no`` for an effusion, "Normal
   chest radiograph." is ``no`` for any finding and "No acute cardiopulmonary process." for the acute
   ones. A question that asks for normality ("Are the lungs clear?") is ``yes`` on such a statement and
   ``no`` when a finding of that region is present.
6. A verdict word ("Yes", "No", "Negative", "Present" standing alone, "The answer is no") decides when
   the rest agrees or says nothing definite; when the rest reads the other way ("No. There is a small
   effusion.") the label is ``uncertain`` with reason ``contradiction``. A hedge after a verdict word
   does not undo it ("No, although a tiny effusion cannot be excluded." is ``no``). An answer opening
   "No, ..." opens with a verdict.
7. An answer that names no finding and no other anatomy is elliptic and refers to the question: "Not
   present.", "None seen." are ``no``; "Present." is ``yes``; "Not sure." is ``uncertain``.
8. Anything else is ``uncertain`` (an answer about another finding, or about nothing).

Each reading has a ``reason`` naming the rule or cue that decided it and ``cue_span``, the character
span in the raw answer of the word carrying the verdict (for the decision token of a map); ``hedged``
says whether a hedge qualified the verdict and ``leans`` where a leaning hedge ("suggestive of",
"likely", "unlikely") points. ``read_answer(..., hedged="lean")`` reads a leaning hedge as that label;
the default, ``"uncertain"``, leaves it open, as the CheXpert labeler does (Irvin et al., AAAI 2019).
"Consistent with" and "compatible with" assert, as there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from medgemma_tui.config.schema import HEDGED_READINGS
from medgemma_tui.data.schema import NO_WORDS, YES_WORDS

from .lexicon import match_terms

__all__ = [
    "YES", "NO", "UNCERTAIN", "HEDGED_READINGS", "HEDGED_DEFAULT", "AnswerReading", "read_answer", "parse_answer",
    "is_correct", "normalise_truth",
]

YES, NO, UNCERTAIN = "yes", "no", "uncertain"
HEDGED_DEFAULT = HEDGED_READINGS[0]  # a leaning hedge is left open unless [analysis] hedged_answers = "lean"
PRESENT, ABSENT, POSSIBLE = "present", "absent", "possible"
LEFT, RIGHT = "left", "right"

Span = tuple[int, int]


@dataclass(frozen=True)
class AnswerReading:
    """How an answer was read: the label, the rule or cue that decided it, and where that cue is."""

    label: str  # "yes", "no" or "uncertain"
    reason: str  # e.g. "verdict word 'no'", "negated finding 'pneumothorax'", "contradiction"
    cue_span: Span | None = None  # (start, end) in the raw answer of the word carrying the verdict
    hedged: bool = False  # a hedge qualified the verdict ("likely", "suggestive of", "cannot be excluded")
    leans: str | None = None  # for a hedge that leans ("suggestive of X"): the label it leans to


def _hedge_reading(cue_text: str, cue: Span, towards: str) -> AnswerReading:
    """An open answer: ``towards`` is what the hedge leans to, when it leans (module doc, hedges)."""
    word = cue_text.lower()
    if word == "unlikely":  # ConText's "probable negated existence": leans the other way
        towards = {YES: NO, NO: YES}[towards]
    leans = towards if _LEANING.fullmatch(word) else None
    return AnswerReading(UNCERTAIN, f"hedge {word!r}", cue, hedged=True, leans=leans)


# ---- cleaning (same length: every span indexes the raw answer) ------------------------------------
_CONTROL = re.compile(r"</?(?:end_of_turn|start_of_turn|eos|bos|pad|unk|end_of_image|start_of_image)>|"
                      r"<\|[^|>]*\|>", re.IGNORECASE)
_PREFIX = re.compile(r"^\s*(?:model|assistant)\s*\n|\b(?:final\s+)?answer\s*:|\bthe\s+answer\s+is\b",
                     re.IGNORECASE)
_MARKUP = re.compile(r"[*_`#]")


def _blank(match: re.Match[str]) -> str:
    return " " * len(match.group())


def _clean(answer: str) -> str:
    text = _CONTROL.sub(_blank, answer or "")
    text = _MARKUP.sub(_blank, text).replace("\u2019", "'")
    previous = None
    while previous != text:  # "model\nAnswer: ..." needs two passes
        previous = text
        text = _PREFIX.sub(_blank, text)
    return text


# ---- triggers --------------------------------------------------------------------------------------
def _words(*alternatives: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w'])(?:" + "|".join(alternatives) + r")(?![\w'])", re.IGNORECASE)


# hedges: ConText's "possible existence" (medspaCy's English rules) plus the radiology register
_HEDGE = _words(
    r"(?:can ?not|can't|could not|couldn't|unable to|not able to|not possible to|difficult to|hard to)\s+(?:be\s+)?(?:"
    r"\w+ly\s+)?(?:exclude[sd]?|rule[sd]? out|ruled out|determine[sd]?|assess(?:ed)?"
    r"|tell|say|confirm(?:ed)?|evaluate[sd]?|characterize[sd]?)",
    r"(?:difficult|hard) to (?:see|visualize|appreciate|detect)",
    r"not (?:be )?(?:excluded|ruled out)", r"(?:not|cannot be|can't be) (?:sure|certain)", r"unsure",
    r"i (?:do not|don't) know", r"possible|possibly|probable|probably|likely|unlikely|may|might|perhaps",
    r"questionable|equivocal|indeterminate|unclear|uncertain|borderline|suspected|suspect|suspicious for",
    r"concerning for|worrisome for|suggestive of|suggests?|suggesting|could (?:represent|be|reflect|indicate)",
    r"(?:upper|high) limits? of normal|(?:top|high|upper)[- ]normal|versus|vs\.?|limited evaluation"
    r"|not well (?:evaluated|seen)",
    r"questioned|in question",
)
# the hedges that lean towards the finding (ConText's "probable existence"): "hedged = lean" reads them as
# yes; the rest ("cannot be excluded", "unclear", "equivocal", "borderline") leave the question open
# hedge words that can be what a question asks about ("Is there an indeterminate nodule?")
_ASKED_HEDGE = _words(r"unclear|uncertain|indeterminate|questionable|equivocal|suspicious|suspected|borderline")
_LEANING = _words(r"possible|possibly|probable|probably|likely|unlikely|may|might|perhaps|suspected|suspect",
                  r"suspicious for|concerning for|worrisome for|suggestive of|suggests?|suggesting",
                  r"could (?:represent|be|reflect|indicate)")
# ConText's direction: these hedge only what follows them ("a nodule, concerning for malignancy": the
# nodule is stated), these only what precedes them ("a small effusion cannot be excluded"); the rest
# ("likely", "may", "possible") hedge their whole scope
_HEDGE_FORWARD = _words(r"suspicious for|concerning for|worrisome for|suggestive of|suggests?|suggesting",
                        r"could (?:represent|be|reflect|indicate)")
_HEDGE_BACKWARD = _words(r"(?:can ?not|can't|not) (?:be )?(?:\w+ly )?"
                         r"(?:excluded|ruled out)", r"questioned|in question|suspected")
_NOT = r"not|isn't|aren't|wasn't|weren't|don't|doesn't|didn't|hasn't|haven't|cannot|can't|couldn't|won't"
_NEG_FORWARD = _words(
    r"no", _NOT, r"without", r"absence of", r"negative for", r"free of", r"lack of", r"clear of",
    r"neither", r"nor", r"never", r"resolution of", r"none of", r"rules? out", r"argues? against",
)
_NEG_BACKWARD = _words(
    _NOT, r"absent", r"none", r"resolved", r"ruled out", r"excluded", r"negative", r"no longer", r"removed",
    r"withdrawn",
)
# pseudo-triggers: negation words that negate no finding ("no change in the effusion": it is there)
_PSEUDO = _words(
    r"no (?:significant |interval |substantial |appreciable )?(?:change|increase|decrease|worsening|progression)",
    r"not only", r"without (?:significant |interval )?change", r"unchanged",
)

# termination: ends a trigger's scope inside a sentence (ConText's "terminate" rules)
_TERMINATE = re.compile(
    r"\b(?:but|however|although|though|whereas|except|apart from|aside from|which|yet|while|with the exception of"
    r")\b"
    r"|(?:,|\band\b)\s*(?=(?:and\s+)?(?:there|the|a|an|small|moderate|large|mild|trace|tiny|minimal|severe|no"
    r"|yes|left|right|bilateral|it|this|possible|possibly|probable|likely|probably|suggest\w*|consistent|compatible|may"
    r"|might|could|without|with|likely|i|however|heart|lungs?)\b)",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"[.!?;](?=\s|$)|\n+")
# a relative clause that says what the previous clause's sign means ("..., which is a sign of effusion")
_RELATIVE = re.compile(r"\bwhich\b", re.IGNORECASE)
# a generic or hypothetical statement about a finding, not about this film (ConText's "hypothetical")
_GENERIC = re.compile(
    r"\b(?:would|usually|typically|generally|commonly|often|looks? like|appears? as|(?:can|may) be (?:missed|difficult"
    r"|hard)|(?:can|may|might) not be (?:visible|seen|detected|apparent)|(?:is|are) (?:a |an |the )?"
    r"(?:\w+ ){0,2}(?:signs?|features?|hallmarks?|causes?|indicators?|findings?) (?:of|in))\b", re.IGNORECASE)
_EXISTENTIAL = re.compile(r"\b(?:there (?:is|are|appears?|seems?)|i (?:can )?see|(?:is|are) (?:seen|present|noted"
                          r"|visible|identified))\b", re.IGNORECASE)

_SIDE = _words(r"left(?:-sided)?|right(?:-sided)?|bilateral(?:ly)?|both|bibasilar|bibasal|bibasally"
               r"|either side|both sides|bilateral lungs")
_LOBE = re.compile(r"\b(upper|middle|mid|lower)\s+(?:lobes?|lung|zones?)\b|\b(lingula\w*)\b"
                   r"|\b(bases?|basilar|basal|bibasilar|bibasal|apex|apices|apical)\b", re.IGNORECASE)
_ASKED_LOBE = re.compile(r"\b(upper|middle|lower)\s+lobes?\b|\b(lingula\w*)\b", re.IGNORECASE)

# verdict words: standing alone in their clause; the strong ones also at the start of a clause
_STRONG_YES = {"yes", "yeah", "yep", "yup", "affirmative"}
_STRONG_NO = {"nope", "nah"}
_ALONE_YES = _STRONG_YES | {"positive", "correct", "true", "present"}
_ALONE_NO = _STRONG_NO | {"no", "negative", "false", "absent", "none", "incorrect"}

# elliptic answers (no finding named): bare existence words
_BARE_NO = _words(r"no", _NOT, r"none", r"absent", r"negative", r"without")
_BARE_YES = _words(r"present", r"seen", r"visible", r"identified", r"noted", r"positive", r"there is one",
                   r"small|moderate|large|trace|tiny|mild|severe|massive")

# ---- anatomy with a property ------------------------------------------------------------------------
_REGIONS: dict[str, tuple[str, ...]] = {
    r"cardiomediastinal (?:silhouette|contours?|shadow)": ("heart", "mediastinum"),
    r"heart(?: size)?|cardiac(?: silhouette| size| shadow| contours?)?|cardiothoracic ratio": ("heart",),
    r"mediastinum|mediastinal(?: contours?| silhouette| width)?": ("mediastinum",),
    r"(?:pulmonary )?vascula(?:ture|rity)|pulmonary vessels": ("vasculature",),
    r"lungs?|lung fields?|lung parenchyma|lung volumes": ("lungs",),
    r"costophrenic (?:angles?|sulc(?:us|i)|recess(?:es)?)|cp angles?": ("costophrenic",),
    r"pleural (?:spaces?|surfaces?)|pleura": ("pleura",),
    r"trachea": ("trachea",),
    r"(?:upper|middle|lower) lobes?|lobes?|lingula": ("lobe",),
    r"(?:chest )?(?:x-ray|xray|radiograph|film|study|examination|exam|cxr)|chest": ("study",),
}
_REGION_OF = list(_REGIONS.values())
_REGION = re.compile(r"\b(?:" + "|".join(f"({p})" for p in _REGIONS) + r")\b", re.IGNORECASE)

# a property word, the regions it can describe, and whether it says "normal"
_NORMAL_WORDS = re.compile(
    r"\b(?:normal(?: in (?:size|width|caliber|appearance))?|within normal limits|unremarkable|clear"
    r"|sharp|preserved|midline|well[- ]defined)\b", re.IGNORECASE)
_NORMAL_FOR: dict[str, set[str]] = {
    "normal": {"heart", "mediastinum", "vasculature", "lungs", "costophrenic", "pleura", "trachea", "study"},
    "within normal limits": {"heart", "mediastinum", "vasculature", "lungs", "trachea", "study"},
    "unremarkable": {"heart", "mediastinum", "vasculature", "lungs", "pleura", "study"},
    "clear": {"lungs", "costophrenic", "pleura"},
    "sharp": {"costophrenic"},
    "preserved": {"costophrenic"},
    "midline": {"trachea"},
    "well-defined": {"costophrenic"},
}
_ABNORMAL_WORDS = re.compile(
    r"\b(?:enlarged|enlargement|increased in size|widened|widening|wide|deviated|shifted|congested"
    r"|engorged|indistinct|blunted|blunting|collapsed|collapse|not clear|abnormal|thickened|thickening|solid)\b",
    re.IGNORECASE)
_ABNORMAL_FOR: dict[str, dict[str, str]] = {  # region -> property word -> the finding it states
    "heart": {"enlarged": "cardiomegaly", "enlargement": "cardiomegaly", "increased in size": "cardiomegaly"},
    "mediastinum": {"widened": "mediastinal widening", "widening": "mediastinal widening",
                    "wide": "mediastinal widening", "enlarged": "mediastinal widening"},
    "trachea": {"deviated": "tracheal deviation", "shifted": "tracheal deviation"},
    "vasculature": {"congested": "edema", "engorged": "edema", "indistinct": "edema"},
    "costophrenic": {"blunted": "blunting", "blunting": "blunting"},
    "lobe": {"collapsed": "atelectasis", "collapse": "atelectasis"},
    "pleura": {"thickened": "pleural thickening", "thickening": "pleural thickening"},
    "lungs": {"solid": "consolidation"},
}

# which findings a normal region rules out (a radiologist's reading of "the lungs are clear" etc.)
_PARENCHYMA = {"consolidation", "opacity", "pneumonia", "edema", "atelectasis", "nodule", "mass", "infiltration",
               "lesion", "fibrosis", "tuberculosis", "bronchiectasis", "metastasis", "septal lines"}
_ACUTE = {"effusion", "pneumothorax", "consolidation", "pneumonia", "edema", "opacity", "infiltration",
          "atelectasis", "mediastinal widening"}
_REGION_FINDINGS: dict[str, set[str]] = {
    "heart": {"cardiomegaly"},
    "mediastinum": {"mediastinal widening"},
    "vasculature": {"edema", "vascular redistribution", "pulmonary hypertension"},
    "lungs": _PARENCHYMA,
    "costophrenic": {"effusion", "blunting"},
    "pleura": {"effusion", "pneumothorax", "pleural thickening"},
    "trachea": {"tracheal deviation"},
}
_REGION_LABEL = {"heart": "heart size", "mediastinum": "mediastinal width", "vasculature": "pulmonary vasculature",
                 "lungs": "lungs", "costophrenic": "costophrenic angles", "pleura": "pleural spaces",
                 "trachea": "trachea", "study": "whole study"}
_NORMAL_STUDY = re.compile(
    r"\bno (?:(acute) )?(?:cardiopulmonary |intrathoracic |radiographic )?(?:abnormalit(?:y|ies)|process|disease"
    r"|findings?)\b|\bno (?:significant |acute )?abnormalit(?:y|ies)\b", re.IGNORECASE)

# concepts that name where, not what
_ANATOMY = {"lung", "lobe", "heart", "rib", "diaphragm", "mediastinum", "costophrenic", "hilum",
            "trachea", "spine", "clavicle", "aorta", "pleura"}
# a question about the broader concept is answered "yes" by the narrower one ("opacity" by "consolidation")
_NARROWER: dict[str, set[str]] = {
    "opacity": {"consolidation", "infiltration", "atelectasis", "nodule", "mass", "pneumonia", "edema", "lesion"},
    "lesion": {"nodule", "mass"},
    "device": {"endotracheal tube", "enteric tube", "central line", "chest tube", "pacemaker", "sternotomy"},
    "blunting": {"effusion"},
}


@dataclass
class _Mention:
    concept: str  # a finding concept, or "normal:<region>" for a statement of normality
    status: str  # present / absent / possible
    span: Span  # the finding's (or property word's) span
    cue: Span  # the span carrying the status: negation or hedge trigger, else the finding itself
    cue_text: str
    sides: frozenset[str]
    lobes: frozenset[str]


@dataclass
class _Question:
    concepts: set[str] = field(default_factory=set)  # findings asked about
    normal_of: str | None = None  # the region whose normality is asked ("Are the lungs clear?")
    inverted: bool = False  # "Is there an abnormality?": yes when the region is *not* normal
    sides: frozenset[str] = frozenset()
    lobes: frozenset[str] = frozenset()
    # a finding the lexicon lacks, taken from the question's own noun phrase ("Is there kyphosis?")
    own_concept: str = ""
    own: re.Pattern[str] | None = None  # its forms in an answer
    own_regions: frozenset[str] = frozenset({"study"})  # the normal regions that answer it
    asked_hedges: frozenset[str] = frozenset()  # hedge words the question asks about ("any unclear area?")


# ---- scopes ---------------------------------------------------------------------------------------------
def _pieces(text: str, pattern: re.Pattern[str], start: int, end: int) -> list[Span]:
    out, cut = [], start
    for m in pattern.finditer(text, start, end):
        if m.start() > cut:
            out.append((cut, m.start()))
        cut = max(cut, m.end())
    if end > cut:
        out.append((cut, end))
    return [(s, e) for s, e in out if text[s:e].strip()]


def _scopes(text: str) -> list[Span]:
    """Sentences cut at ConText termination terms: the spans a trigger can reach."""
    out = []
    for s, e in _pieces(text, _SENTENCE, 0, len(text)):
        out.extend(_pieces(text, _TERMINATE, s, e))
    return out


def _sides_in(text: str, start: int = 0, end: int | None = None) -> frozenset[str]:
    sides: set[str] = set()
    for m in _SIDE.finditer(text, start, len(text) if end is None else end):
        word = m.group().lower()
        if word.startswith("left"):
            sides.add(LEFT)
        elif word.startswith("right"):
            sides.add(RIGHT)
        else:
            sides.update((LEFT, RIGHT))
    return frozenset(sides)


def _lobes_in(text: str, start: int, end: int, pattern: re.Pattern[str] = _LOBE) -> frozenset[str]:
    lobes: set[str] = set()
    for m in pattern.finditer(text, start, end):
        word = m.group().lower()
        if m.group(1):
            lobes.add({"mid": "middle"}.get(m.group(1).lower(), m.group(1).lower()))
        elif word.startswith("lingula"):
            lobes.add("upper")
        elif any(word.startswith(w) for w in ("base", "basilar", "basal", "bibas")):
            lobes.add("lower")
        else:
            lobes.add("upper")
    return frozenset(lobes)


def _hedges_in(text: str, start: int, end: int, asked: frozenset[str]) -> list[re.Match[str]]:
    """Hedge triggers, less the words the question itself asks about ("Do you see any unclear area?")."""
    return [m for m in _HEDGE.finditer(text, start, end) if m.group().lower() not in asked]


def _status(text: str, scope: Span, span: Span, asked: frozenset[str] = frozenset()) -> tuple[str, Span, str]:
    """ConText in one scope: is the mention at ``span`` negated, hedged, or plainly stated?"""
    s0, e0 = scope
    found = _hedges_in(text, s0, e0, asked)
    hedges = [m for m in found
              if not (_HEDGE_FORWARD.fullmatch(m.group()) and m.start() >= span[1])
              and not (_HEDGE_BACKWARD.fullmatch(m.group()) and m.end() <= span[0])]
    masked = [m.span() for m in found]
    pseudo = [m.span() for m in _PSEUDO.finditer(text, s0, e0)]

    def free(m: re.Match[str]) -> bool:  # a trigger inside a hedge or a pseudo-trigger is no trigger
        return not any(a <= m.start() < b for a, b in pseudo + masked)

    forward = [m for m in _NEG_FORWARD.finditer(text, s0, span[0]) if free(m)]
    backward = [m for m in _NEG_BACKWARD.finditer(text, span[1], e0) if free(m)]
    colon_no = re.compile(r"\s*:\s*(no)\b", re.IGNORECASE).match(text, span[1], e0)  # "Nodule: no."
    if forward and (not hedges or forward[0].start() < hedges[0].start()):
        m = forward[-1]
        return ABSENT, m.span(), m.group()
    if hedges:
        m = min(hedges, key=lambda h: abs(h.start() - span[0]))
        return POSSIBLE, m.span(), m.group()
    if backward:
        return ABSENT, backward[0].span(), backward[0].group()
    if colon_no:
        return ABSENT, colon_no.span(1), colon_no.group(1)
    return PRESENT, span, text[span[0]: span[1]]


def _nearest_region(
    text: str, regions: list[tuple[Span, tuple[str, ...]]], span: Span, max_gap: int = 4
) -> tuple[Span, tuple[str, ...]] | None:
    """The anatomy a property word describes: the nearest region at most ``max_gap`` words away
    ("the heart is mildly enlarged", "normal heart size"), the one before it on a tie."""

    def gap(item) -> tuple[int, int]:
        (s, e), _ = item
        between = text[e: span[0]] if e <= span[0] else text[span[1]: s]
        return len(re.findall(r"[A-Za-z]+", between)), 0 if e <= span[0] else 1

    near = [item for item in regions if gap(item)[0] <= max_gap]
    return min(near, key=gap) if near else None


def _regions_in(text: str, start: int, end: int) -> list[tuple[Span, tuple[str, ...]]]:
    out = []
    for m in _REGION.finditer(text, start, end):
        index = next(i for i, g in enumerate(m.groups()) if g is not None)
        out.append((m.span(), _REGION_OF[index]))
    return out


def _first_side_after(text: str, start: int, end: int) -> frozenset[str]:
    """The side phrase that follows a finding ("on the left", "on the left and right"), not later ones
    ("a pneumothorax on the left with mediastinal shift to the right" is on the left)."""
    first = _SIDE.search(text, start, end)
    if first is None:
        return frozenset()
    joined = re.compile(r"(?:\s*(?:,|and|or|&)\s*)+(?:the\s+)?", re.IGNORECASE).match(text, first.end(), end)
    stop = first.end()
    if joined:
        second = _SIDE.match(text, joined.end(), end)
        stop = second.end() if second else stop
    return _sides_in(text, first.start(), stop)


def _located(text: str, scope: Span, mentions: list[_Mention]) -> list[_Mention]:
    """Each mention's sides and lobes: the words between it and the previous mention of its scope,
    else those between it and the next ("left effusion with right atelectasis": left, then right)."""
    ordered = sorted(mentions, key=lambda m: m.span)
    bounds = [scope[0]] + [m.span[1] for m in ordered]
    starts = [m.span[0] for m in ordered] + [scope[1]]
    out = []
    for i, m in enumerate(ordered):
        before, after = (bounds[i], m.span[0]), (m.span[1], starts[i + 1])
        sides = _sides_in(text, *before) or _first_side_after(text, *after)
        lobes = _lobes_in(text, *before) or _lobes_in(text, *after)
        out.append(_Mention(m.concept, m.status, m.span, m.cue, m.cue_text, sides, lobes))
    return out


def _clause_negation(text: str, scope: Span) -> tuple[Span, str] | None:
    """The word that makes a clause a denial ("there is no blunting", "the angles are sharp"), if any. A
    negation after something the clause sees ("I can see a pleural line with no lung markings beyond it")
    is a detail of what it sees, not a denial."""
    masked = [m.span() for m in _HEDGE.finditer(text, *scope)]
    for m in _NEG_FORWARD.finditer(text, *scope):
        if not any(a <= m.start() < b for a, b in masked):
            seen = _EXISTENTIAL.search(text, scope[0], m.start())
            if seen and re.search(r"[A-Za-z]", text[seen.end(): m.start()]):
                return None
            return m.span(), m.group()
    m = _NORMAL_WORDS.search(text, *scope)
    return (m.span(), m.group()) if m else None


def _referred(text: str, sentence: list[Span], i: int, found: list[_Mention], before: list[_Mention]
              ) -> list[_Mention]:
    """Findings a clause names without asserting them.

    A relative clause after a denied sign says what the sign would have meant ("There is no blunting of the
    costophrenic angles, which is a common sign of pleural effusion."): its findings are denied with the
    sign. A generic sentence ("Blunting is a common sign of effusion.", "A pneumothorax would appear as a
    dark area.") asserts nothing about this film: its findings are dropped unless a negation governs them.
    ``before`` are the mentions of the clause before: one it states ("There is consolidation without air
    bronchograms, which is consistent with pneumonia.") makes it no denial.
    """
    scope = sentence[i]
    findings = [m for m in found if not m.concept.startswith("normal:")]
    if not findings:
        return found
    if i > 0 and _RELATIVE.search(text, sentence[i - 1][1], scope[0]):
        stated = [m for m in before if not m.concept.startswith("normal:") and m.status != ABSENT]
        if stated and all(m.status == POSSIBLE for m in stated):  # "There might be an infiltrate, which ..."
            return [_Mention(m.concept, POSSIBLE, m.span, stated[0].cue, stated[0].cue_text, m.sides, m.lobes)
                    if m.status == PRESENT and not m.concept.startswith("normal:") else m for m in found]
        denial = None if stated else _clause_negation(text, sentence[i - 1])
        if denial is None:
            return found
        cue, word = denial
        return [_Mention(m.concept, ABSENT, m.span, cue, word, m.sides, m.lobes)
                if not m.concept.startswith("normal:") else m for m in found]
    if _GENERIC.search(text, *scope) and not _EXISTENTIAL.search(text, *scope):
        return [m for m in found if m.concept.startswith("normal:") or m.status == ABSENT]
    return found


def _mentions(text: str, q: _Question | None = None) -> list[_Mention]:
    """Every finding and every anatomy-with-property statement of the answer, with its ConText status."""
    q = q or _Question()
    out: list[_Mention] = []
    for sentence_span in _pieces(text, _SENTENCE, 0, len(text)):
        sentence = _pieces(text, _TERMINATE, *sentence_span)
        before: list[_Mention] = []
        for i, scope in enumerate(sentence):
            found = _scope_mentions(text, scope, q)
            found = _referred(text, sentence, i, found, before)
            if not found:
                _alternative(text, scope, out)
                found = _anaphora(text, scope, out, q.asked_hedges)
            before = found
            out.extend(_located(text, scope, found))
    return out


# "..., but it could also be a nipple shadow": another explanation of the finding last named
_ALTERNATIVE = re.compile(r"[\s,]*(?:it|this|these|they|which|that)\s+(?:could|may|might|can)\s+(?:also\s+)?"
                          r"(?:be|represent|reflect)\b", re.IGNORECASE)


def _alternative(text: str, scope: Span, earlier: list[_Mention]) -> None:
    """A clause that offers another explanation for the finding last named makes that finding possible."""
    m = _ALTERNATIVE.match(text, *scope)
    stated = [i for i, e in enumerate(earlier) if not e.concept.startswith("normal:") and e.status == PRESENT]
    if m is None or not stated:
        return
    start = m.start() + len(m.group()) - len(m.group().lstrip(" ,"))
    earlier[stated[-1]] = replace(earlier[stated[-1]], status=POSSIBLE, cue=(start, m.end()),
                                  cue_text=text[start: m.end()])


def _scope_mentions(text: str, scope: Span, q: _Question) -> list[_Mention]:
    s0, e0 = scope
    none: frozenset[str] = frozenset()
    found: list[_Mention] = []
    taken: list[Span] = []
    for m in match_terms(text[s0:e0]):
        if m.concept in _ANATOMY:
            continue
        span = (s0 + m.start, s0 + m.end)
        status, cue, cue_text = _status(text, scope, span, q.asked_hedges)
        found.append(_Mention(m.concept, status, span, cue, cue_text, none, none))
        taken.append(span)
    if q.own is not None:
        for m in q.own.finditer(text, s0, e0):
            if any(a < m.end() and m.start() < b for a, b in taken):
                continue
            status, cue, cue_text = _status(text, scope, m.span(), q.asked_hedges)
            found.append(_Mention(q.own_concept, status, m.span(), cue, cue_text, none, none))
    regions = _regions_in(text, s0, e0)
    for m in _NORMAL_WORDS.finditer(text, s0, e0):
        word = m.group().lower()
        key = "normal" if word.startswith("normal") else word.replace("well defined", "well-defined")
        near = _nearest_region(text, regions, m.span())
        for region in near[1] if near else ():
            if region in _NORMAL_FOR.get(key, set()):
                status, cue, cue_text = _status(text, scope, m.span(), q.asked_hedges)
                if status == PRESENT:
                    cue, cue_text = m.span(), m.group()
                found.append(_Mention(f"normal:{region}", status, m.span(), cue, cue_text, none, none))
    for m in _ABNORMAL_WORDS.finditer(text, s0, e0):
        near = _nearest_region(text, regions, m.span())
        for region in near[1] if near else ():
            concept = _ABNORMAL_FOR.get(region, {}).get(m.group().lower())
            if concept:
                status, cue, cue_text = _status(text, scope, m.span(), q.asked_hedges)
                found.append(_Mention(concept, status, m.span(), cue, cue_text, none, none))
    for m in _NORMAL_STUDY.finditer(text, s0, e0):
        region = "acute" if m.group(1) else "study"
        cue = (m.start(), m.start() + 2)  # the "no" of "no acute cardiopulmonary process"
        found.append(_Mention(f"normal:{region}", PRESENT, m.span(), cue, m.group()[:2], none, none))
    return found


# "none" and "(a small) one" stand for the finding last named ("No large effusion; a small one cannot be
# excluded.", "There is a pleural effusion; no, there is none.")
_ANAPHOR = re.compile(r"\bnone\b|\b(?:a|an)\s+(?:\w+\s+){0,2}?one\b|\bone\b(?=\s+(?:is|cannot|can't|may|might|could))",
                      re.IGNORECASE)


def _anaphora(text: str, scope: Span, earlier: list[_Mention], asked: frozenset[str]) -> list[_Mention]:
    previous = [m for m in earlier if not m.concept.startswith("normal:")]
    pronoun = _ANAPHOR.search(text, *scope)
    if not previous or pronoun is None:
        return []
    if pronoun.group().lower() == "none":
        status, cue, cue_text = ABSENT, pronoun.span(), pronoun.group()
    else:
        status, cue, cue_text = _status(text, scope, pronoun.span(), asked)
    none: frozenset[str] = frozenset()
    return [_Mention(previous[-1].concept, status, pronoun.span(), cue, cue_text, none, none)]


def _verdicts(text: str) -> list[tuple[str, Span, str]]:
    """Verdict words: a clause that is only "yes"/"no"/"negative"/..., or a clause opening "Yes"."""
    out = []
    for s, e in _scopes(text):
        words = list(re.finditer(r"[A-Za-z]+(?:'[a-z]+)?", text[s:e]))
        if not words:
            continue
        first = words[0].group().lower()
        span = (s + words[0].start(), s + words[0].end())
        opening = not text[:s + words[0].start()].strip() and text[s + words[0].end():].lstrip().startswith(",")
        alone = len(words) == 1 or first == "no" and opening  # an answer that opens "No, ..."
        if first in _STRONG_YES or (alone and first in _ALONE_YES):
            out.append((YES, span, words[0].group()))
        elif first in _STRONG_NO or (alone and first in _ALONE_NO):
            out.append((NO, span, words[0].group()))
    return out


# ---- the question -------------------------------------------------------------------------------------
# "Is there X?", "Do you see any X?", "Does the image show X?": the noun phrase X
_ASKS_FOR = re.compile(
    r"^\W*(?:is|are|was|were|does|do|did|can|could)\s+(?:there|you\s+(?:see|find|notice|identify)|we\s+see"
    r"|(?:the|this)\s+(?:chest\s+)?(?:image|film|x-?ray|radiograph|study|scan)\s+show|it\s+show)\s+"
    r"(?:(?:any|an?|the|some|evidence|signs?|findings?|features?|of|obvious|visible)\s+)*(?P<np>[^?]+?)"
    r"(?:\s+(?:in|on|at|within|along|over|seen|present|visible|noted|here|anywhere)\b[^?]*)?\s*\??\s*$",
    re.IGNORECASE)
# a noun phrase's head that names no finding by itself ("unclear area", "interstitial pattern")
_VAGUE_HEADS = {"area", "areas", "region", "regions", "zone", "zones", "part", "parts", "collection", "collections",
                "pattern", "patterns", "finding", "findings", "sign", "signs", "thing", "structure", "change",
                "changes", "shadow", "shadows", "spot", "spots", "process", "disease", "abnormality", "lobe", "line",
                "lines", "evidence", "image", "film", "chest", "lung", "lungs", "heart"}
# words that name no particular finding: "Is there any acute disease?", "something wrong with the heart?" ask
# about any finding, and whatever finding the answer names answers them
_GENERIC_WORDS = _VAGUE_HEADS | {
    "acute", "any", "significant", "abnormal", "abnormalities", "cardiopulmonary", "wrong", "something",
    "anything", "with", "the", "a", "an", "of", "in", "to", "pathology", "pathologies", "problem", "problems",
    "issue", "issues", "new", "other", "obvious", "major", "serious", "concerning", "unusual", "notable"}
_SUFFIXES = ("ations", "ation", "osis", "oses", "otic", "sis", "ses", "tic", "ies", "ia", "ic", "es", "s", "ed", "ing")
# an adjective the question asks about and the normal word it denies ("unclear" area: "the lungs are clear")
_ANTONYMS = {"unclear": "lungs", "hazy": "lungs", "opaque": "lungs", "abnormal": "study"}


def _stem(word: str) -> str:
    """A word's stem for matching its inflections ("kyphosis" -> "kyph", matching "kyphotic")."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def _own_finding(question: str, q: _Question) -> None:
    """The question's noun phrase as a finding of its own, when it names none the lexicon knows."""
    m = _ASKS_FOR.match(question)
    if m is None:
        return
    words = [w.lower() for w in re.findall(r"[A-Za-z][A-Za-z'-]*", m.group("np"))]
    if not words or len(words) > 6 or set(words) <= _GENERIC_WORDS:
        return
    head = words[words.index("of") - 1] if "of" in words[1:] else words[-1]
    forms = [r"[\s-]+".join(re.escape(w) for w in words[:-1]) + (r"[\s-]+" if len(words) > 1 else "")
             + re.escape(_stem(words[-1])) + r"\w*"]
    if head not in _VAGUE_HEADS and len(_stem(head)) >= 4:
        forms.append(re.escape(_stem(head)) + r"\w*")
    asked = {w for w in words if w in q.asked_hedges or _HEDGE.fullmatch(w) or w in _ANTONYMS}
    forms.extend(re.escape(w) for w in sorted(asked))
    q.asked_hedges = q.asked_hedges | {w for w in asked if _HEDGE.fullmatch(w)}
    q.own_concept = " ".join(words)
    q.own = re.compile(r"(?<![\w'])(?:" + "|".join(forms) + r")(?![\w'])", re.IGNORECASE)
    q.own_regions = frozenset({"study"} | {_ANTONYMS[w] for w in asked if w in _ANTONYMS})


def _read_question(question: str | None) -> _Question:
    q = _Question()
    if not question:
        return q
    q.asked_hedges = frozenset(m.group().lower() for m in _HEDGE.finditer(question)
                               if _ASKED_HEDGE.fullmatch(m.group()))
    q.sides = _sides_in(question)
    q.lobes = _lobes_in(question, 0, len(question), _ASKED_LOBE)
    q.concepts = {m.concept for m in match_terms(question)} - _ANATOMY
    regions = _regions_in(question, 0, len(question))
    for m in _ABNORMAL_WORDS.finditer(question):
        near = _nearest_region(question, regions, m.span())
        for region in near[1] if near else ():
            concept = _ABNORMAL_FOR.get(region, {}).get(m.group().lower())
            if concept:
                q.concepts.add(concept)
    if q.concepts:
        return q
    if re.search(r"\babnormal(?:ity|ities)?\b", question, re.IGNORECASE):
        q.normal_of, q.inverted = (regions[0][1][0] if regions else "study"), True
        return q
    for m in _NORMAL_WORDS.finditer(question):
        near = _nearest_region(question, regions, m.span())
        word = m.group().lower()
        key = "normal" if word.startswith("normal") else word
        for region in near[1] if near else ():
            if region in _NORMAL_FOR.get(key, set()):
                q.normal_of = region
                return q
    _own_finding(question, q)
    if q.own is not None:
        q.concepts = {q.own_concept}
    return q


# ---- deciding -------------------------------------------------------------------------------------------
def _side_fits(asked: frozenset[str], said: frozenset[str]) -> bool:
    return not asked or not said or asked <= said


def _lobe_fits(asked: frozenset[str], said: frozenset[str]) -> bool:
    return not asked or not said or bool(asked & said)


def _overlap(a: frozenset[str], b: frozenset[str]) -> bool:
    return not a or not b or bool(a & b)


def _finding_reading(mentions: list[_Mention], q: _Question, concept: str) -> AnswerReading | None:
    """The reading for one asked finding from the answer's mentions; None when nothing bears on it."""
    accept_present = {concept} | _NARROWER.get(concept, set())
    accept_absent = {concept} | {broad for broad, narrow in _NARROWER.items() if concept in narrow}
    yes, no, hedged, side_miss, lobe_miss = [], [], [], [], []
    for m in mentions:
        if m.status == PRESENT and m.concept in accept_present:
            if not _side_fits(q.sides, m.sides):
                side_miss.append(m)
            elif not _lobe_fits(q.lobes, m.lobes):
                lobe_miss.append(m)
            else:
                yes.append(m)
        elif m.status == ABSENT and m.concept in accept_absent and _overlap(q.sides, m.sides):
            no.append(m)
        elif m.status == POSSIBLE and m.concept in accept_present and _side_fits(q.sides, m.sides):
            hedged.append(m)
    if yes:
        if any(_overlap(y.sides, n.sides) and y.concept == n.concept for y in yes for n in no):
            return AnswerReading(UNCERTAIN, "contradiction", yes[0].span)
        return AnswerReading(YES, f"affirmed finding {yes[0].concept!r}", yes[0].span)
    if hedged:
        return _hedge_reading(hedged[0].cue_text, hedged[0].cue, YES)
    if no:
        return AnswerReading(NO, f"negated finding {no[0].concept!r}", no[0].cue)
    for misses, reason in ((side_miss, "laterality mismatch"), (lobe_miss, "lobe mismatch")):
        if misses:
            return AnswerReading(NO, reason, misses[0].span)
    # no mention of the finding: a normal region that covers it
    for m in mentions:
        if not m.concept.startswith("normal:"):
            continue
        region = m.concept.split(":", 1)[1]
        covered = (region == "study" or (region == "acute" and concept in _ACUTE)
                   or concept in _REGION_FINDINGS.get(region, set())
                   or concept == q.own_concept and region in q.own_regions)
        if covered and _overlap(q.sides, m.sides):
            if m.status == POSSIBLE:
                return _hedge_reading(m.cue_text, m.cue, NO)
            if m.status == PRESENT:
                if region in ("study", "acute"):
                    return AnswerReading(NO, "normal study", m.cue)
                return AnswerReading(NO, f"normal property {_REGION_LABEL.get(region, region)!r}", m.cue)
    return None


def _normality_reading(mentions: list[_Mention], q: _Question) -> AnswerReading | None:
    """The reading for "Is the region normal?" (``q.normal_of``)."""
    region = q.normal_of
    findings = _REGION_FINDINGS.get(region, set()) if region != "study" else None

    def of_region(concept: str) -> bool:
        return not concept.startswith("normal:") and (findings is None or concept in findings)

    present = [m for m in mentions if m.status == PRESENT and of_region(m.concept) and _side_fits(q.sides, m.sides)]
    hedged = [m for m in mentions if m.status == POSSIBLE and of_region(m.concept)]
    wanted = (f"normal:{region}", "normal:study")
    normal = [m for m in mentions if m.status == PRESENT
              and (m.concept in wanted or region == "study" and m.concept.startswith("normal:"))]
    not_normal = [m for m in mentions if m.concept == f"normal:{region}" and m.status == ABSENT]
    absent = [m for m in mentions if m.status == ABSENT and of_region(m.concept)]
    if present:
        return AnswerReading(NO, f"affirmed finding {present[0].concept!r}", present[0].span)
    if not_normal:
        return AnswerReading(NO, f"negated normal property {_REGION_LABEL.get(region, region)!r}", not_normal[0].cue)
    if hedged:
        return _hedge_reading(hedged[0].cue_text, hedged[0].cue, NO)
    if normal:
        return AnswerReading(YES, f"normal property {_REGION_LABEL.get(region, region)!r}", normal[0].cue)
    if absent:
        return AnswerReading(YES, f"negated finding {absent[0].concept!r}", absent[0].cue)
    return None


def _invert(reading: AnswerReading) -> AnswerReading:
    flip = {YES: NO, NO: YES}
    return AnswerReading(flip.get(reading.label, reading.label), reading.reason, reading.cue_span, reading.hedged,
                         flip.get(reading.leans or "", None))


def _content_reading(mentions: list[_Mention], q: _Question) -> AnswerReading | None:
    if q.normal_of is not None:
        reading = _normality_reading(mentions, q)
        return _invert(reading) if reading is not None and q.inverted else reading
    concepts = sorted(q.concepts) or sorted({m.concept for m in mentions if not m.concept.startswith("normal:")})
    if not q.concepts and not concepts:  # no question, only statements of normality
        normal = [m for m in mentions if m.status == PRESENT]
        return AnswerReading(NO, "normal study", normal[0].cue) if normal else None
    readings = [r for r in (_finding_reading(mentions, q, c) for c in concepts) if r is not None]
    if not readings:
        return None
    for label in (YES, UNCERTAIN, NO):  # "Is there an effusion or a pneumothorax?": any yes is yes
        for r in readings:
            if r.label == label:
                return r
    return None


def _elliptic_reading(text: str, q: _Question, mentions: list[_Mention]) -> AnswerReading | None:
    """An answer that names no finding and no other anatomy refers to the question's own finding."""
    asked_regions = {q.normal_of} if q.normal_of else {
        r for r, found in _REGION_FINDINGS.items() if q.concepts & found}
    if mentions:
        return None
    regions = {r for _, group in _regions_in(text, 0, len(text)) for r in group} - {"study"}
    if regions - asked_regions:
        return None
    if hedges := _hedges_in(text, 0, len(text), q.asked_hedges):
        m = hedges[0]
        denied = any(not any(h.start() <= n.start() < h.end() for h in hedges) for n in _BARE_NO.finditer(text))
        return _hedge_reading(m.group(), m.span(), NO if denied else YES)  # "Probably not." leans no
    if m := _BARE_NO.search(text):
        return AnswerReading(NO, f"negation {m.group().lower()!r}", m.span())
    if m := _NORMAL_WORDS.search(text):
        label = YES if q.normal_of and not q.inverted else NO
        return AnswerReading(label, f"normal {m.group().lower()!r}", m.span())
    if m := _ABNORMAL_WORDS.search(text):
        if q.concepts or q.normal_of:
            label = NO if q.normal_of and not q.inverted else YES
            return AnswerReading(label, f"property {m.group().lower()!r}", m.span())
    if m := _BARE_YES.search(text):
        return AnswerReading(YES, f"affirmation {m.group().lower()!r}", m.span())
    return None


def _side_cue(text: str, reading: AnswerReading) -> AnswerReading:
    """For a laterality mismatch, point at the side word said (the word that decides "no")."""
    if reading.reason != "laterality mismatch" or reading.cue_span is None:
        return reading
    for scope in _scopes(text):
        if scope[0] <= reading.cue_span[0] < scope[1]:
            side = _SIDE.search(text, scope[0], scope[1])
            if side:
                return replace(reading, cue_span=side.span())
    return reading


def read_answer(answer: str, question: str | None = None, hedged: str = HEDGED_DEFAULT) -> AnswerReading:
    """How ``answer`` answers the yes/no ``question``: label, deciding rule or cue, its span, and whether a
    hedge qualified it. ``hedged`` (one of ``HEDGED_READINGS``) says what a leaning hedge reads as:
    ``"uncertain"``, or ``"lean"``, the label it leans to ("suggestive of pneumonia" reads yes)."""
    if hedged not in HEDGED_READINGS:
        raise ValueError(f"hedged must be one of {', '.join(HEDGED_READINGS)}, not {hedged!r}")
    reading = _read(answer, question)
    if hedged == "lean" and reading.label == UNCERTAIN and reading.leans:
        return replace(reading, label=reading.leans)
    return reading


def _read(answer: str, question: str | None) -> AnswerReading:
    text = _clean(answer)
    if not re.search(r"[A-Za-z]", text):
        return AnswerReading(UNCERTAIN, "empty answer")
    q = _read_question(question)
    mentions = _mentions(text, q)
    verdicts = _verdicts(text)
    content = _content_reading(mentions, q)
    if content is not None:
        content = _side_cue(text, content)
    if verdicts:
        labels = {v[0] for v in verdicts}
        label, span, word = verdicts[0]
        disagrees = content is not None and (content.reason == "contradiction"
                                             or content.label in (YES, NO) and content.label != label)
        if len(labels) > 1 or disagrees:
            return AnswerReading(UNCERTAIN, "contradiction", span)
        return AnswerReading(label, f"verdict word {word.lower()!r}", span,
                             hedged=content is not None and content.hedged)
    if content is not None:
        return content
    elliptic = _elliptic_reading(text, q, mentions)
    if elliptic is not None:
        return elliptic
    if mentions or q.concepts or q.normal_of:
        return AnswerReading(UNCERTAIN, "asked finding not mentioned")
    return AnswerReading(UNCERTAIN, "no verdict")


def parse_answer(answer: str, question: str | None = None, hedged: str = HEDGED_DEFAULT) -> str:
    """``"yes"``, ``"no"`` or ``"uncertain"`` for an answer to a yes/no question (rules: module doc)."""
    return read_answer(answer, question, hedged).label




def normalise_truth(ground_truth: object) -> str | None:
    """A ground-truth value as ``"yes"``/``"no"``, or None when it is not a yes/no label."""
    if ground_truth is None or isinstance(ground_truth, float) and ground_truth != ground_truth:
        return None
    if isinstance(ground_truth, bool):
        return YES if ground_truth else NO
    key = str(ground_truth).strip().strip(".!").strip().lower()
    if key in YES_WORDS:
        return YES
    if key in NO_WORDS:
        return NO
    return None


def is_correct(label: str, ground_truth: object) -> bool | None:
    """Whether a parsed label matches the ground truth; None when the truth is not yes/no.

    ``label`` is a ``parse_answer`` result (or any yes/no spelling); ``"uncertain"`` is never correct.
    Ground truth accepts yes/no, true/false, 1/0, positive/negative, in any case.
    """
    truth = normalise_truth(ground_truth)
    if truth is None:
        return None
    return normalise_truth(label) == truth
