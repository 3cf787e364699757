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
from dataclasses import dataclass, replace

from medgemma_tui.config.schema import HEDGED_READINGS
from medgemma_tui.data.schema import NO, YES, normalise_answer

from .answer_mentions import Mention, find_mentions, find_verdicts
from .answer_question import Question, read_question
from .answer_scopes import hedges_in, regions_in, scopes
from .answer_words import (
    ABNORMAL_WORDS,
    ABSENT,
    ACUTE,
    BARE_NO,
    BARE_YES,
    LEANING,
    NARROWER,
    NORMAL_WORDS,
    POSSIBLE,
    PRESENT,
    REGION_FINDINGS,
    REGION_LABEL,
    SIDE,
    UNCERTAIN,
    Span,
    clean_answer,
)

__all__ = [
    "YES", "NO", "UNCERTAIN", "HEDGED_READINGS", "HEDGED_DEFAULT", "AnswerReading", "read_answer", "parse_answer",
    "is_correct", "normalise_truth",
]

HEDGED_DEFAULT = HEDGED_READINGS[0]  # a leaning hedge is left open unless [analysis] hedged_answers = "lean"


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
    leans = towards if LEANING.fullmatch(word) else None
    return AnswerReading(UNCERTAIN, f"hedge {word!r}", cue, hedged=True, leans=leans)


# ---- deciding -------------------------------------------------------------------------------------------
def _side_fits(asked: frozenset[str], said: frozenset[str]) -> bool:
    return not asked or not said or asked <= said


def _lobe_fits(asked: frozenset[str], said: frozenset[str]) -> bool:
    return not asked or not said or bool(asked & said)


def _overlap(a: frozenset[str], b: frozenset[str]) -> bool:
    return not a or not b or bool(a & b)


def _finding_reading(mentions: list[Mention], q: Question, concept: str) -> AnswerReading | None:
    """The reading for one asked finding from the answer's mentions; None when nothing bears on it."""
    accept_present = {concept} | NARROWER.get(concept, set())
    accept_absent = {concept} | {broad for broad, narrow in NARROWER.items() if concept in narrow}
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
        covered = (region == "study" or (region == "acute" and concept in ACUTE)
                   or concept in REGION_FINDINGS.get(region, set())
                   or concept == q.own_concept and region in q.own_regions)
        if covered and _overlap(q.sides, m.sides):
            if m.status == POSSIBLE:
                return _hedge_reading(m.cue_text, m.cue, NO)
            if m.status == PRESENT:
                if region in ("study", "acute"):
                    return AnswerReading(NO, "normal study", m.cue)
                return AnswerReading(NO, f"normal property {REGION_LABEL.get(region, region)!r}", m.cue)
    return None


def _normality_reading(mentions: list[Mention], q: Question) -> AnswerReading | None:
    """The reading for "Is the region normal?" (``q.normal_of``)."""
    region = q.normal_of
    findings = REGION_FINDINGS.get(region, set()) if region != "study" else None

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
        return AnswerReading(NO, f"negated normal property {REGION_LABEL.get(region, region)!r}", not_normal[0].cue)
    if hedged:
        return _hedge_reading(hedged[0].cue_text, hedged[0].cue, NO)
    if normal:
        return AnswerReading(YES, f"normal property {REGION_LABEL.get(region, region)!r}", normal[0].cue)
    if absent:
        return AnswerReading(YES, f"negated finding {absent[0].concept!r}", absent[0].cue)
    return None


def _invert(reading: AnswerReading) -> AnswerReading:
    flip = {YES: NO, NO: YES}
    return AnswerReading(flip.get(reading.label, reading.label), reading.reason, reading.cue_span, reading.hedged,
                         flip.get(reading.leans or "", None))


def _content_reading(mentions: list[Mention], q: Question) -> AnswerReading | None:
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


def _elliptic_reading(text: str, q: Question, mentions: list[Mention]) -> AnswerReading | None:
    """An answer that names no finding and no other anatomy refers to the question's own finding."""
    asked_regions = {q.normal_of} if q.normal_of else {
        r for r, found in REGION_FINDINGS.items() if q.concepts & found}
    if mentions:
        return None
    regions = {r for _, group in regions_in(text, 0, len(text)) for r in group} - {"study"}
    if regions - asked_regions:
        return None
    if hedges := hedges_in(text, 0, len(text), q.asked_hedges):
        m = hedges[0]
        denied = any(not any(h.start() <= n.start() < h.end() for h in hedges) for n in BARE_NO.finditer(text))
        return _hedge_reading(m.group(), m.span(), NO if denied else YES)  # "Probably not." leans no
    if m := BARE_NO.search(text):
        return AnswerReading(NO, f"negation {m.group().lower()!r}", m.span())
    if m := NORMAL_WORDS.search(text):
        label = YES if q.normal_of and not q.inverted else NO
        return AnswerReading(label, f"normal {m.group().lower()!r}", m.span())
    if m := ABNORMAL_WORDS.search(text):
        if q.concepts or q.normal_of:
            label = NO if q.normal_of and not q.inverted else YES
            return AnswerReading(label, f"property {m.group().lower()!r}", m.span())
    if m := BARE_YES.search(text):
        return AnswerReading(YES, f"affirmation {m.group().lower()!r}", m.span())
    return None


def _side_cue(text: str, reading: AnswerReading) -> AnswerReading:
    """For a laterality mismatch, point at the side word said (the word that decides "no")."""
    if reading.reason != "laterality mismatch" or reading.cue_span is None:
        return reading
    for scope in scopes(text):
        if scope[0] <= reading.cue_span[0] < scope[1]:
            side = SIDE.search(text, scope[0], scope[1])
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
    text = clean_answer(answer)
    if not re.search(r"[A-Za-z]", text):
        return AnswerReading(UNCERTAIN, "empty answer")
    q = read_question(question)
    mentions = find_mentions(text, q)
    verdicts = find_verdicts(text)
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
    """A ground-truth value as ``"yes"``/``"no"`` (the spellings ``data.schema.normalise_answer`` reads), or
    None when it is not a yes/no label."""
    if ground_truth is None or isinstance(ground_truth, float) and ground_truth != ground_truth:
        return None
    if isinstance(ground_truth, bool):
        return YES if ground_truth else NO
    label = normalise_answer(str(ground_truth))
    return label if label in (YES, NO) else None


def is_correct(label: str, ground_truth: object) -> bool | None:
    """Whether a parsed label matches the ground truth; None when the truth is not yes/no.

    ``label`` is a ``parse_answer`` result (or any yes/no spelling); ``"uncertain"`` is never correct.
    Ground truth accepts yes/no, true/false, 1/0, positive/negative, in any case.
    """
    truth = normalise_truth(ground_truth)
    if truth is None:
        return None
    return normalise_truth(label) == truth
