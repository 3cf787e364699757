"""Perturbed films and their maps against the original, with answer flips.

The study (perturbing the film, asking again, comparing the maps) is ``studies.robustness_study``, the
core of ``medtui eval --robustness``. A results tree's study is read from ``robustness/{key}.json``;
in a live session (a model loaded) the screen offers to run the same study for the sample on screen
(``r``: a worker makes it with ``Session.robustness_of`` and the app keeps it in memory per sample).
With nothing to show the screen says so, rather than inventing anything.

Tiles: the original film with its map, then each perturbation's film with its own map. A study run in
this session shows the perturbed films as the model was given them. A tree's study keeps each map
(16x16) but not the perturbed films: those are the perturbations re-applied, with the study's seed, to
the film as the model saw it (``studies.perturbed_films``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from rich.console import Group
from rich.pretty import Pretty
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from medgemma_tui.analysis.perturbations import from_config
from medgemma_tui.app import jobs
from medgemma_tui.app.bindings import back_key
from medgemma_tui.app.widgets.tiles import Tile, TileGrid
from medgemma_tui.config import Config
from medgemma_tui.export.layout import TreeLayout
from medgemma_tui.pipeline.studies.robustness import perturbation_of, perturbed_films
from medgemma_tui.registry import ROBUSTNESS

TILE_SIDE = 20  # pixels: a tile is 20 columns by 10 rows of picture, plus its caption

NOT_AVAILABLE = (
    "Robustness results are not available for this sample.\n\n"
    "They come from the evaluation, not from the app: run\n"
    "    medtui eval --data CSV --images ROOT --robustness --export OUT\n"
    "then open the tree with\n"
    "    medtui open OUT\n"
    "and press R on a sample: its robustness/{key}.json is shown here."
)

LIVE_OFFER = (
    "No robustness study has run for this sample yet.\n\n"
    "Press r to run it now with the loaded model: the film is perturbed as the config's [robustness]\n"
    "section says, each perturbed film is answered and captured again, and its map and answer are\n"
    "compared with the original's (what medtui eval --robustness writes). It takes one answer per\n"
    "perturbation; the app stays usable meanwhile."
)


def robustness_file(tree_root: Path | None, key: str) -> Path | None:
    if tree_root is None:
        return None
    path = TreeLayout(tree_root).robustness_path(key)
    return path if path.is_file() else None


def read_study(path: Path) -> tuple[dict | None, object | None]:
    """(the study, None), or (None, what to show instead: why it cannot be read, or a layout not known)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        return None, Text(f"{path}: unreadable ({exc})", style="red")
    study = data.get(ROBUSTNESS, data) if isinstance(data, dict) else data
    if not isinstance(study, dict) or not isinstance(study.get("perturbations"), list):
        return None, Pretty(data)  # a layout this screen does not know: shown as written
    return study, None


