"""Yes / no / uncertain from a free-text answer to a yes/no question, and scoring against ground truth.

The rules of ``parse_answer``, in the order they are tried (all on whole words, never substrings:
"no" inside "normal", "know" or "cannot" is not a "no"):

1. Gemma control tokens (``<end_of_turn>``, ``<eos>``, ...), markdown emphasis, surrounding whitespace
   and punctuation are stripped. Nothing left: ``uncertain``.
2. A leading verdict word decides: "yes", "yeah", "yep", "affirmative" give ``yes``, and so do
   "positive", "correct", "true", "present" when they stand alone ("Positive." but not "Positive for
   ..."); "no", "negative", "false", "absent", "none", "incorrect" standing alone ("No.", "No, the
   angles are sharp.") give ``no``. "No evidence of effusion." and "No pneumothorax, but a small
   effusion." are read by the clause rules below.
3. A hedge makes it ``uncertain``: "cannot be excluded", "cannot rule out", "possible", "may",
   "might", "unclear", "indeterminate", "not sure", "difficult to", "I don't know", ...
4. With the question: the finding the question asks about (its lexicon concepts, ignoring plain
   anatomy such as "lung" or "heart") is looked up in the answer's clauses. A clause that names it
   after a negation ("no", "not", "none", "without", "negative for", "free of", "neither/nor") or
   with "is absent", "not seen", "ruled out", "excluded" after it negates it; a clause that names it
   otherwise affirms it. Any affirming clause gives ``yes`` ("No pneumothorax; small left effusion."
   answers "Is there an effusion?" with ``yes``); only negating clauses give ``no``.
5. Without a usable question, or when the answer does not name the finding: a negation anywhere gives
   ``no`` ("None seen.", "Not present."); an affirmation ("there is", "present", "seen", "shows",
   "consistent with", ...) gives ``yes`` only when the answer names some finding or no question was
   given.
6. Anything else is ``uncertain``. In particular a statement of normality that neither says yes/no nor
   names the finding asked about is *not* read as a negation: "The heart is normal in size." for "Is
   there cardiomegaly?" is ``uncertain``, as is "The lungs are clear." for "Is there a pneumothorax?".
   Inferring absence from normality is a clinical judgement the parser does not make; callers may
   count such answers separately.
"""

from __future__ import annotations

import re

from .lexicon import match_terms

__all__ = ["YES", "NO", "UNCERTAIN", "parse_answer", "is_correct", "normalise_truth"]

YES, NO, UNCERTAIN = "yes", "no", "uncertain"

_CONTROL = re.compile(r"</?(?:end_of_turn|start_of_turn|eos|bos|pad|unk|end_of_image|start_of_image)>|"
                      r"<\|[^|>]*\|>", re.IGNORECASE)
_MODEL_PREFIX = re.compile(r"^\s*(?:model|assistant|answer)\s*[:\n]\s*", re.IGNORECASE)

_YES_LEAD = {"yes", "yeah", "yep", "yup", "positive", "correct", "true", "present", "affirmative"}
_NO_LEAD = {"no", "nope", "negative", "false", "absent", "none", "incorrect", "nah"}
_YES_WORDS = {"yes", "yeah", "yep", "yup", "affirmative"}  # a verdict even when a clause follows
_NO_WORDS = {"nope", "nah"}

