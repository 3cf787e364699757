"""The study-bootstrap intervals of summary.json, drawn in the dataset figures and shown in the app."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest

from medgemma_tui.analysis import strategy_accuracy
from medgemma_tui.export import dataset_figures, faithfulness_figure
from medgemma_tui.export.intervals_summary import Headline, headlines

SUMMARY = {
    "done": 416, "accuracy": 0.964, "scored": 416,
    "hard_positive_answer_consistency": 0.9, "hard_positive_groups": 70,
    "pointing_game": 0.5, "pointing_game_chance": 0.0625, "pointing_game_n": 56,
    "pointing_game_mass_in_box_lift": 4.2,
    "faithfulness": {"samples": 20, "mean_deletion_gain": 0.3, "mean_insertion_gain": -0.1,
                     "mean_deletion_gain_prob": 0.05, "mean_insertion_gain_prob": 0.02,
                     "deletion_beats_random": 0.25, "mean_comprehensiveness_gain": 0.04,
                     "mean_sufficiency_gain": -0.02},
    "intervals": {"accuracy": [0.916, 1.0], "hard_positive_answer_consistency": [0.8, 0.97],
                  "pointing_game": [0.375, 0.625], "pointing_game_over_chance": [6.0, 10.0],
                  "mass_in_box_lift": [3.1, 5.0], "deletion_gain": [0.1, 0.5], "insertion_gain": [-0.3, 0.1],
                  "deletion_gain_prob": [0.0, 0.1], "insertion_gain_prob": [-0.01, 0.05],
                  "comprehensiveness_gain": [0.01, 0.07], "sufficiency_gain": [-0.05, 0.01]},
}


def test_headlines_pair_each_figure_with_its_interval_and_its_chance():
    shown = {h.name: h for h in headlines(SUMMARY)}
    assert list(shown) == ["accuracy", "hard_positive_answer_consistency", "pointing_game",
                           "pointing_game_over_chance", "mass_in_box_lift", "deletion_gain", "deletion_gain_prob",
                           "insertion_gain", "insertion_gain_prob", "comprehensiveness_gain", "sufficiency_gain"]
    assert shown["accuracy"].text() == "accuracy 0.964 [0.916, 1.000]"
    assert shown["pointing_game"].reference == 0.0625
    assert shown["pointing_game_over_chance"].value == pytest.approx(8.0)  # 0.5 / 0.0625
    assert shown["mass_in_box_lift"].value == 4.2 and shown["mass_in_box_lift"].n == 56
    assert shown["insertion_gain"].text() == "insertion gain (log-prob) -0.100 [-0.300, 0.100]"
    # a figure without a value is left out; one without an interval says so by having none
    partial = headlines({"accuracy": 0.5, "scored": 4, "intervals": {"accuracy": None},
                         "interval_studies": {"accuracy": 1}})
    assert [h.text() for h in partial] == ["accuracy 0.500 (no interval: 1 study)"]
    lift = Headline("mass_in_box_lift", "mass-in-box lift", 65.4712, None, None, n=4, kind="ratio", studies=1)
    assert lift.text() == "mass-in-box lift 65.5 (no interval: 1 study)"  # a thousandth of a ratio is no figure


def _errorbar_spans(ax) -> list[tuple[float, float]]:
    """low, high of each horizontal whisker the axes drew, one after the other."""
    from matplotlib.collections import LineCollection

    spans = []
    for collection in ax.collections:
        if isinstance(collection, LineCollection):
            spans += [value for seg in collection.get_segments() for value in (seg[:, 0].min(), seg[:, 0].max())]
    return [float(v) for v in spans]


def test_the_intervals_figure_draws_every_interval_of_summary_json():
    figure = dataset_figures.dataset_intervals_figure(SUMMARY)
    shares, ratios, gains = figure.axes
    assert _errorbar_spans(shares) == pytest.approx([0.916, 1.0, 0.8, 0.97, 0.375, 0.625])
    assert _errorbar_spans(ratios) == pytest.approx([6.0, 10.0, 3.1, 5.0])
    assert _errorbar_spans(gains) == pytest.approx([0.1, 0.5, 0.0, 0.1, -0.3, 0.1, -0.01, 0.05, 0.01, 0.07,
                                                    -0.05, 0.01])
    texts = [t.get_text() for t in shares.texts if t.get_gid() == "estimate"]
    assert texts[0] == "0.96 [0.92, 1.00]   n = 416"  # to the precision of the interval
    # the chance ticks: 0.5 for accuracy, pointing_chance by the same rule for the pointing game
    ticks = next(line for line in shares.lines if line.get_gid() == "references")
    assert list(ticks.get_xdata()) == [0.5, 0.0625]
    # the title names the finding; the method is said once, in captions.md, not in every title
    assert figure._suptitle.get_text().startswith("Accuracy 0.96 [0.92, 1.00]; pointing game 0.5 [0.4, 0.6]")
    assert all("bootstrap" not in ax.get_title() for ax in figure.axes)
    assert dataset_figures.dataset_intervals_figure({"intervals": {}}) is None


def _axis_holds_every_whisker(ax) -> bool:
    left, right = ax.get_xlim()
    spans = _errorbar_spans(ax)
    return all(left - 1e-12 <= v <= right + 1e-12 for v in spans)


# the case: pointing game / chance 16.037 [12.090, 21.613] with a lift near 1, and a ratio interval
# reaching 0; a gain interval far from 0 on both sides
@pytest.mark.parametrize("ratio, lift, gain", [
    ([12.09, 21.613], [0.9, 1.4], [-0.3, 0.1]),
    ([0.0, 3.0], [0.2, 0.8], [1.0, 2.5]),
    ([0.01, 40.0], [0.02, 0.5], [-2.0, -1.0]),
])
def test_every_whisker_lies_inside_its_axis_and_no_ratio_axis_goes_below_zero(ratio, lift, gain):
    summary = {**SUMMARY, "pointing_game": 0.5, "pointing_game_chance": 0.5 / ((ratio[0] + ratio[1]) / 2),
               "pointing_game_mass_in_box_lift": (lift[0] + lift[1]) / 2,
               "faithfulness": {**SUMMARY["faithfulness"], "mean_insertion_gain": (gain[0] + gain[1]) / 2},
               "intervals": {**SUMMARY["intervals"], "pointing_game_over_chance": ratio, "mass_in_box_lift": lift,
                             "insertion_gain": gain}}
    figure = dataset_figures.dataset_intervals_figure(summary)
    shares, ratios, gains = figure.axes
    for ax in figure.axes:
        assert _axis_holds_every_whisker(ax)
    assert shares.get_xlim() == (0.0, 1.0)
    assert ratios.get_xlim()[0] >= 0.0
    assert ratios.get_xlim()[0] <= 1.0 <= ratios.get_xlim()[1]  # the chance line is on the axis
    assert gains.get_xlim()[0] <= 0.0 <= gains.get_xlim()[1]
    # whiskers are never cut by the frame: the artists draw outside the axes when they reach it
    bars = [c for c in shares.collections if c.get_gid() is None or True]
    assert all(not c.get_clip_on() for c in bars if c.get_segments())


def test_a_ratio_axis_spanning_a_hundredfold_is_logarithmic_and_positive():
    left, right, log = dataset_figures.ratio_limits(np.array([0.05, 3.0]), np.array([0.4, 40.0]))
    assert log and 0 < left <= 0.05 and right >= 40.0
    left, right, log = dataset_figures.ratio_limits(np.array([12.09]), np.array([21.613]))
    assert not log and left == 0.0 and right >= 21.613


def test_the_accuracy_figure_draws_wilson_intervals_only_on_an_axis_from_a_stated_baseline():
    # every value between 0.93 and 1.00: the axis must not start at 0, or they cannot be told apart
    table = pd.DataFrame({"strategy": ["original", "synonym replacement", "voice change"],
                          "scored": [300, 200, 150], "accuracy": [0.97, 0.93, 1.0], "rows": [300, 200, 150],
                          "studies": [100, 80, 1]})
    figure = dataset_figures.accuracy_by_strategy_figure(table, SUMMARY)
    ax = figure.axes[0]
    assert not [p for p in ax.patches if p.get_gid() == "overall-interval"]  # one interval method per figure
    spans = _errorbar_spans(ax)
    bounds = [strategy_accuracy.wilson_interval(round(a * n), n) for a, n in ((0.97, 300), (1.0, 150), (0.93, 200))]
    assert spans == pytest.approx([v for pair in bounds for v in pair])
    left, right = ax.get_xlim()
    assert 0.8 <= left < min(spans) and right == 1.0 and _axis_holds_every_whisker(ax)
    assert f"{left:g}" in ax.get_xlabel()  # the baseline is stated
    estimates = [t.get_text() for t in ax.texts if t.get_gid() == "estimate"]
    assert estimates[0].endswith("n = 300, 100 studies") and estimates[1].endswith("n = 150, 1 study")
    baseline = next(line for line in ax.lines if line.get_gid() == "baseline")
    assert baseline.get_zorder() < 3  # the original's accuracy under the points, never over them


def _payload(label: str, offset: float) -> dict:
    fractions = [0.0, 0.5, 1.0]
    curve = {"map": [offset - 0.1, offset - 1.0, offset - 2.0], "random": [offset - 0.1, offset - 0.5, offset - 2.0],
             "random_sd": [0.0, 0.2, 0.0]}
    curve.update(map_prob=list(np.exp(curve["map"])), random_prob=list(np.exp(curve["random"])),
                 random_prob_sd=[0.0, 0.05, 0.0])
    return {"answer_label": label, "fractions": fractions, "deletion": curve, "insertion": curve}


def _eraser(offset: float) -> dict:
    scores = {"bins": [0.01, 0.05, 0.1, 0.2, 0.5], "map": [offset + d for d in (0.0, 0.1, 0.2, 0.3, 0.4)],
              "random": [0.0, 0.05, 0.1, 0.15, 0.2], "random_sd": [0.01] * 5}
    return {"comprehensiveness": scores, "sufficiency": scores}


def _panels(figure) -> dict[str, object]:
    """The faithfulness figure's axes by their panel letter."""
    return {t.get_text(): ax for ax in figure.axes for t in ax.texts if (t.get_gid() or "").startswith("panel-")}


