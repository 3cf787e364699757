"""Where a trigger reaches in an answer (ConText's scope) and what stands near a mention: its sides,
lobes and the anatomy a property word describes; ``context_status`` says whether a mention is negated,
hedged or stated (Harkema et al., J Biomed Inform 2009)."""

from __future__ import annotations

import re

from .answer_words import (
    ABSENT,
    HEDGE,
    HEDGE_BACKWARD,
    HEDGE_FORWARD,
    LEFT,
    LOBE,
    NEG_BACKWARD,
    NEG_FORWARD,
    POSSIBLE,
    PRESENT,
    PSEUDO,
    REGION,
    REGION_OF,
    RIGHT,
    SENTENCE,
    SIDE,
    TERMINATE,
    Span,
)


def pieces(text: str, pattern: re.Pattern[str], start: int, end: int) -> list[Span]:
    out, cut = [], start
    for m in pattern.finditer(text, start, end):
        if m.start() > cut:
            out.append((cut, m.start()))
        cut = max(cut, m.end())
    if end > cut:
        out.append((cut, end))
    return [(s, e) for s, e in out if text[s:e].strip()]


def scopes(text: str) -> list[Span]:
    """Sentences cut at ConText termination terms: the spans a trigger can reach."""
    out = []
    for s, e in pieces(text, SENTENCE, 0, len(text)):
        out.extend(pieces(text, TERMINATE, s, e))
    return out


def sides_in(text: str, start: int = 0, end: int | None = None) -> frozenset[str]:
    sides: set[str] = set()
    for m in SIDE.finditer(text, start, len(text) if end is None else end):
        word = m.group().lower()
        if word.startswith("left"):
            sides.add(LEFT)
        elif word.startswith("right"):
            sides.add(RIGHT)
        else:
            sides.update((LEFT, RIGHT))
    return frozenset(sides)


def lobes_in(text: str, start: int, end: int, pattern: re.Pattern[str] = LOBE) -> frozenset[str]:
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


def hedges_in(text: str, start: int, end: int, asked: frozenset[str]) -> list[re.Match[str]]:
    """Hedge triggers, less the words the question itself asks about ("Do you see any unclear area?")."""
    return [m for m in HEDGE.finditer(text, start, end) if m.group().lower() not in asked]


def context_status(text: str, scope: Span, span: Span, asked: frozenset[str] = frozenset()) -> tuple[str, Span, str]:
    """ConText in one scope: is the mention at ``span`` negated, hedged, or plainly stated?"""
    s0, e0 = scope
    found = hedges_in(text, s0, e0, asked)
    hedges = [m for m in found
              if not (HEDGE_FORWARD.fullmatch(m.group()) and m.start() >= span[1])
              and not (HEDGE_BACKWARD.fullmatch(m.group()) and m.end() <= span[0])]
    masked = [m.span() for m in found]
    pseudo = [m.span() for m in PSEUDO.finditer(text, s0, e0)]

    def free(m: re.Match[str]) -> bool:  # a trigger inside a hedge or a pseudo-trigger is no trigger
        return not any(a <= m.start() < b for a, b in pseudo + masked)

    forward = [m for m in NEG_FORWARD.finditer(text, s0, span[0]) if free(m)]
    backward = [m for m in NEG_BACKWARD.finditer(text, span[1], e0) if free(m)]
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


def nearest_region(
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


def regions_in(text: str, start: int, end: int) -> list[tuple[Span, tuple[str, ...]]]:
    out = []
    for m in REGION.finditer(text, start, end):
        index = next(i for i, g in enumerate(m.groups()) if g is not None)
        out.append((m.span(), REGION_OF[index]))
    return out


def first_side_after(text: str, start: int, end: int) -> frozenset[str]:
    """The side phrase that follows a finding ("on the left", "on the left and right"), not later ones
    ("a pneumothorax on the left with mediastinal shift to the right" is on the left)."""
    first = SIDE.search(text, start, end)
    if first is None:
        return frozenset()
    joined = re.compile(r"(?:\s*(?:,|and|or|&)\s*)+(?:the\s+)?", re.IGNORECASE).match(text, first.end(), end)
    stop = first.end()
    if joined:
        second = SIDE.match(text, joined.end(), end)
        stop = second.end() if second else stop
    return sides_in(text, first.start(), stop)