_HEDGE = re.compile(
    r"\b(?:can ?not|can't|could not|couldn't|unable to)\s+(?:be\s+)?"
    r"(?:exclude|excluded|rule[sd]? out|ruled out|determine|determined|assess|assessed|tell|say|confirm"
    r"|confirmed|evaluate|evaluated)\b"
    r"|\b(?:not|cannot be) (?:sure|certain|possible to (?:say|determine|tell))\b"
    r"|\b(?:possible|possibly|probable|probably|may|might|perhaps|questionable|equivocal|indeterminate"
    r"|unclear|uncertain|unsure|suspicious for|suspected|likely|unlikely|difficult to|hard to"
    r"|limited evaluation|not well evaluated)\b"
    r"|\bi (?:do not|don't) know\b",
    re.IGNORECASE,
)
_NEG_BEFORE = re.compile(
    r"\b(?:no|not|none|without|negative for|free of|neither|nor|absence of|never)\b|n't\b", re.IGNORECASE
)
_NEG_AFTER = re.compile(
    r"\b(?:is|are)?\s*(?:absent|none|negative|no|not (?:seen|present|identified|visualized|visualised"
    r"|demonstrated|noted|appreciated|evident|visible)|ruled out|excluded|resolved)\b",
    re.IGNORECASE,
)
_AFFIRM = re.compile(
    r"\b(?:there (?:is|are)|present|seen|shows?|showing|demonstrates?|demonstrated|consistent with"
    r"|compatible with|evidence of|visible|noted|identified|suggests?|suggestive of|represents?"
    r"|appears?|enlarged|increased|large|small|moderate|mild|severe)\b",
    re.IGNORECASE,
)
_CLAUSE = re.compile(r"[.;!?,]|\bbut\b|\bhowever\b|\balthough\b|\bwhereas\b", re.IGNORECASE)
_WORDS = re.compile(r"[a-z]+(?:'[a-z]+)?")

# concepts that name where, not what: a question about "the lungs" asks about no particular finding
_ANATOMY = {"lung", "lobe", "heart", "rib", "diaphragm", "mediastinum", "costophrenic", "hilum",
            "trachea", "spine", "clavicle", "aorta", "pleura"}


def _clean(answer: str) -> str:
    text = _CONTROL.sub(" ", answer or "")
    text = _MODEL_PREFIX.sub("", text)
    text = text.replace("*", " ").replace("_", " ").replace("\u2019", "'")
    return text.strip(" \t\r\n.,;:!?\"'`()[]-")


def _question_concepts(question: str | None) -> set[str]:
    if not question:
        return set()
    concepts = {m.concept for m in match_terms(question)}
    findings = concepts - _ANATOMY
    return findings or concepts


def _clause_polarity(clause: str, start: int, end: int) -> str:
    if _NEG_BEFORE.search(clause[:start]) or _NEG_AFTER.match(clause[end:].lstrip(" ,:-")):
        return NO
    return YES


def parse_answer(answer: str, question: str | None = None) -> str:
    """``"yes"``, ``"no"`` or ``"uncertain"`` for an answer to a yes/no question (rules: module doc)."""
    text = _clean(answer)
    if not text:
        return UNCERTAIN
    words = _WORDS.findall(text.lower())
    if not words:
        return UNCERTAIN
    # a verdict word leads; "no"/"none"/... only when alone ("No pneumothorax, but ..." is a clause)
    alone = re.match(r"\W*[a-z]+\s*(?:$|[.,;:!?\-])", text.lower()) is not None
    if words[0] in _YES_LEAD and (alone or words[0] in _YES_WORDS):
        return YES
    if words[0] in _NO_LEAD and (alone or words[0] in _NO_WORDS):
        return NO
    if _HEDGE.search(text):
        return UNCERTAIN

    concepts = _question_concepts(question)
    if concepts:
        verdicts = []
        for clause in _CLAUSE.split(text):
            for m in match_terms(clause):
                if m.concept in concepts:
                    verdicts.append(_clause_polarity(clause, m.start, m.end))
        if YES in verdicts:
            return YES
        if verdicts:
            return NO

    if _NEG_BEFORE.search(text) or _NEG_AFTER.search(text):
        return NO
    if _AFFIRM.search(text):
        named = {m.concept for m in match_terms(text)} - _ANATOMY
        if named or question is None:
            return YES
    return UNCERTAIN


_TRUE = {"yes", "y", "true", "t", "1", "positive", "pos", "present", "1.0"}
_FALSE = {"no", "n", "false", "f", "0", "negative", "neg", "absent", "0.0"}


def normalise_truth(ground_truth: object) -> str | None:
    """A ground-truth value as ``"yes"``/``"no"``, or None when it is not a yes/no label."""
    if ground_truth is None or isinstance(ground_truth, float) and ground_truth != ground_truth:
        return None
    if isinstance(ground_truth, bool):
        return YES if ground_truth else NO
    key = str(ground_truth).strip().strip(".!").strip().lower()
    if key in _TRUE:
        return YES
    if key in _FALSE:
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