def test_the_faithfulness_figure_draws_erasers_scores_at_each_bin_as_the_study_computes_them():
    payloads = [{**_payload("yes", 0.0), **_eraser(0.0)}, {**_payload("yes", 0.0), **_eraser(0.2)}]
    panels = _panels(faithfulness_figure.faithfulness_figure(payloads, SUMMARY))
    assert sorted(panels) == ["a", "b", "c", "d", "e"]
    comprehensiveness, sufficiency = panels["c"], panels["d"]
    lines = {line.get_gid(): line for line in comprehensiveness.lines}
    # the mean over the two samples of the probability lost at each bin; the bins at even steps, as AOPC
    # (the mean over the bins) weighs them
    assert list(lines["map-yes"].get_ydata()) == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    assert list(lines["map-yes"].get_xdata()) == [0, 1, 2, 3, 4]
    assert [t.get_text() for t in comprehensiveness.get_xticklabels()] == ["1%", "5%", "10%", "20%", "50%"]
    assert "lower" in sufficiency.get_title(loc="left")
    assert sorted(_panels(faithfulness_figure.faithfulness_figure([_payload("yes", 0.0)], SUMMARY))) == \
        ["a", "b", "c"]  # trees made before ERASER: the curves and the gains


def test_the_faithfulness_figure_splits_by_answer_with_n_beside_each_reading():
    payloads = [_payload("yes", 0.0), _payload("yes", -1.0), _payload("no", 0.0)]
    figure = faithfulness_figure.faithfulness_figure(payloads, SUMMARY)
    deletion = _panels(figure)["a"]
    lines = {line.get_gid(): line for line in deletion.lines}
    assert set(lines) == {"map-yes", "random-yes", "map-no", "random-no"}
    # the probability curves: the mean over the two "yes" samples of exp(the log-probability curve)
    assert list(lines["map-yes"].get_ydata()) == pytest.approx((np.exp([-0.1, -1.0, -2.0]) +
                                                                np.exp([-1.1, -2.0, -3.0])) / 2)
    assert list(lines["map-no"].get_ydata()) == pytest.approx(np.exp([-0.1, -1.0, -2.0]))
    legend = [t.get_text() for t in figure.legends[0].get_texts()]
    assert legend[:2] == ["answer 'yes' (n = 2)", "answer 'no' (n = 1)"]
    assert faithfulness_figure.faithfulness_figure([], SUMMARY) is None