class RobustnessScreen(Screen):
    BINDINGS = [
        back_key("robustness_close"),
        Binding("r", "run_study", "Run the study",
                tooltip="Run the robustness study of this sample with the loaded model (live sessions)",
                id="robustness_run"),
    ]
    DEFAULT_CSS = """
    RobustnessScreen #robustness-maps { height: 13; }
    RobustnessScreen #robustness-details { height: 1fr; }
    RobustnessScreen #robustness-body { padding: 1 2; }
    """

    def __init__(
        self,
        key: str | None,
        tree_root: Path | None,
        film: np.ndarray | None = None,
        kept: Mapping[str, dict] | None = None,
        films: Mapping[str, list] | None = None,
        can_run: bool = False,
        **kwargs,
    ) -> None:
        """``film``: the sample's film as the model saw it (``record.xray``); ``kept``: the studies run in
        this session, by key, and ``films`` their perturbed films as the model saw them;
        ``can_run``: a model is at hand to run the study here."""
        super().__init__(**kwargs)
        self.key, self.tree_root, self.film = key, tree_root, film
        self.kept = kept if kept is not None else {}
        self.films = films if films is not None else {}
        self.can_run = can_run
        self.study: dict | None = None  # once found, kept: a study does not change
        self._started: float | None = None  # when r started the study from this screen

    # ---- what there is to show ----------------------------------------------------------------------
    def find(self) -> tuple[dict | None, object | None]:
        """(the study, None) or (None, the text to show instead)."""
        if self.study is not None:
            return self.study, None
        if self.key is None:
            return None, Text("No sample is shown yet.")
        if self.key in self.kept:
            self.study = self.kept[self.key]
            return self.study, None
        path = robustness_file(self.tree_root, self.key)
        if path is not None:
            self.study, instead = read_study(path)
            return self.study, instead
        if self.can_run:
            return None, self.offer()
        return None, Text(NOT_AVAILABLE)

    def running(self) -> bool:
        return self.is_mounted and self.app.robustness_job() == self.key

    def offer(self) -> Text:
        if self.running():
            elapsed = "" if self._started is None else f" {time.perf_counter() - self._started:.0f}s"
            return Text(f"Running the robustness study of {self.key}…{elapsed}\n\n"
                        "The tiles and the table appear here when it ends.", style="bold")
        return Text(LIVE_OFFER)

    def body(self):
        study, instead = self.find()
        return study_view(study) if study is not None else instead

    # ---- screen -------------------------------------------------------------------------------------
    @classmethod
    def open(cls, app) -> None:
        """``R``: the row's perturbed films against the original (from eval, run here, or offered)."""
        session, key = app.session, app.current_key
        root = Path(session.source) if session.is_tree else None
        summary = session.entries[key].summary if key is not None else None
        analysis = app.current_analysis()
        # the perturbations re-applied to the film as the model saw it (a blur's radius is in its pixels), not
        # to the summary's thumbnail, where the record is at hand
        film = analysis.record.xray if analysis is not None else None if summary is None else summary.xray
        live = session.needs_model and not session.is_tree
        app.push_screen(cls(key, root, film=film, kept=session.robustness, films=session.robustness_films,
                            can_run=live))

    def compose(self) -> ComposeResult:
        yield Static(Text("Robustness", style="bold"), id="robustness-title")
        yield TileGrid(side=TILE_SIDE, id="robustness-maps")
        with VerticalScroll(id="robustness-details"):
            yield Static(self.body(), id="robustness-body")
        yield Footer()

    def on_mount(self) -> None:
        self.show()
        self.set_interval(0.5, self._tick)

    def show(self) -> None:
        """Draw what there is now: tiles and table once a study exists, else why not (or that it runs)."""
        had = self.study
        study, instead = self.find()
        grid = self.query_one(TileGrid)
        fresh = study is not None and (study is not had or not grid.tiles)
        if fresh:
            grid.set_tiles(study_tiles(study, self.film, self.exact_films()), self.app.tile_paint(blend=True))
        grid.display = bool(grid.tiles)
        self._fit_tiles()
        self.query_one("#robustness-title", Static).update(self.title_text(study))
        self.query_one("#robustness-body", Static).update(study_view(study) if study is not None else instead)
        self.refresh_bindings()
        if fresh and grid.tiles:
            grid.focus()  # arrows walk the tiles

    def title_text(self, study: dict | None) -> Text:
        title = Text()
        title.append("Robustness ", style="bold")
        title.append(f"{self.key or ''}")
        if study is None:
            return title
        entries = study["perturbations"]
        title.append(f" · {len(entries)} perturbations · arrows move · esc back")
        title.append("\n" + films_caption(entries, self.film is not None, self.exact_films() is not None),
                     style="dim")
        return title

    def exact_films(self) -> list | None:
        """The perturbed films the model was given, where the study ran in this session."""
        films = self.films.get(self.key) if self.key is not None else None
        entries = (self.study or {}).get("perturbations") or []
        return films if films is not None and len(films) == len(entries) else None

    def _fit_tiles(self) -> None:
        """The tiles take the rows they need, at most half the screen (they scroll past that)."""
        grid = self.query_one(TileGrid)
        if not grid.tiles or not self.size.height:
            return
        per_row = max(1, self.size.width // grid.tile_width)
        rows = -(-len(grid.tiles) // per_row)
        grid.styles.height = max(grid.tile_height, min(rows * grid.tile_height, self.size.height // 2))

    def on_resize(self) -> None:
        self._fit_tiles()

    def _tick(self) -> None:
        if self.study is None and self.running():
            self.query_one("#robustness-body", Static).update(self.offer())

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "run_study":
            return self.can_run and self.key is not None and self.study is None
        return True

    def action_run_study(self) -> None:
        if self.running():
            self.notify("The robustness study of this sample is running.", timeout=2)
            return
        app, key = self.app, self.key
        busy = app.robustness_job()
        if busy is not None:  # one at a time: each holds the model
            self.notify(f"The robustness study of {busy} is running; one at a time.", timeout=3)
            return
        config = app.config if app.config is not None else Config()
        count = len(from_config(config.robustness))
        self._started = time.perf_counter()
        app.jobs.robustness = key
        app.set_job(f"robustness study of {key}…")
        self.notify(f"Running the robustness study of {key}: {count} perturbed films, each answered again…",
                    timeout=4)
        jobs.start(app, jobs.ROBUSTNESS, jobs.robustness, key=key, config=config)
        self.show()

    def action_close(self) -> None:
        self.dismiss(None)


# ---- tiles --------------------------------------------------------------------------------------------
def _grid(value) -> np.ndarray | None:
    try:
        grid = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return grid if grid.ndim == 2 and grid.size and np.all(np.isfinite(grid)) else None


def strength_text(entry: Mapping) -> str:
    """``noise 8``, ``contrast 0.8``, ``pad`` (the square modes carry their name as the strength)."""
    name, strength = str(entry.get("name", "?")), entry.get("strength")
    if strength is None or strength == name:
        return name
    return f"{name} {strength:g}" if isinstance(strength, int | float) else f"{name} {strength}"


def study_tiles(study: Mapping, film: np.ndarray | None, exact: list | None = None) -> list[Tile]:
    """The original film with its map, then each perturbation's film with its own map.

    ``exact``: the perturbed films as the model was given them (a study run in this session), one per
    perturbation; without them each perturbation is re-applied to ``film`` (``perturbed_films``).

    Captions: the perturbation and strength; the answer label, JS against the original, and a red FLIP
    where the answer's label changed. A study written without its maps (before they were kept) gives
    no tiles; one map missing gives a blank tile.
    """
    entries = study.get("perturbations") or []
    reference = study.get("reference") or {}
    grids = [_grid(reference.get("grid")), *(_grid(e.get("grid")) for e in entries)]
    if all(g is None for g in grids):
        return []
    if exact is not None:  # one per perturbation (the zip below holds it to that)
        films = list(exact)
    else:
        films = perturbed_films(study, film) if film is not None else [None] * len(entries)
    tiles = [Tile(key="original", label="original", grid=grids[0], film=film,
                  note=f"{reference.get('answer_label', '?')} · reference")]
    for i, (entry, grid, pixels) in enumerate(zip(entries, grids[1:], films, strict=True)):
        js = entry.get("js")
        note = str(entry.get("answer_label", "?")) + (f" JS {js:.3f}" if isinstance(js, int | float) else "")
        tiles.append(Tile(key=i, label=strength_text(entry), grid=grid, note=note,
                          film=pixels if pixels is not None else film, alert="FLIP" if entry.get("flip") else ""))
    return tiles


def films_caption(entries: list, have_film: bool, exact: bool = False) -> str:
    if exact:
        return "Films: each perturbed film as the model was given it; maps: the model's on each."
    if not have_film:
        return "The film is not at hand: the tiles show the maps alone."
    text = ("Films: each perturbation re-applied, with the study's seed, to the film as the model saw it; "
            "maps: the model's on each perturbed film.")
    framed = sorted({e["name"] for e in entries if (p := perturbation_of(e)) is not None and p.changes_frame})
    if framed:
        text += f" {' and '.join(framed)} {'leaves' if len(framed) == 1 else 'leave'} this square film as it is."
    return text


# ---- the table ----------------------------------------------------------------------------------------
def _num(value, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "n/a"


def study_view(study: dict):
    """The perturbations of one sample against its original: answer flips and how far the map moved."""
    reference = study.get("reference", {})
    head = Text()
    head.append(f"{study.get('question', '')}\n", style="bold")
    head.append(f"original answer: {reference.get('answer_label', '?')}")
    if study.get("flip_rate") is not None:
        head.append(f" · flip rate {_num(study['flip_rate'], 2)}", style="bold")
    head.append(f" · mean JS {_num(study.get('mean_js'), 4)} · max JS {_num(study.get('max_js'), 4)}")
    if study.get("map", {}).get("description"):
        head.append(f"\nmaps compared: {study['map']['description']}", style="dim")
    table = Table(box=None, pad_edge=False, header_style="bold")
    for name in ("perturbation", "strength", "answer", "flip", "JS", "pearson", "top-10% IoU", "Δ inside lungs"):
        # on a narrow terminal the strength's words wrap and the rest keeps its width: nothing is cut
        table.add_column(name, justify="left" if name in ("perturbation", "answer") else "right",
                         overflow="fold", no_wrap=name not in ("strength", "top-10% IoU", "Δ inside lungs"))
    for p in study["perturbations"]:
        flip = Text("FLIP", style="bold red") if p.get("flip") else Text("·", style="dim")
        strength = f"{p.get('strength', '')} {p.get('parameter', '')}".strip()
        delta = p.get("metric_deltas", {}).get("inside_lungs_ratio")
        table.add_row(str(p.get("name", "?")), strength, str(p.get("answer_label", "?")), flip, _num(p.get("js"), 4),
                      _num(p.get("pearson")), _num(p.get("top_iou")), _num(delta))
    return Group(head, Text(""), table)
