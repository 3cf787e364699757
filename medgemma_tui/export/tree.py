"""The writer of a results tree: its lock, its rows and one finished or failed sample at a time.

Never lose work: every file is written to a temporary sibling and renamed onto its name
(``export.atomic``); a sample's row is put only after all of the sample's files exist, so a row always
means a finished sample and a kill at any moment leaves at worst some files of an unlisted sample, which
the next run rewrites. A row is put by appending one synced line to the tree's journal
(``export.journal``), whatever the number of rows already written; ``evaluation_results.csv`` (rewritten
through a temporary file) is built from the CSV and the journal as a run starts and ends and when trees
are merged. One run writes a tree at a time (an advisory lock on ``OUT/.medtui.lock``, released by the
kernel even on SIGKILL); taking the lock removes temporary files a killed run left behind and cuts a
journal line the kill left half written, and a tree that the run left empty (a failure before the first
row) is removed again.
"""

from __future__ import annotations

import csv
import errno
import fcntl
import io
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medgemma_tui.config import Config
from medgemma_tui.errors import MedtuiError
from medgemma_tui.export import figures, sample_sheet
from medgemma_tui.export.atomic import save_npy_atomic, save_png_atomic, write_bytes_atomic, write_json_atomic
from medgemma_tui.export.columns import COLUMNS, csv_cell, result_columns, sample_columns
from medgemma_tui.export.journal import RowJournal, tree_cells
from medgemma_tui.export.layout import LOCK_NAME, MASK_PARTS, STUDIES_DIR, SUBDIRS, TreeLayout
from medgemma_tui.export.overlay import save_overlay
from medgemma_tui.export.record_io import save_record
from medgemma_tui.registry import STUDIES

if TYPE_CHECKING:
    from medgemma_tui.analysis.result import SampleResult
    from medgemma_tui.data.schema import Sample

_TMP_NAME = re.compile(r"^\..+\.tmp$")


class TreeBusyError(MedtuiError, RuntimeError):
    """Another process is writing the same results tree."""


class TreeNotWritableError(MedtuiError, OSError):
    """The results tree's folder cannot be created or written (a read-only place, no permission)."""


def check_writable(folder: str | os.PathLike[str]) -> None:
    """Raise ``TreeNotWritableError`` when ``folder`` cannot be written, or created where it does not exist:
    asked before the work whose results would go there, so that no work is thrown away. Nothing is created."""
    folder = Path(folder).absolute()
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise TreeNotWritableError(f"cannot write {folder}: {existing} is not a folder")
    # access(2) says EROFS for a read-only filesystem, for root too
    if not os.access(existing, os.W_OK | os.X_OK):
        raise TreeNotWritableError(f"cannot write {folder}: {existing} is read-only or not writable by this user")