def test_the_faithfulness_figure_fits_a_double_column_with_whole_whiskers_and_no_method_in_its_titles():
    payloads = [{**_payload("yes", 0.0), **_eraser(0.0)}, {**_payload("no", 0.0), **_eraser(0.2)}]
    figure = faithfulness_figure.faithfulness_figure(payloads, SUMMARY)
    figure.canvas.draw()
    assert figure.get_figwidth() <= 7.2 and figure.get_figheight() <= 9.0
    gains = _panels(figure)["e"]
    # every gain of summary.json with its interval, each whisker inside the axis, drawn whole
    assert _errorbar_spans(gains) == pytest.approx([0.1, 0.5, 0.0, 0.1, -0.3, 0.1, -0.01, 0.05, 0.01, 0.07,
                                                    -0.05, 0.01])
    assert _axis_holds_every_whisker(gains)
    assert all(not c.get_clip_on() for c in gains.collections if c.get_gid() is None and c.get_segments())
    estimates = [t.get_text() for t in gains.texts if t.get_gid() == "estimate"]
    assert estimates[0] == "0.3 [0.1, 0.5]   n = 20"  # deletion gain (log-prob): value, interval, n beside
    # the method and the interval are said once, in captions.md
    titles = [ax.get_title(loc="left") for ax in figure.axes] + [figure._suptitle.get_text()]
    for word in ("et al", "Petsiuk", "DeYoung", "ERASER", "bootstrap", "95%", "CI"):
        assert not any(word in title for title in titles), word


