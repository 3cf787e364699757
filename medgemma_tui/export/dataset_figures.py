"""The dataset figures of ``analysis/``: where the maps fall (``metric_distributions``), accuracy per
paraphrase kind (``accuracy_by_strategy``), the per-layer profile (``layer_profile``) and the dataset-level
figures with their study-bootstrap intervals (``dataset_intervals``). Each is drawn in
``export.figure_style``; the numbers come from ``analysis/`` and ``summary.json``, the method is said once,
in ``captions.md`` (``export.captions``).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medgemma_tui.analysis.strategy_accuracy import multi_kind_variants, strategy_bars
from medgemma_tui.export import figure_style as fs
from medgemma_tui.export.figures import new_figure, quiet, save_figure, save_or_none

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

ACCENT = fs.BLUE
DISTRIBUTION_METRICS = (
    "entropy_norm", "focus", "top10_mass", "gini", "inside_body_ratio", "inside_lungs_ratio", "border_fraction",
    "left_fraction", "apical_fraction", "basal_fraction", "bos_share", "image_share", "mass_in_box_lift",
    "auroc",
)


CORRECT_COLOR = fs.GREEN
WRONG_COLOR = fs.VERMILLION



def _finite(values) -> np.ndarray:
    import pandas as pd

    array = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(dtype=float)
    return array[np.isfinite(array)]


def _correct_mask(done: pd.DataFrame, want: bool) -> np.ndarray:
    if "correct" not in done:
        return np.zeros(len(done), dtype=bool)
    text = done["correct"].astype(str).str.strip().str.lower()
    return text.isin(("true", "1", "1.0") if want else ("false", "0", "0.0")).to_numpy()


@dataclass(frozen=True)
class DistributionPanel:
    name: str
    values: np.ndarray  # the finite values of the metric over the finished rows
    correct: np.ndarray  # those of rows answered correctly
    wrong: np.ndarray  # those of rows answered wrongly (rows not scored are in neither)


def distribution_panels(rows: pd.DataFrame | None) -> tuple[pd.DataFrame | None, list[DistributionPanel]]:
    """The finished rows and one panel per metric of DISTRIBUTION_METRICS that has a finite value there."""
    if rows is None or rows.empty:
        return rows, []
    done = rows[rows["error"].fillna("").astype(str) == ""] if "error" in rows else rows
    right, wrong = _correct_mask(done, True), _correct_mask(done, False)
    panels = []
    for name in DISTRIBUTION_METRICS:
        if name not in done:
            continue
        values = _finite(done[name])
        if len(values):
            panels.append(DistributionPanel(name, values, _finite(done[name][right]), _finite(done[name][wrong])))
    return done, panels


@quiet
@fs.styled
def plot_metric_distributions(rows: pd.DataFrame, path: Path, formats: str | Sequence[str] | None = None,
                              dpi: float | None = None) -> Path | None:
    """Histograms of the main metrics over finished rows, correct and wrong answers apart.

    Each panel counts its own rows (a metric undefined on a row, such as a box metric on a row without
    a box, leaves it out), shows each group as a share of that group so a small wrong group stays
    visible beside a large correct one, and marks each group's median. Metrics with no finite value
    are left out; None (and no file) when no metric has one.
    """
    from matplotlib.ticker import MaxNLocator

    done, panels = distribution_panels(rows)
    if not panels:
        return None
    split = any(len(p.correct) for p in panels) and any(len(p.wrong) for p in panels)
    ncols = min(4, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    figure = new_figure(fs.DOUBLE_COLUMN_IN, min(fs.MAX_HEIGHT_IN, 1.75 * nrows + 0.7))
    axes = np.atleast_1d(figure.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, panel in zip(axes, panels, strict=False):
        name, values = panel.name, panel.values
        bins = np.histogram_bin_edges(values, bins=int(np.clip(np.sqrt(len(values)), 5, 25)))
        if split:
            counts = []
            for label, group, colour in (("correct", panel.correct, CORRECT_COLOR),
                                         ("wrong", panel.wrong, WRONG_COLOR)):
                counts.append(f"{label} {len(group)}")
                if len(group):
                    ax.hist(group, bins=bins, weights=np.full(len(group), 1 / len(group)), histtype="stepfilled",
                            alpha=0.45, color=colour, lw=0)
                    ax.hist(group, bins=bins, weights=np.full(len(group), 1 / len(group)), histtype="step",
                            color=colour, lw=1.4)
                    ax.axvline(float(np.median(group)), color=colour, ls="--", lw=1.3)
            ax.set_ylabel("share of the group")
            subtitle = f"n = {len(values)}: " + ", ".join(counts)
        else:
            ax.hist(values, bins=bins, color=ACCENT, alpha=0.85)
            ax.axvline(float(np.median(values)), color="black", ls="--", lw=1.3)
            ax.set_ylabel("rows")
            subtitle = f"n = {len(values)}"
        ax.set_title(f"{fs.metric_label(name)}\n{subtitle}", fontsize=fs.FONT_PT, parse_math=False)
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.yaxis.set_major_locator(MaxNLocator(4, integer=not split))  # whole rows, or shares of a group
        ax.grid(axis="y", alpha=0.25)
    for ax in axes[len(panels):]:
        ax.axis("off")
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    if split:
        handles = [Patch(fc=CORRECT_COLOR, alpha=0.6, label="correct answer"),
                   Patch(fc=WRONG_COLOR, alpha=0.6, label="wrong answer"),
                   Line2D([], [], color="0.3", ls="--", label="median of the group")]
    else:
        handles = [Patch(fc=ACCENT, alpha=0.85, label="all finished rows"),
                   Line2D([], [], color="black", ls="--", label="median")]
    figure.legend(handles=handles, loc="upper center", ncol=len(handles), frameon=False,
                  bbox_to_anchor=(0.5, 1 - 0.3 / figure.get_figheight()))
    figure.suptitle(f"Where the maps fall, over {len(done)} finished rows: correct and wrong answers apart"
                    if split else f"Where the maps fall, over {len(done)} finished rows", x=0.02, ha="left",
                    fontweight="bold", y=1 - 0.05 / figure.get_figheight())
    figure.subplots_adjust(left=0.08, right=0.98, bottom=0.3 / figure.get_figheight(),
                           top=1 - 0.85 / figure.get_figheight(), hspace=0.85, wspace=0.42)
    return save_figure(figure, path, formats, dpi)


@quiet
def plot_accuracy_by_strategy(table: pd.DataFrame, path: Path, formats: str | Sequence[str] | None = None,
                              dpi: float | None = None, summary: dict[str, Any] | None = None) -> Path | None:
    """Accuracy per paraphrase strategy kind with 95% Wilson intervals (``table`` from summary.by_strategy);
    see ``accuracy_by_strategy_figure``. ``summary`` is accepted for the callers' sake: the figure draws one
    interval method, and the study-bootstrap interval of the overall accuracy is in dataset_intervals.png.
    None (and no file) when no kind has a scored row."""
    return save_or_none(accuracy_by_strategy_figure(table, summary), path, formats, dpi)


def accuracy_limits(low: np.ndarray, high: np.ndarray) -> tuple[float, float]:
    """The accuracy axis: from a round baseline below the lowest whisker to 1, so that values between 0.93
    and 1.00 are told apart; 0 where a whisker goes below 0.5. Every whisker lies inside."""
    bottom = float(np.min(low))
    if bottom < 0.5:
        return 0.0, 1.0
    return math.floor(bottom * 20 - 1e-9) / 20, 1.0  # the next 0.05 below


def multi_kind_note(table: pd.DataFrame) -> str:
    """The rule for variants naming several kinds (they count in each kind's row), with how many there are."""
    several, variants = multi_kind_variants(table)
    if not several:
        return ""
    return (f"{several} of {variants} variant rows name several kinds (e.g. synonym replacement + clause "
            "reordering) and count in each of their kinds' rows.")


@fs.styled
def accuracy_by_strategy_figure(table: pd.DataFrame, summary: dict[str, Any] | None = None) -> Figure | None:
    """Accuracy of the original questions (the baseline, first, gray) and of each paraphrase kind, best
    first, as a point with its 95% Wilson interval (one interval method: every point's), n beside each;
    the axis runs from a stated baseline (``accuracy_limits``) to 1 and the original's accuracy is a
    dashed line under the points. The rule for multi-kind variants is under the axis."""
    import pandas as pd

    bars = strategy_bars(table)
    if bars.empty:
        return None
    acc = bars["accuracy"].to_numpy(dtype=float)
    low, high = bars["low"].to_numpy(dtype=float), bars["high"].to_numpy(dtype=float)
    is_base = (bars["strategy"] == "original").to_numpy()
    note = multi_kind_note(table)
    figure = new_figure(fs.SINGLE_COLUMN_IN * 1.6, 0.95 + 0.2 * len(bars) + (0.25 if note else 0.0))
    ax = figure.subplots()
    y = np.arange(len(bars))
    left, right = accuracy_limits(low, high)
    if is_base.any():
        ax.axvline(float(acc[is_base][0]), color=fs.GRAY, ls="--", lw=0.7, zorder=1, gid="baseline")
    if left <= 0.5:
        ax.axvline(0.5, color=fs.REFERENCE, ls=":", lw=0.7, zorder=1, gid="chance")
    for base in (True, False):
        pick = is_base == base
        if not pick.any():
            continue
        colour = fs.GRAY if base else fs.ESTIMATE
        bars_ = ax.errorbar(acc[pick], y[pick], xerr=np.stack([acc[pick] - low[pick], high[pick] - acc[pick]]),
                            fmt="o", color=colour, ecolor=colour, elinewidth=1.0, capsize=2, ms=3.5, zorder=3,
                            gid="baseline-interval" if base else "intervals")
        for artist in (bars_.lines[0], *bars_.lines[1], *bars_.lines[2]):
            artist.set_clip_on(False)
    studies = table.set_index(table["strategy"].astype(str))["studies"] if "studies" in table else None
    for yi, value, lo, hi, n, kind in zip(y, acc, low, high, bars["scored"], bars["strategy"], strict=True):
        count = f"n = {n}"
        if studies is not None and pd.notna(studies.get(kind)):
            count += f", {int(studies[kind])} stud{'y' if int(studies[kind]) == 1 else 'ies'}"
        ax.text(1.04, yi, f"{fs.estimate_text(value, lo, hi)}   {count}", va="center", ha="left",
                transform=ax.get_yaxis_transform(), parse_math=False, gid="estimate")
    ax.set_yticks(y, list(bars["label"]))
    ax.tick_params(axis="y", length=0)
    ax.set_ylim(len(bars) - 0.5, -0.5)  # the baseline on top, then the kinds from best to worst
    ax.set_xlim(left, right)
    ax.set_xlabel(f"accuracy (axis from {left:g})")
    ax.grid(axis="x")
    if left <= 0.5:
        ax.text(0.5, -0.5, "chance", ha="center", va="bottom", fontsize=fs.SMALL_PT, color=fs.REFERENCE)
    figure.suptitle("Does rephrasing the question change the answer?", x=0.02, ha="left", fontweight="bold")
    height = figure.get_figheight()
    bottom = (0.45 + (0.25 if note else 0.0)) / height
    figure.subplots_adjust(left=0.33, right=0.62, top=1 - 0.45 / height, bottom=bottom)
    if note:
        figure.text(0.02, 0.06 / height, "\n".join(textwrap.wrap(note, 95)), fontsize=fs.SMALL_PT, color="0.25",
                    parse_math=False, gid="note")
    return figure


@quiet
@fs.styled
def plot_layer_profile(summaries: Sequence[dict[str, Sequence[float]]], path: Path,
                       layer_types: Sequence[str] | None = None, cells: int | None = None,
                       formats: str | Sequence[str] | None = None, dpi: float | None = None) -> Path | None:
    """Per-layer image share (and BOS share) and map entropy across the dataset: median and IQR over samples.

    ``summaries`` are ``analysis.views.layer_summaries`` of each sample (as stored in its meta.json).
    None (and no file) when no sample has a finite per-layer image share and entropy.
    """
    summaries = [s for s in (summaries or []) if isinstance(s, dict) and "image_share" in s and "entropy" in s]
    if not summaries:
        return None
    layers = min(min(len(s["image_share"]), len(s["entropy"])) for s in summaries)
    if layers == 0:
        return None
    for name in ("image_share", "entropy"):
        values = np.array([np.asarray(s[name][:layers], dtype=float) for s in summaries])
        if not np.isfinite(values).any():
            return None
    x = np.arange(layers)
    figure = new_figure(fs.DOUBLE_COLUMN_IN, 3.4)
    axes = figure.subplots(1, 2, gridspec_kw={"wspace": 0.3})

    def band(ax, name: str, colour: str, label: str, transform=None):
        values = np.array([np.asarray(s[name][:layers], dtype=float) for s in summaries])
        if transform is not None:
            values = transform(values)
        q25, q50, q75 = np.nanpercentile(values, [25, 50, 75], axis=0)
        ax.fill_between(x, q25, q75, color=colour, alpha=0.22, lw=0)
        ax.plot(x, q50, color=colour, lw=1.2, marker="o", ms=2, label=f"{label} (median, IQR)")

    band(axes[0], "image_share", fs.BLUE, "image tokens")
    if all(len(s.get("bos_share", ())) >= layers for s in summaries):
        band(axes[0], "bos_share", fs.VERMILLION, "BOS")
    axes[0].set_ylabel("share of the raw attention row")
    axes[0].set_ylim(0, 1)
    axes[0].set_title("Where the answer row's attention goes", loc="left")
    band(axes[1], "entropy", fs.GREEN, "entropy of the image map")
    if cells:
        axes[1].axhline(math.log(cells), color="0.3", ls="--", lw=1, label=f"uniform over {cells} cells")
    axes[1].set_ylabel("entropy of the image map (nats)")
    axes[1].set_title("How spread the image map is", loc="left")
    for ax in axes:
        ax.set_xlabel("decoder layer")
        ax.set_xticks(x[:: max(1, layers // 17)])
        ax.grid(alpha=0.25)
        if layer_types:
            globals_ = [i for i, t in enumerate(layer_types[:layers]) if t == "full_attention"]
            if globals_ and len(globals_) < layers:
                for i in globals_:
                    ax.axvline(i, color="0.55", ls=":", lw=1)
                ax.plot([], [], color="0.55", ls=":", lw=1, label="global-attention layer")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1, frameon=False)
    for ax, letter in zip(axes, fs.letters(2), strict=True):
        fs.panel_letter(ax, letter, x=-0.12, y=1.02)
    figure.suptitle(f"Which layers read the film, over {len(summaries)} rows", x=0.02, ha="left", fontweight="bold")
    figure.subplots_adjust(top=0.85, bottom=0.38, left=0.09, right=0.98)
    return save_figure(figure, path, formats, dpi)


# ---- the dataset-level figures with their study-bootstrap intervals ---------------------------------

INTERVAL_LABEL = "95% CI, study bootstrap"
PANEL_TITLES = {  # what each panel of dataset_intervals.png asks
    "share": "Shares (chance marked |)",
    "ratio": "Against chance (1 = chance)",
    "gain": "Faithfulness: gain over random orders (0 = random)",
}
RATIO_LOG_SPAN = 50.0  # a ratio panel whose whiskers span more than this factor is drawn on a log axis


def ratio_limits(low: np.ndarray, high: np.ndarray) -> tuple[float, float, bool]:
    """(left, right, log) of a ratio axis: from 0 to past the highest whisker and 1, or logarithmic when
    the whiskers span more than ``RATIO_LOG_SPAN`` (a ratio is never negative, so the axis never is)."""
    top = max(float(np.max(high)), 1.0)
    bottom = min(float(np.min(low)), 1.0)
    if bottom > 0 and top / bottom > RATIO_LOG_SPAN:
        return bottom / 1.5, top * 1.5, True
    return 0.0, top * 1.08, False


def gain_limits(low: np.ndarray, high: np.ndarray) -> tuple[float, float]:
    """An axis holding every whisker and 0, with a margin of 8% of the span."""
    left, right = min(float(np.min(low)), 0.0), max(float(np.max(high)), 0.0)
    margin = 0.08 * max(right - left, 1e-3)
    return left - margin, right + margin


def count_text(h) -> str:
    """``n = 120, 40 studies`` beside an estimate (the studies its interval resampled)."""
    parts = [f"n = {h.n}"] if h.n is not None else []
    if h.studies is not None:
        parts.append(f"{h.studies} stud{'y' if h.studies == 1 else 'ies'}")
    return ", ".join(parts)


def finding_title(shown) -> str:
    """The figure's title: the headline finding in words (accuracy, pointing game against its chance)."""
    by_name = {h.name: h for h in shown}
    parts = []
    if "accuracy" in by_name:
        h = by_name["accuracy"]
        parts.append(f"accuracy {fs.estimate_text(h.value, h.low, h.high)}")
    if "pointing_game" in by_name:
        h = by_name["pointing_game"]
        text = f"pointing game {fs.estimate_text(h.value, h.low, h.high)}"
        if h.reference is not None:
            text += f" (chance {h.reference:.2f})"
        parts.append(text)
    if not parts:
        return "Dataset-level figures with their 95% intervals"
    return "; ".join(parts).capitalize()


def estimate_panel(ax, items: Sequence, kind: str) -> None:
    """``items`` (``intervals_summary.Headline``) as points with the whiskers of their intervals, top to
    bottom, labelled on the left, ``value [interval]   n, studies`` on the right. The axis by ``kind``:
    shares on 0..1 with each chance marked, ratios to chance from 0 (or logarithmic, ``ratio_limits``),
    gains around 0 (``gain_limits``); every whisker lies inside it, drawn whole."""
    y = np.arange(len(items))
    values = np.array([h.value for h in items], dtype=float)
    low = np.array([h.value if h.low is None else h.low for h in items], dtype=float)
    high = np.array([h.value if h.high is None else h.high for h in items], dtype=float)
    low, high = np.minimum(low, values), np.maximum(high, values)
    if kind == "share":
        left, right, log = 0.0, 1.0, False
    elif kind == "ratio":
        left, right, log = ratio_limits(low, high)
    else:
        (left, right), log = gain_limits(low, high), False
    if log:
        from matplotlib.ticker import FuncFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    ax.set_xlim(left, right)
    if kind == "share":
        references = [(yi, h.reference) for yi, h in zip(y, items, strict=True) if h.reference is not None]
        if references:
            ax.plot([r for _, r in references], [yi for yi, _ in references], ls="none", marker="|", ms=9,
                    mew=1.5, color=fs.REFERENCE, gid="references", zorder=1)
    else:
        ax.axvline(1.0 if kind == "ratio" else 0.0, color=fs.REFERENCE, ls="--", lw=0.8, gid="references",
                   zorder=1)
    bars = ax.errorbar(values, y, xerr=np.stack([values - low, high - values]), fmt="o", color=fs.ESTIMATE,
                       ecolor=fs.ESTIMATE, elinewidth=1.0, capsize=2, ms=3.5, gid="intervals", zorder=3)
    for artist in (bars.lines[0], *bars.lines[1], *bars.lines[2]):
        artist.set_clip_on(False)  # a share of 0 or 1 sits on the frame, whole
    for yi, h in zip(y, items, strict=True):
        estimate = fs.estimate_text(h.value, h.low, h.high)
        if h.low is None and h.studies is not None:
            estimate += " (no interval)"
        ax.text(1.04, yi, f"{estimate}   {count_text(h)}".rstrip(), va="center", ha="left", fontsize=fs.FONT_PT,
                transform=ax.get_yaxis_transform(), parse_math=False, gid="estimate")
    ax.set_yticks(y, [h.label for h in items])
    ax.tick_params(axis="y", length=0)
    ax.set_ylim(len(items) - 0.5, -0.5)
    ax.grid(axis="x")


@fs.styled
def dataset_intervals_figure(summary: dict[str, Any]) -> Figure | None:
    """Every dataset-level figure of ``summary`` (``intervals_summary.headlines``) as a point with the
    whiskers of its study-bootstrap 95% interval (``summary["intervals"]``), its value, interval, n and
    studies beside it; one panel per kind: shares on 0..1 with chance marked, ratios to chance on an axis
    from 0 (or logarithmic), faithfulness gains around 0. Every whisker lies inside its axis. The method is
    said once, in ``analysis/captions.md``. None when no figure has a value."""
    from medgemma_tui.export.intervals_summary import headlines

    shown = headlines(summary)
    if not shown:
        return None
    kinds = [k for k in PANEL_TITLES if any(h.kind == k for h in shown)]
    rows = [[h for h in shown if h.kind == k] for k in kinds]
    heights = [len(r) + 0.9 for r in rows]
    figure = new_figure(fs.DOUBLE_COLUMN_IN, min(fs.MAX_HEIGHT_IN, 0.75 + 0.2 * sum(heights) + 0.5 * (len(kinds) - 1)))
    axes = np.atleast_1d(figure.subplots(len(kinds), 1, gridspec_kw={"height_ratios": heights}))
    for ax, kind, items, letter in zip(axes, kinds, rows, fs.letters(len(kinds)), strict=True):
        estimate_panel(ax, items, kind)
        ax.set_title(PANEL_TITLES[kind], loc="left")
        fs.panel_letter(ax, letter, x=-0.31, y=1.0)
    figure.suptitle(finding_title(shown), x=0.02, ha="left", fontweight="bold")
    height = figure.get_figheight()
    top, bottom, gap = 1 - 0.5 / height, 0.25 / height, 0.5  # gap: inches between panels, for the titles
    mean_height = ((top - bottom) * height - (len(kinds) - 1) * gap) / len(kinds)
    figure.subplots_adjust(left=0.26, right=0.66, top=top, bottom=bottom, hspace=gap / mean_height)
    return figure


@quiet
def plot_dataset_intervals(summary: dict[str, Any], path: Path, formats: str | Sequence[str] | None = None,
                           dpi: float | None = None) -> Path | None:
    """``dataset_intervals_figure`` written to ``path``; None (and no file) when there is nothing to draw."""
    return save_or_none(dataset_intervals_figure(summary), path, formats, dpi)
