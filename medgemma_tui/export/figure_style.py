"""The one style every figure of a results tree is drawn in: journal column widths, fonts readable at
that size, a colour-blind-safe palette, panel letters, and numbers to the precision their interval
justifies.

Widths are the single (3.5 in) and double (7.2 in) columns most journals print (Nature's 89 mm and
183 mm, Radiology's 3.5 in and 7 in); text is 6 to 8 pt at that size, the range their artwork guides
ask for. Colours are Okabe and Ito's palette ("Color Universal Design", 2008); the outlines of the
anatomy and the box come from ``colormaps.OUTLINE_COLOURS``, as in the app and ``medtui masks``. PDF
and SVG keep their text as text (TrueType in the PDF, ``pdf.fonttype`` 42), which journals ask for.

matplotlib reads its rcParams when an artist is made and when a file is written, so a figure is drawn
and saved inside ``style()`` (``styled`` does it for a whole function); nothing changes the global
rcParams.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

SINGLE_COLUMN_IN = 3.5
DOUBLE_COLUMN_IN = 7.2
MAX_HEIGHT_IN = 9.0  # a full page less its caption

FONT_PT = 7.0  # tick labels, legends, table text
LABEL_PT = 7.5  # axis labels
TITLE_PT = 8.0  # panel titles
SUPTITLE_PT = 9.0  # the figure's title
LETTER_PT = 10.0  # panel letters
SMALL_PT = 6.0  # notes under a panel

# Okabe and Ito (2008), by name
BLUE = "#0072B2"
VERMILLION = "#D55E00"
GREEN = "#009E73"
ORANGE = "#E69F00"
SKY = "#56B4E9"
PURPLE = "#CC79A7"
YELLOW = "#F0E442"
BLACK = "#000000"
GRAY = "#7F7F7F"
PALETTE = (BLUE, VERMILLION, GREEN, ORANGE, PURPLE, SKY, YELLOW, BLACK)
ESTIMATE = BLUE  # points and their whiskers
REFERENCE = VERMILLION  # chance, 1 = chance, 0 = random order

RC = {
    "font.family": "DejaVu Sans",
    "font.size": FONT_PT,
    "axes.titlesize": TITLE_PT,
    "axes.titleweight": "normal",
    "axes.labelsize": LABEL_PT,
    "axes.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.labelsize": FONT_PT,
    "ytick.labelsize": FONT_PT,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.major.size": 2.5,
    "ytick.major.size": 2.5,
    "legend.fontsize": FONT_PT,
    "legend.frameon": False,
    "lines.linewidth": 1.0,
    "lines.markersize": 4.0,
    "errorbar.capsize": 2.0,
    "grid.linewidth": 0.4,
    "grid.alpha": 0.35,
    "figure.titlesize": SUPTITLE_PT,
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "svg.fonttype": "none",
}


@contextlib.contextmanager
def style() -> Iterator[None]:
    """The figures' rcParams for the drawing and saving done inside (matplotlib ``rc_context``)."""
    import matplotlib
    from cycler import cycler

    with matplotlib.rc_context({**RC, "axes.prop_cycle": cycler(color=PALETTE)}):
        yield


F = TypeVar("F", bound=Callable[..., Any])


def styled(draw: F) -> F:
    """``draw`` run inside ``style()``."""

    @functools.wraps(draw)
    def inside(*args, **kwargs):
        with style():
            return draw(*args, **kwargs)

    return inside  # type: ignore[return-value]


def panel_letter(ax, letter: str, x: float = -0.02, y: float = 1.02) -> None:
    """A bold lower-case panel letter at the top left of ``ax``, outside it (Nature's style: a, b, c)."""
    ax.text(x, y, letter, transform=ax.transAxes, fontsize=LETTER_PT, fontweight="bold", ha="right", va="bottom",
            gid=f"panel-{letter}")


def letters(count: int) -> list[str]:
    return [chr(ord("a") + i) for i in range(count)]


# ---- the metrics in words, as every figure names them ---------------------------------------------------
METRIC_LABELS = {  # column of evaluation_results.csv -> its name in a figure
    "pointing_hit": "pointing game (top cell in box)",
    "mass_in_box_lift": "mass in box / chance",
    "auroc": "AUROC of the map for the box",
    "inside_lungs_ratio": "map mass inside the lungs",
    "inside_body_ratio": "map mass inside the body",
    "left_fraction": "mass on the image left (R side)",  # README: image halves; R as on the film
    "apical_fraction": "mass in the apical third",
    "basal_fraction": "mass in the basal third",
    "border_fraction": "mass on the border cells",
    "entropy_norm": "entropy (1 = uniform)",
    "focus": "focus (the largest cell's share)",
    "gini": "Gini coefficient of the map",
    "top10_mass": "mass in the top 10% of cells",
    "image_share": "attention on image tokens",  # the raw row's share
    "bos_share": "attention on BOS",
}


def metric_label(name: str) -> str:
    return METRIC_LABELS.get(name, name)


# ---- numbers to the precision of their interval -----------------------------------------------------------
def decimals_for(low: float | None, high: float | None, value: float | None = None) -> int:
    """Decimal places that show an interval's width to its first significant digit, or its first two
    where that digit is 1 (Cole, "Too many digits: the presentation of numerical data", Arch Dis Child
    2015): a width of 9.5 gets none, 0.084 two, 0.1 two, 0.25 one; without an interval two significant
    figures of the value; never more than four."""
    if low is not None and high is not None and math.isfinite(low) and math.isfinite(high) and high > low:
        width = high - low
        places = -math.floor(math.log10(width))
        if f"{width:.0e}"[0] == "1":  # the width at one significant digit starts with 1
            places += 1
        return min(4, max(0, places))
    if value is not None and math.isfinite(value) and value != 0:
        return min(4, max(0, 1 - math.floor(math.log10(abs(value)))))
    return 2


def estimate_text(value: float | None, low: float | None = None, high: float | None = None) -> str:
    """``0.96 [0.92, 1.00]``, ``16 [12, 22]``: the value and its interval at the interval's precision;
    the value alone where there is no interval, ``n/a`` without a value."""
    if value is None or not math.isfinite(value):
        return "n/a"
    digits = decimals_for(low, high, value)

    def shown(x: float) -> str:  # no "-0.00": a number that rounds to zero has no sign
        text = f"{x:.{digits}f}"
        return text[1:] if text.startswith("-") and float(text) == 0 else text

    if low is None or high is None:
        return shown(value)
    return f"{shown(value)} [{shown(low)}, {shown(high)}]"