def _text_of(renderable, width: int = 120) -> str:
    from rich.console import Console

    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_the_app_shows_each_dataset_figure_with_its_interval():
    from textual.app import App

    from medgemma_tui.app.screens.summary import SummaryScreen
    from medgemma_tui.app.widgets.metrics import DatasetSummaryPanel

    class Host(App):
        def on_mount(self) -> None:
            self.push_screen(SummaryScreen(SUMMARY, "demo"))

    async def body() -> str:
        app = Host()
        async with app.run_test(size=(140, 30)) as pilot:
            await pilot.pause()
            return _text_of(app.screen.query_one(DatasetSummaryPanel).content)

    text = asyncio.run(body())
    lines = {line.split("  ")[0].strip(): line for line in text.splitlines() if line.strip()}
    lines = {name: " ".join(text.split()) for name, text in lines.items()}  # value and interval in columns
    assert "0.964 [0.916, 1.000]" in lines["accuracy"] and "n 416" in lines["accuracy"]
    assert "0.500 [0.375, 0.625]" in lines["pointing game"] and "chance 0.062" in lines["pointing game"]
    assert "0.300 [0.100, 0.500]" in lines["deletion gain (log-prob)"]
    assert "0.040 [0.010, 0.070]" in lines["comprehensiveness gain (ERASER)"]
    assert "-0.020 [-0.050, 0.010]" in lines["sufficiency gain (ERASER)"]
    assert "95% CI, study bootstrap" in text


def test_a_live_session_summarises_the_rows_it_ran_as_eval_would():
    """The app's dataset figures for samples run here: the same summarise as summary.json, by study."""
    from medgemma_tui.analysis.intervals import bootstrap_ci
    from medgemma_tui.app.entries import DONE, Summary
    from medgemma_tui.app.screens.summary import session_summary
    from medgemma_tui.app.session import Session
    from medgemma_tui.data.schema import load_dataset
    from medgemma_tui.resources import demo_dataset_csv

    if not demo_dataset_csv().exists():
        pytest.skip("the demo dataset CSV is not in this checkout")
    dataset = load_dataset(demo_dataset_csv())
    session = Session.from_dataset(dataset, model_source=None)
    scored = [item for item in session.items if item.truth in ("yes", "no")][:12]
    rng = np.random.default_rng(0)
    correct = rng.random(len(scored)) < 0.7
    for item, right in zip(scored, correct, strict=True):
        label = item.truth if right else ("no" if item.truth == "yes" else "yes")
        entry = session.entries[item.key]
        entry.status, entry.summary = DONE, Summary(label, bool(right), {"entropy_norm": 0.9},
                                                    np.full((16, 16), 1 / 256, np.float32), None)
    summary = session_summary(session)
    assert summary["accuracy"] == pytest.approx(correct.mean())
    expected = bootstrap_ci(correct.astype(float), [item.study for item in scored], n=1000, seed=0)
    assert summary["intervals"]["accuracy"] == pytest.approx(list(expected))


