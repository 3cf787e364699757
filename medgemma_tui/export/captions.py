"""``analysis/captions.md``: a caption a paper can start from for each dataset figure written, saying
once what the figure's titles leave out: what is plotted, n, the interval and its method, the chance level.

Each caption is built from the same numbers the figure draws (``summary.json``, ``by_strategy.csv``), so
the two never disagree; ``medtui figures`` writes them again beside the redrawn figures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medgemma_tui.export.atomic import write_bytes_atomic
from medgemma_tui.export.figure_style import estimate_text
from medgemma_tui.registry import FAITHFULNESS

if TYPE_CHECKING:
    import pandas as pd

CAPTIONS_NAME = "captions.md"
BOOTSTRAP = ("95% confidence intervals from a cluster bootstrap that resamples studies (a patient's film with "
             "its questions and their paraphrases) with replacement, 1000 times, seeded (Davison and Hinkley "
             "1997, section 3.8); a figure over fewer than two studies has no interval")


@dataclass(frozen=True)
class CaptionInputs:
    """What the captions read: summary.json's numbers and the by-strategy table."""

    summary: dict[str, Any]
    strategies: pd.DataFrame | None = None


def _headline_sentence(h) -> str:
    text = f"{h.label} {estimate_text(h.value, h.low, h.high)}"
    counts = [f"n = {h.n}"] if h.n is not None else []
    if h.studies is not None:
        counts.append(f"{h.studies} studies")
    return text + (f" ({', '.join(counts)})" if counts else "")


def dataset_intervals_caption(inputs: CaptionInputs) -> str:
    from medgemma_tui.export.intervals_summary import headlines

    summary = inputs.summary
    shown = headlines(summary)
    kinds = {h.kind for h in shown}
    parts = [f"**Dataset-level figures over {summary.get('done', '?')} finished rows.** Points are estimates and "
             f"whiskers {BOOTSTRAP}. Beside each point: the estimate [interval], n (rows, question groups or "
             "samples behind it) and the studies resampled."]
    letter = iter("abc")
    if "share" in kinds:
        chance = summary.get("pointing_game_chance")
        chance_text = f" ({chance:.3f} here)" if isinstance(chance, (int, float)) else ""
        parts.append(f"({next(letter)}) Shares on 0 to 1: accuracy over the scored yes/no questions (chance 0.5, "
                     "the tick), hard-positive consistency (the share of question groups whose paraphrases all get "
                     "the same answer), and the pointing game over boxed rows of focal findings (the map's top cell "
                     "on the box; the tick is the hit rate of a top cell drawn uniformly at random by the same "
                     f"rule{chance_text}).")
    if "ratio" in kinds:
        parts.append(f"({next(letter)}) Ratios to chance on an axis from 0 (dashed: 1 = chance): the pointing game "
                     "over its chance, and the mass-in-box lift (the map's share inside the box over the box's "
                     "share of the film).")
    if "gain" in kinds:
        parts.append(f"({next(letter)}) Faithfulness: the mean gain of the map's order of image tokens over random "
                     "orders of the same tokens, for the deletion and insertion curves (Petsiuk et al. 2018) on "
                     "log-probability and probability, and for ERASER's comprehensiveness and sufficiency (DeYoung "
                     "et al. 2020) where they ran, each signed so that above 0 beats random (dashed: 0 = no better "
                     "than a random order).")
    parts.append("Values: " + "; ".join(_headline_sentence(h) for h in shown) + ".")
    return " ".join(parts)


def accuracy_by_strategy_caption(inputs: CaptionInputs) -> str:
    from medgemma_tui.analysis.strategy_accuracy import strategy_bars
    from medgemma_tui.export.dataset_figures import multi_kind_note

    bars = strategy_bars(inputs.strategies)
    if bars.empty:
        return ""
    values = "; ".join(f"{label} {estimate_text(a, lo, hi)} (n = {n})" for label, a, lo, hi, n in
                       zip(bars["label"], bars["accuracy"], bars["low"], bars["high"], bars["scored"], strict=True))
    note = multi_kind_note(inputs.strategies)
    return ("**Accuracy by paraphrase kind.** The original questions (gray, top; dashed line) and each kind of "
            "paraphrase, best first: the share of scored yes/no questions answered correctly (chance 0.5), with "
            "95% Wilson score intervals, which treat rows as independent (rows of one film are not; the study "
            "bootstrap of the overall accuracy is in dataset_intervals). The axis starts where stated, not at 0, "
            "so that close values can be told apart. " + (note + " " if note else "") + "Values: " + values + ".")


