"""The search of the one-pixel attack (Su, Vargas and Sakurai 2019, "One pixel attack for fooling deep neural
networks"): differential evolution over k pixels, each one where (an index into the allowed pixels, e.g. the
lung fields) and how much (a change in [-max_delta, max_delta] on the 0-255 scale).

No model here: ``search`` takes a ``score`` that maps candidates ``[n, k, 2]`` (index, change) to the
answer's log-probability ``[n]`` (to be lowered) and whether each candidate made another token the model's
first choice ``[n]`` (a flip of the verdict, to be confirmed by answering again). scipy's
``differential_evolution`` runs with ``vectorized=True`` and ``updating="deferred"``, so a whole population
is scored at once (``score`` batches it through the model), ``integrality`` keeps the indices whole, and
the search stops after the generation in which a candidate flipped. The budget bounds the queries:
``population x 2k x (generations + 1)`` at most. The same seed gives the same candidates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

Score = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Budget:
    pixels: int = 1  # k, pixels changed together
    max_delta: float = 255.0  # a pixel's largest change, 0-255 scale
    population: int = 10  # scipy's popsize: candidates per generation = population x 2k
    generations: int = 8  # scipy's maxiter: generations after the first population
    seed: int = 0

    @property
    def max_queries(self) -> int:
        return self.population * 2 * self.pixels * (self.generations + 1)


@dataclass
class SearchResult:
    candidate: np.ndarray  # [k, 2] the chosen pixels: (index into the allowed pixels, change)
    logprob: float  # the answer's log-probability under it
    flipped: bool  # whether another token was the first choice under it
    queries: int  # candidates scored
    generations: int  # generations run after the first population
    history: list[float] = field(default_factory=list)  # the best log-probability after each generation


def decode(vectors: np.ndarray, pixels: int, allowed: int) -> np.ndarray:
    """DE's parameter vectors ``[2k, n]`` (scipy's vectorized layout) -> candidates ``[n, k, 2]``, indices whole."""
    x = np.asarray(vectors, dtype=np.float64).reshape(pixels, 2, -1).transpose(2, 0, 1).copy()
    x[..., 0] = np.clip(np.rint(x[..., 0]), 0, allowed - 1)
    return x


def search(score: Score, allowed: int, budget: Budget) -> SearchResult:
    """The k pixels among ``allowed`` positions, and their changes, that lower the answer's log-probability most
    (or flip it) within ``budget``."""
    from scipy.optimize import differential_evolution

    if allowed < 1:
        raise ValueError("no pixel to change: the allowed region is empty")
    k = budget.pixels
    state = {"queries": 0, "best": (np.inf, None, False), "flip": (np.inf, None), "history": []}

    def objective(vectors: np.ndarray) -> np.ndarray:
        candidates = decode(vectors.reshape(2 * k, -1), k, allowed)
        logprob, flipped = score(candidates)
        logprob = np.asarray(logprob, dtype=np.float64)
        flipped = np.asarray(flipped, dtype=bool)
        state["queries"] += len(candidates)
        i = int(np.argmin(logprob))
        if logprob[i] < state["best"][0]:
            state["best"] = (float(logprob[i]), candidates[i], bool(flipped[i]))
        if flipped.any():
            j = int(np.flatnonzero(flipped)[np.argmin(logprob[flipped])])
            if logprob[j] < state["flip"][0]:
                state["flip"] = (float(logprob[j]), candidates[j])
        return logprob

    def after_generation(intermediate_result) -> bool:  # scipy passes the generation's OptimizeResult
        state["history"].append(state["best"][0])
        return state["flip"][1] is not None  # stop: a candidate flipped the verdict

    bounds = [(0, allowed - 1), (-budget.max_delta, budget.max_delta)] * k
    differential_evolution(objective, bounds, maxiter=budget.generations, popsize=budget.population,
                           rng=np.random.default_rng(budget.seed), polish=False, tol=0, atol=-1,  # no early convergence
                           vectorized=True, updating="deferred", integrality=[True, False] * k,
                           callback=after_generation, init="latinhypercube")
    if state["flip"][1] is not None:
        logprob, candidate = state["flip"]
        flipped = True
    else:
        logprob, candidate, flipped = state["best"]
    return SearchResult(candidate=np.asarray(candidate), logprob=logprob, flipped=flipped,
                        queries=state["queries"], generations=len(state["history"]),
                        history=state["history"])
