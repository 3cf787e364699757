"""What an answer says about each finding (``analysis.answers``): every finding and every anatomy word
with a property becomes a mention, present, absent or possible in its ConText scope, with its side and
lobe; and the verdict words ("Yes", "No", "Negative") standing alone."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from medgemma_tui.data.schema import NO, YES

from .answer_question import Question
from .answer_scopes import (
    context_status,
    first_side_after,
    lobes_in,
    nearest_region,
    pieces,
    regions_in,
    scopes,
    sides_in,
)
from .answer_words import (
    ABNORMAL_FOR,
    ABNORMAL_WORDS,
    ABSENT,
    ALONE_NO,
    ALONE_YES,
    ANATOMY,
    EXISTENTIAL,
    GENERIC,
    HEDGE,
    NEG_FORWARD,
    NORMAL_FOR,
    NORMAL_STUDY,
    NORMAL_WORDS,
    POSSIBLE,
    PRESENT,
    RELATIVE,
    SENTENCE,
    STRONG_NO,
    STRONG_YES,
    TERMINATE,
    Span,
)
from .lexicon import match_terms


@dataclass
class Mention:
    concept: str  # a finding concept, or "normal:<region>" for a statement of normality
    status: str  # present / absent / possible
    span: Span  # the finding's (or property word's) span
    cue: Span  # the span carrying the status: negation or hedge trigger, else the finding itself
    cue_text: str
    sides: frozenset[str]
    lobes: frozenset[str]


def _located(text: str, scope: Span, mentions: list[Mention]) -> list[Mention]:
    """Each mention's sides and lobes: the words between it and the previous mention of its scope,
    else those between it and the next ("left effusion with right atelectasis": left, then right)."""
    ordered = sorted(mentions, key=lambda m: m.span)
    bounds = [scope[0]] + [m.span[1] for m in ordered]
    starts = [m.span[0] for m in ordered] + [scope[1]]
    out = []
    for i, m in enumerate(ordered):
        before, after = (bounds[i], m.span[0]), (m.span[1], starts[i + 1])
        sides = sides_in(text, *before) or first_side_after(text, *after)
        lobes = lobes_in(text, *before) or lobes_in(text, *after)
        out.append(Mention(m.concept, m.status, m.span, m.cue, m.cue_text, sides, lobes))
    return out


def _clause_negation(text: str, scope: Span) -> tuple[Span, str] | None:
    """The word that makes a clause a denial ("there is no blunting", "the angles are sharp"), if any. A
    negation after something the clause sees ("I can see a pleural line with no lung markings beyond it")
    is a detail of what it sees, not a denial."""
    masked = [m.span() for m in HEDGE.finditer(text, *scope)]
    for m in NEG_FORWARD.finditer(text, *scope):
        if not any(a <= m.start() < b for a, b in masked):
            seen = EXISTENTIAL.search(text, scope[0], m.start())
            if seen and re.search(r"[A-Za-z]", text[seen.end(): m.start()]):
                return None
            return m.span(), m.group()
    m = NORMAL_WORDS.search(text, *scope)
    return (m.span(), m.group()) if m else None


def _referred(text: str, sentence: list[Span], i: int, found: list[Mention], before: list[Mention]
              ) -> list[Mention]:
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
    if i > 0 and RELATIVE.search(text, sentence[i - 1][1], scope[0]):
        stated = [m for m in before if not m.concept.startswith("normal:") and m.status != ABSENT]
        if stated and all(m.status == POSSIBLE for m in stated):  # "There might be an infiltrate, which ..."
            return [Mention(m.concept, POSSIBLE, m.span, stated[0].cue, stated[0].cue_text, m.sides, m.lobes)
                    if m.status == PRESENT and not m.concept.startswith("normal:") else m for m in found]
        denial = None if stated else _clause_negation(text, sentence[i - 1])
        if denial is None:
            return found
        cue, word = denial
        return [Mention(m.concept, ABSENT, m.span, cue, word, m.sides, m.lobes)
                if not m.concept.startswith("normal:") else m for m in found]
    if GENERIC.search(text, *scope) and not EXISTENTIAL.search(text, *scope):
        return [m for m in found if m.concept.startswith("normal:") or m.status == ABSENT]
    return found


def find_mentions(text: str, q: Question | None = None) -> list[Mention]:
    """Every finding and every anatomy-with-property statement of the answer, with its ConText status."""
    q = q or Question()
    out: list[Mention] = []
    for sentence_span in pieces(text, SENTENCE, 0, len(text)):
        sentence = pieces(text, TERMINATE, *sentence_span)
        before: list[Mention] = []
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


def _alternative(text: str, scope: Span, earlier: list[Mention]) -> None:
    """A clause that offers another explanation for the finding last named makes that finding possible."""
    m = _ALTERNATIVE.match(text, *scope)
    stated = [i for i, e in enumerate(earlier) if not e.concept.startswith("normal:") and e.status == PRESENT]
    if m is None or not stated:
        return
    start = m.start() + len(m.group()) - len(m.group().lstrip(" ,"))
    earlier[stated[-1]] = replace(earlier[stated[-1]], status=POSSIBLE, cue=(start, m.end()),
                                  cue_text=text[start: m.end()])


def _scope_mentions(text: str, scope: Span, q: Question) -> list[Mention]:
    s0, e0 = scope
    none: frozenset[str] = frozenset()
    found: list[Mention] = []
    taken: list[Span] = []
    for m in match_terms(text[s0:e0]):
        if m.concept in ANATOMY:
            continue
        span = (s0 + m.start, s0 + m.end)
        status, cue, cue_text = context_status(text, scope, span, q.asked_hedges)
        found.append(Mention(m.concept, status, span, cue, cue_text, none, none))
        taken.append(span)
    if q.own is not None:
        for m in q.own.finditer(text, s0, e0):
            if any(a < m.end() and m.start() < b for a, b in taken):
                continue
            status, cue, cue_text = context_status(text, scope, m.span(), q.asked_hedges)
            found.append(Mention(q.own_concept, status, m.span(), cue, cue_text, none, none))
    regions = regions_in(text, s0, e0)
    for m in NORMAL_WORDS.finditer(text, s0, e0):
        word = m.group().lower()
        key = "normal" if word.startswith("normal") else word.replace("well defined", "well-defined")
        near = nearest_region(text, regions, m.span())
        for region in near[1] if near else ():
            if region in NORMAL_FOR.get(key, set()):
                status, cue, cue_text = context_status(text, scope, m.span(), q.asked_hedges)
                if status == PRESENT:
                    cue, cue_text = m.span(), m.group()
                found.append(Mention(f"normal:{region}", status, m.span(), cue, cue_text, none, none))
    for m in ABNORMAL_WORDS.finditer(text, s0, e0):
        near = nearest_region(text, regions, m.span())
        for region in near[1] if near else ():
            concept = ABNORMAL_FOR.get(region, {}).get(m.group().lower())
            if concept:
                status, cue, cue_text = context_status(text, scope, m.span(), q.asked_hedges)
                found.append(Mention(concept, status, m.span(), cue, cue_text, none, none))
    for m in NORMAL_STUDY.finditer(text, s0, e0):
        region = "acute" if m.group(1) else "study"
        cue = (m.start(), m.start() + 2)  # the "no" of "no acute cardiopulmonary process"
        found.append(Mention(f"normal:{region}", PRESENT, m.span(), cue, m.group()[:2], none, none))
    return found


# "none" and "(a small) one" stand for the finding last named ("No large effusion; a small one cannot be
# excluded.", "There is a pleural effusion; no, there is none.")
_ANAPHOR = re.compile(r"\bnone\b|\b(?:a|an)\s+(?:\w+\s+){0,2}?one\b|\bone\b(?=\s+(?:is|cannot|can't|may|might|could))",
                      re.IGNORECASE)


def _anaphora(text: str, scope: Span, earlier: list[Mention], asked: frozenset[str]) -> list[Mention]:
    previous = [m for m in earlier if not m.concept.startswith("normal:")]
    pronoun = _ANAPHOR.search(text, *scope)
    if not previous or pronoun is None:
        return []
    if pronoun.group().lower() == "none":
        status, cue, cue_text = ABSENT, pronoun.span(), pronoun.group()
    else:
        status, cue, cue_text = context_status(text, scope, pronoun.span(), asked)
    none: frozenset[str] = frozenset()
    return [Mention(previous[-1].concept, status, pronoun.span(), cue, cue_text, none, none)]


def find_verdicts(text: str) -> list[tuple[str, Span, str]]:
    """Verdict words: a clause that is only "yes"/"no"/"negative"/..., or a clause opening "Yes"."""
    out = []
    for s, e in scopes(text):
        words = list(re.finditer(r"[A-Za-z]+(?:'[a-z]+)?", text[s:e]))
        if not words:
            continue
        first = words[0].group().lower()
        span = (s + words[0].start(), s + words[0].end())
        opening = not text[:s + words[0].start()].strip() and text[s + words[0].end():].lstrip().startswith(",")
        alone = len(words) == 1 or first == "no" and opening  # an answer that opens "No, ..."
        if first in STRONG_YES or (alone and first in ALONE_YES):
            out.append((YES, span, words[0].group()))
        elif first in STRONG_NO or (alone and first in ALONE_NO):
            out.append((NO, span, words[0].group()))
    return out