def _beats_random(faith: dict[str, Any]) -> str:
    """``deletion (probability) 0.25, ...``: the share of samples whose map beats every random order by 2 SD."""
    parts = []
    for key, value in faith.items():
        if not key.endswith(("_beats_random", "_beats_random_prob")) or not isinstance(value, (int, float)):
            continue
        curve, _, scale = key.partition("_beats_random")
        name = curve if curve in ("comprehensiveness", "sufficiency") else \
            f"{curve} ({'probability' if scale else 'log-probability'})"
        parts.append(f"{name} {value:.2f}")
    return ", ".join(parts)


def faithfulness_caption(inputs: CaptionInputs) -> str:
    faith = inputs.summary.get(FAITHFULNESS) or {}
    samples = faith.get("samples")
    beats = _beats_random(faith)
    return ("**Does the map's order of image tokens matter more to the answer than random orders?** Over "
            f"{samples if samples is not None else 'the'} samples, split by the answer's reading (n per reading "
            "in the legend). (a) Deletion and (b) insertion curves (RISE, Petsiuk et al. 2018): the probability "
            "of the followed answer token as image tokens are removed from the film, or restored onto a neutral "
            "image, the map's most attended first. (c) Comprehensiveness and (d) sufficiency (ERASER, DeYoung et "
            "al. 2020), where they ran: the probability lost when the map's top 1, 5, 10, 20 and 50% of the image "
            "tokens are removed, or kept alone; drawn at even steps because their aggregate, the AOPC, is the "
            "mean over these bins. Solid: the mean over samples of the map's order; dashed: the mean of the "
            "random orders' mean, shaded by one random order's SD (mean over samples). (e) The mean gain of the "
            "map's order over the random orders (area under the curve for deletion and insertion, on log-"
            "probability and probability; AOPC for comprehensiveness and sufficiency), each signed so that above "
            f"0 beats random (dashed: 0), with whiskers {BOOTSTRAP}; beside each, n (samples) and the studies "
            "resampled." + (f" Share of samples whose map beats every random order by more than 2 SD: {beats}."
                            if beats else ""))


def metric_distributions_caption(inputs: CaptionInputs) -> str:
    done = inputs.summary.get("done")
    return (f"**Map metrics over {done if done is not None else 'the'} finished rows**, correct and wrong answers "
            "apart, each group as a share of itself; dashed: each group's median. A metric undefined on a row "
            "(a box metric without a box) leaves the row out of that panel; each panel says its n.")


def layer_profile_caption(inputs: CaptionInputs) -> str:
    return ("**Per decoder layer**, over the finished rows: the median and interquartile range of the share of "
            "the answer row's attention on image tokens (and on the BOS token), and of the entropy of the "
            "head-mean image map (dashed: the entropy of a uniform map).")


CAPTIONS: dict[str, Callable[[CaptionInputs], str]] = {  # figure file name -> its caption
    "dataset_intervals.png": dataset_intervals_caption,
    "accuracy_by_strategy.png": accuracy_by_strategy_caption,
    "faithfulness.png": faithfulness_caption,
    "metric_distributions.png": metric_distributions_caption,
    "layer_profile.png": layer_profile_caption,
}


def captions_text(written: Iterable[str], inputs: CaptionInputs) -> str:
    """The markdown of ``captions.md``: a section per figure written that has a caption."""
    sections = []
    for name in written:
        make = CAPTIONS.get(name)
        text = make(inputs) if make is not None else ""
        if text:
            sections.append(f"## {Path(name).stem}\n\n{text}\n")
    return "# Figure captions\n\n" + "\n".join(sections) if sections else ""


def write_captions(folder: Path, written: Iterable[str], inputs: CaptionInputs) -> Path | None:
    """``folder/captions.md`` for the figures written; None (and no file) when none has a caption."""
    text = captions_text(written, inputs)
    if not text:
        return None
    path = Path(folder) / CAPTIONS_NAME
    write_bytes_atomic(path, text.encode("utf-8"))
    return path
