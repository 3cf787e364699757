"""What a yes/no question asks (``analysis.answers``): its findings, or the region whose normality it
asks about, its side and lobe; a question naming no finding the lexicon knows has its own noun phrase
taken as the finding."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .answer_scopes import lobes_in, nearest_region, regions_in, sides_in
from .answer_words import (
    ABNORMAL_FOR,
    ABNORMAL_WORDS,
    ANATOMY,
    ASKED_HEDGE,
    ASKED_LOBE,
    HEDGE,
    NORMAL_FOR,
    NORMAL_WORDS,
)
from .lexicon import match_terms


@dataclass
class Question:
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


def _own_finding(question: str, q: Question) -> None:
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
    asked = {w for w in words if w in q.asked_hedges or HEDGE.fullmatch(w) or w in _ANTONYMS}
    forms.extend(re.escape(w) for w in sorted(asked))
    q.asked_hedges = q.asked_hedges | {w for w in asked if HEDGE.fullmatch(w)}
    q.own_concept = " ".join(words)
    q.own = re.compile(r"(?<![\w'])(?:" + "|".join(forms) + r")(?![\w'])", re.IGNORECASE)
    q.own_regions = frozenset({"study"} | {_ANTONYMS[w] for w in asked if w in _ANTONYMS})


def read_question(question: str | None) -> Question:
    q = Question()
    if not question:
        return q
    q.asked_hedges = frozenset(m.group().lower() for m in HEDGE.finditer(question)
                               if ASKED_HEDGE.fullmatch(m.group()))
    q.sides = sides_in(question)
    q.lobes = lobes_in(question, 0, len(question), ASKED_LOBE)
    q.concepts = {m.concept for m in match_terms(question)} - ANATOMY
    regions = regions_in(question, 0, len(question))
    for m in ABNORMAL_WORDS.finditer(question):
        near = nearest_region(question, regions, m.span())
        for region in near[1] if near else ():
            concept = ABNORMAL_FOR.get(region, {}).get(m.group().lower())
            if concept:
                q.concepts.add(concept)
    if q.concepts:
        return q
    if re.search(r"\babnormal(?:ity|ities)?\b", question, re.IGNORECASE):
        q.normal_of, q.inverted = (regions[0][1][0] if regions else "study"), True
        return q
    for m in NORMAL_WORDS.finditer(question):
        near = nearest_region(question, regions, m.span())
        word = m.group().lower()
        key = "normal" if word.startswith("normal") else word
        for region in near[1] if near else ():
            if region in NORMAL_FOR.get(key, set()):
                q.normal_of = region
                return q
    _own_finding(question, q)
    if q.own is not None:
        q.concepts = {q.own_concept}
    return q