# ---- the tree ---------------------------------------------------------------------------------------
class ResultsTree(TreeLayout):
    """The writer of a results tree: rows appended to its journal, the CSV built from it (``write_csv``)."""

    def __init__(self, out_dir: str | os.PathLike[str]):
        super().__init__(out_dir)
        self._rows: dict[str, dict[str, str]] | None = None  # read when asked; dropped when a row is put
        self._lock = None
        self.journal = RowJournal(self.journal_path)

    def __repr__(self) -> str:
        return f"ResultsTree({str(self.root)!r})"

    # -- locking
    @contextmanager
    def locked(self) -> Iterator[ResultsTree]:
        """Hold the tree's write lock; clears temporary files a killed run left behind."""
        created = not self.root.exists()
        self.root.mkdir(parents=True, exist_ok=True)
        handle = self._take_lock()
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            self.remove_stale_temporaries()
            self.journal.repair()
            self._lock = handle
            yield self
        finally:
            self._lock = None
            # the file goes while the lock is held: a finished tree keeps no lock file naming a dead process
            (self.root / LOCK_NAME).unlink(missing_ok=True)
            handle.close()
            if created:
                self._remove_if_empty()

    def _take_lock(self):
        """The lock file, open and locked. A run that finishes removes the file while it holds the lock, so
        a run that opened the old file and locks it afterwards holds a file no longer in the tree: it
        opens the name again, until the file it locked is the one the tree holds."""
        path = self.root / LOCK_NAME
        while True:
            handle = open(path, "a+")
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                handle.close()
                if exc.errno in (errno.EWOULDBLOCK, errno.EACCES, errno.EAGAIN):
                    raise TreeBusyError(f"another medtui run is writing {self.root}") from None
                raise
            try:
                if os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino:
                    return handle
            except FileNotFoundError:
                pass
            handle.close()

    def _remove_if_empty(self) -> None:
        """A tree this run created and left without a file (it failed before the first row) goes again."""
        try:
            entries = [p for p in self.root.iterdir() if p.name != LOCK_NAME]
            if not entries:
                (self.root / LOCK_NAME).unlink(missing_ok=True)
                self.root.rmdir()
        except OSError:
            pass

    def remove_stale_temporaries(self) -> list[Path]:
        removed = []
        for folder in (self.root, *(self.root / d for d in SUBDIRS)):
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                if _TMP_NAME.match(path.name) and path.is_file():
                    path.unlink(missing_ok=True)
                    removed.append(path)
        return removed

    # -- rows
    @property
    def rows(self) -> dict[str, dict[str, str]]:
        """key -> row (CSV text cells) in dataset order, from the CSV and the journal; read when first asked
        after a row was put (a run asks at its start, not per row, so memory does not grow with the rows)."""
        if self._rows is None:
            self._rows, _ = tree_cells(self.csv_path, self.journal_path)
        return self._rows

    def finished_keys(self) -> set[str]:
        """Keys whose row has no error and whose record, grid and meta files exist."""
        return {
            key for key, row in self.rows.items()
            if not row.get("error") and all(p.exists() for p in self.required_files(key))
        }

    def failed_keys(self) -> set[str]:
        return {key for key, row in self.rows.items() if row.get("error")}

    def reset(self) -> None:
        """Forget every row (``--no-resume``): the CSV is rewritten empty, the journal emptied; files are
        overwritten as they come."""
        self._write_csv({}, [])
        self.journal.clear()
        self._rows = None

    def put_row(self, row: dict[str, Any]) -> None:
        """Add or replace the row of ``row["key"]``: one line appended to the journal and synced."""
        self.put_rows([row])

    def put_rows(self, rows: Iterable[dict[str, Any]]) -> None:
        """Add or replace several rows by one synced append (``medtui merge`` adds rows in bulk)."""
        self.journal.append({name: csv_cell(value) for name, value in row.items()} for row in rows)
        self._rows = None

    def write_csv(self) -> None:
        """Build ``evaluation_results.csv`` from the CSV and the journal (rows in dataset order), sync it,
        then empty the journal: a kill in between leaves rows in both, which read the same. With the journal
        empty the CSV already says everything and is left as it is (a resumed 300,000-row tree is not
        rewritten)."""
        if self.csv_path.exists() and not self.journal.exists():
            return
        rows, names = tree_cells(self.csv_path, self.journal_path)
        self._write_csv(rows, [n for n in names if n not in COLUMNS])
        self.journal.clear()
        self._rows = None

    def _write_csv(self, rows: dict[str, dict[str, str]], extra_columns: list[str]) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=[*COLUMNS, *extra_columns], extrasaction="ignore",
                                lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows.values())
        write_bytes_atomic(self.csv_path, buffer.getvalue().encode("utf-8"), sync=True)

    # -- samples
    def write_failure(self, sample: Sample, error: str) -> dict[str, Any]:
        row = {**sample_columns(sample), "error": error}
        self.put_row(row)
        return row

    def write_sample(self, result: SampleResult, config: Config | None = None) -> dict[str, Any]:
        """Write every file of one finished sample, then its row (``put_row``). Returns the row."""
        row = self.write_files(result, config)
        self.put_row(row)
        return row

    def write_files(self, result: SampleResult, config: Config | None = None) -> dict[str, Any]:
        """Write every file of one finished sample (not its row, which only the run's one writer of the
        rows puts, once the files exist); returns the row to put. Safe in another process."""
        config = config if config is not None else Config()
        key = result.sample.key
        analysis = result.analysis
        record = analysis.record
        vis = config.visualization
        files = self.sample_files(key, config)
        studies = {name: analysis.extras[name] for name in STUDIES if analysis.extras.get(name) is not None}
        if studies:
            files[STUDIES_DIR] = self.robustness_path(key)

        grid = analysis.distribution.astype(np.float32)
        save_record(record, files["attention"])
        save_npy_atomic(files["grid"], grid)
        if "mask_body" in files and analysis.masks is not None:
            for part in MASK_PARTS:
                save_png_atomic(files[f"mask_{part}"], np.where(getattr(analysis.masks, part), 255, 0).astype(np.uint8))
        elif "mask_body" in files:
            for part in MASK_PARTS:
                del files[f"mask_{part}"]
        if "overlay" in files:
            save_overlay(files["overlay"], result.film.pixels, grid, vis.colormap, vis.overlay_alpha)
        if "full" in files:
            sample_sheet.save_full_figure(files["full"], result, colormap=vis.colormap, alpha=vis.overlay_alpha,
                                          formats=vis.formats, dpi=vis.dpi)
            first, *others = figures.figure_paths(files["full"], vis.formats)
            files["full"] = first
            files.update({f"full_{path.suffix.lstrip('.')}": path for path in others})

        if studies:
            write_json_atomic(files[STUDIES_DIR], {"key": key, **studies})

        row = {**sample_columns(result.sample), **result_columns(result)}
        meta = {
            **row,
            "map": {"description": analysis.view.description, "spec": spec_json(analysis.view.spec),
                    "grid_shape": list(grid.shape)},
            "image": str(result.sample.image),
            "image_size": list(result.film.size),
            "bbox_boxes": [list(b) for b in result.sample.bbox],
            "image_token_span": list(record.image_token_span),
            "prompt_length": record.prompt_length,
            # the chat prompt's settings ([prompt]) and the template text given to the processor
            "prompt": record.extra.get("prompt"),
            "tokens": record.tokens,
            "question_positions": record.question_positions,
            "question_tokens": [record.tokens[int(p)] for p in record.question_positions],
            "answer_token_list": record.answer_tokens,
            "answer_ids": record.answer_ids,
            "answer_logprobs": record.answer_logprobs,
            "gating": {**analysis.gating.to_json(), "columns": analysis.gating.columns},
            "model": record.model.to_json(),
            "layer_summary": analysis.layer_summary,
            "masks": mask_areas(analysis.masks),
            "timings_s": record.timings_s,
            "files": {name: str(path.relative_to(self.root)) for name, path in files.items()},
        }
        write_json_atomic(files["meta"], meta)
        missing = [str(p) for p in files.values() if not p.exists()]
        if missing:
            raise OSError(f"files missing after writing {key}: {', '.join(missing)}")
        return row

    # -- run.json
    def write_run(self, payload: dict[str, Any]) -> None:
        write_json_atomic(self.run_path, payload)


def spec_json(spec) -> dict[str, Any]:
    return {"view": spec.view, "rows": spec.rows, "layers": list(spec.layers) if spec.layers else None,
            "head_mode": spec.head_mode, "head": spec.head}


def mask_areas(masks) -> dict[str, Any] | None:
    """Each mask's share of the film, and the masks' plausibility check."""
    if masks is None:
        return None
    return {**masks.areas(), "lungs": float(np.mean(masks.lungs)), "quality": masks.quality,
            "quality_reasons": list(masks.quality_reasons), "fallback": list(masks.fallback)}