def test_summary_intervals_count_their_studies_and_leave_one_study_without_an_interval():
    from medgemma_tui.analysis.dataset_intervals import dataset_intervals
    from medgemma_tui.analysis.intervals import bootstrap_ci

    done = pd.DataFrame({
        "key": [f"k{i}" for i in range(6)], "study_id": ["a", "a", "b", "b", "c", "c"],
        "image_path": ["a.png", "a.png", "b.png", "b.png", "c.png", "c.png"],
        "correct": pd.array([True, False, True, True, None, None], dtype="boolean"),
    })
    focal = pd.DataFrame({"key": ["k0", "k1"], "study_id": ["a", "a"], "image_path": ["a.png", "a.png"],
                          "pointing_hit": [1.0, 0.0], "pointing_chance": [0.03, 0.03], "mass_in_box_lift": [5.0, 3.0]})
    studies: dict[str, int] = {}
    out = dataset_intervals(done, focal, pd.DataFrame(), studies=studies)
    # accuracy over the four scored rows of two studies (c is not scored), resampled by study
    assert studies["accuracy"] == 2
    assert out["accuracy"] == pytest.approx(list(bootstrap_ci([1.0, 0.0, 1.0, 1.0], ["a", "a", "b", "b"])))
    assert out["accuracy"] == pytest.approx([0.5, 1.0])  # study means 0.5 and 1.0
    # every boxed row is from study a: no interval, and the count says why
    assert studies["pointing_game"] == studies["mass_in_box_lift"] == 1
    assert out["pointing_game"] is None and out["pointing_game_over_chance"] is None and out["mass_in_box_lift"] is None


def test_erasers_gains_get_study_bootstrap_intervals_signed_so_that_above_zero_beats_random():
    from medgemma_tui.analysis.dataset_intervals import dataset_intervals
    from medgemma_tui.analysis.intervals import paired_difference_ci

    keys, study = [f"k{i}" for i in range(6)], ["a", "a", "b", "b", "c", "c"]
    done = pd.DataFrame({"key": keys, "study_id": study, "image_path": [f"{s}.png" for s in study]})
    ours = np.array([0.30, 0.25, 0.10, 0.20, 0.05, 0.15])
    rand = np.array([0.10, 0.12, 0.11, 0.09, 0.10, 0.08])
    faith = pd.DataFrame({"key": keys, "comprehensiveness_aopc": ours, "comprehensiveness_aopc_random": rand,
                          "sufficiency_aopc": ours, "sufficiency_aopc_random": rand})
    out = dataset_intervals(done, None, pd.DataFrame(), faith)
    options = {"n": 1000, "seed": 0, "min_groups": 2}
    # comprehensiveness: more lost than random is better; sufficiency: less lost than random is better
    assert out["comprehensiveness_gain"] == pytest.approx(list(paired_difference_ci(ours, rand, study, **options)))
    assert out["sufficiency_gain"] == pytest.approx(list(paired_difference_ci(rand, ours, study, **options)))
    assert out["comprehensiveness_gain"][0] > 0 > out["sufficiency_gain"][1]


def test_the_faithfulness_caption_says_the_methods_and_the_share_that_beats_random_once():
    from medgemma_tui.export.captions import CaptionInputs, faithfulness_caption

    text = faithfulness_caption(CaptionInputs(SUMMARY))
    assert "Over 20 samples" in text
    assert text.count("Petsiuk et al. 2018") == 1 and text.count("DeYoung et al. 2020") == 1
    assert "resamples studies" in text  # the interval's method, said here rather than in the figure
    assert text.endswith("beats every random order by more than 2 SD: deletion (log-probability) 0.25.")
