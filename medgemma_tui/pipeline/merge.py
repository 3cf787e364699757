"""``medtui merge``: shard trees joined into one results tree, as if one run had written it.

Trees are merged only when the same model under the same config (and the same studies) wrote them:
``run.json``'s ``model`` and ``config`` blocks must be equal, the device a model ran on, the dataset's
shard block and the timings aside. Each row's files (those its ``grids/{key}_meta.json`` lists) are
copied through a temporary sibling and a rename, and the rows enter the CSV only after their files,
so an interrupted merge leaves a tree that the same command completes. ``analysis/`` is computed
again over the merged rows (``export.summary.write_analysis``), and ``run.json`` lists the parts.

A key present in several parts (overlapping shards, a part re-run whole) is taken once: a finished
row over a failed one, else the first part given; ``duplicates`` counts the others.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from medgemma_tui.config import Config
from medgemma_tui.errors import MedtuiError, first_line
from medgemma_tui.export.atomic import atomic_file
from medgemma_tui.export.run_json import now
from medgemma_tui.export.summary import write_analysis
from medgemma_tui.export.tree import ResultsTree

# run.json blocks that decide the numbers; a part differing in any of them is refused
COMPARED = ("model", "dtype", "config", "studies")
IGNORED_MODEL_KEYS = frozenset({"device"})  # where the model ran, not which model
FLUSH_ROWS = 500  # the CSV is rewritten after this many copied rows, so a long merge keeps its progress


class MergeError(MedtuiError):
    """Trees that cannot be merged: missing, not results trees, or written by different models or configs."""


@dataclass
class MergeCounts:
    parts: int
    out: str
    rows: int = 0
    done: int = 0
    failed: int = 0
    duplicates: int = 0
    missing_shards: list[str] = field(default_factory=list)  # "2/4": shards no part came from
    unfinished_parts: list[str] = field(default_factory=list)  # parts whose run did not end
    accuracy: float | None = None
    scored: int = 0
    analysis_error: str | None = None
    wall_s: float = 0.0

    @property
    def status(self) -> str:
        if self.analysis_error:
            return "analysis failed"
        if self.missing_shards or self.unfinished_parts:
            return "incomplete"
        return "failed rows" if self.failed else "done"

    @property
    def exit_code(self) -> int:
        return 0 if self.status == "done" else 1

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status, "exit_code": self.exit_code}


def read_part(path: Path) -> dict[str, Any]:
    """A part's run.json; ``MergeError`` when the folder is missing or is not a results tree."""
    if not path.exists():
        raise MergeError(f"results tree not found: {path}")
    if not path.is_dir():
        raise MergeError(f"{path} is not a folder (a results tree is one)")
    run_path = ResultsTree(path).run_path
    if not run_path.exists():
        raise MergeError(f"{path} is not a results tree (no {run_path.name})")
    try:
        run = json.loads(run_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise MergeError(f"{run_path}: cannot be read ({first_line(exc)})") from None
    if not isinstance(run, dict):
        raise MergeError(f"{run_path}: not a run.json object")
    return run


def comparable(run: dict[str, Any]) -> dict[str, Any]:
    out = {name: run.get(name) for name in COMPARED}
    if isinstance(out["model"], dict):
        out["model"] = {k: v for k, v in out["model"].items() if k not in IGNORED_MODEL_KEYS}
    return out


def first_difference(a: Any, b: Any, where: str = "") -> tuple[str, Any, Any] | None:
    """The first dotted path at which ``a`` and ``b`` differ, with both values; None when equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        for name in sorted(set(a) | set(b)):
            found = first_difference(a.get(name), b.get(name), f"{where}.{name}" if where else name)
            if found:
                return found
        return None
    return None if a == b else (where, a, b)


def check_compatible(paths: Sequence[Path], runs: Sequence[dict[str, Any]]) -> None:
    reference = comparable(runs[0])
    for path, run in zip(paths[1:], runs[1:], strict=True):
        found = first_difference(reference, comparable(run))
        if found:
            where, mine, theirs = found
            block = "model" if where.split(".")[0] in ("model", "dtype") else where.split(".")[0]
            raise MergeError(f"cannot merge {path} with {paths[0]}: a different {block} wrote it "
                             f"({where}: {short(theirs)} there, {short(mine)} in {paths[0]})")


def short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def copy_atomic(source: Path, target: Path) -> None:
    with atomic_file(target) as tmp:
        shutil.copyfile(source, tmp)


def row_files(part: ResultsTree, key: str) -> list[str]:
    """The files of a finished row, relative to its tree, its meta file last (it lists the others)."""
    meta_path = part.meta_path(key)
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta_rel = str(meta_path.relative_to(part.root))
    names = [rel for rel in (meta.get("files") or {}).values() if rel != meta_rel]
    required = [str(p.relative_to(part.root)) for p in part.required_files(key)]
    return [*dict.fromkeys([*names, *(r for r in required if r != meta_rel)]), meta_rel]


def shard_coverage(runs: Sequence[dict[str, Any]]) -> list[str]:
    """The shards ("I/N") of the parts' count that no part came from; [] when no part is a shard."""
    shards = [(run.get("dataset") or {}).get("shard") for run in runs]
    counts = {s["count"] for s in shards if isinstance(s, dict) and "count" in s}
    if not counts:
        return []
    seen = {(s["index"], s["count"]) for s in shards if isinstance(s, dict) and "index" in s}
    missing = []
    for count in sorted(counts):
        missing += [f"{i}/{count}" for i in range(count) if (i, count) not in seen]
    return missing


@contextmanager
def part_lock(tree: ResultsTree) -> Iterator[ResultsTree]:
    """A part's write lock, so that no run is writing it while it is read (``TreeBusyError`` if one is);
    a part on a read-only filesystem, which no run can be writing, is read without it."""
    with ExitStack() as stack:
        try:
            stack.enter_context(tree.locked())
        except PermissionError:
            pass
        yield tree


def merge_trees(parts: Sequence[str | Path], into: str | Path, *, plots: bool = True,
                argv: Sequence[str] | None = None) -> MergeCounts:
    """Join the trees ``parts`` into ``into``; ``MergeError`` (one line) when they cannot be joined."""
    started = time.perf_counter()
    paths = [Path(p) for p in parts]
    target = Path(into)
    if not paths:
        raise MergeError("nothing to merge: give the trees to join, then --into OUT")
    runs = [read_part(p) for p in paths]
    resolved = {p.resolve() for p in paths}
    if len(resolved) != len(paths):
        raise MergeError("the same tree is given twice")
    if target.resolve() in resolved:
        raise MergeError(f"--into {target} is one of the trees to merge; give a new folder")
    check_compatible(paths, runs)
    if target.exists():
        earlier = ResultsTree(target).read_run()
        if earlier or ResultsTree(target).csv_path.exists():
            check_compatible([paths[0], target], [runs[0], earlier])

    counts = MergeCounts(parts=len(paths), out=str(target))
    counts.missing_shards = shard_coverage(runs)
    counts.unfinished_parts = [str(p) for p, run in zip(paths, runs, strict=True)
                               if run.get("status") not in ("done", "failed rows")]
    out = ResultsTree(target)
    with ExitStack() as stack:
        stack.enter_context(out.locked())
        trees = [stack.enter_context(part_lock(ResultsTree(p))) for p in paths]
        chosen: dict[str, tuple[ResultsTree, dict[str, str], bool]] = {}
        for tree in trees:
            finished = tree.finished_keys()
            for key, row in tree.rows.items():
                done = key in finished
                if key in chosen:
                    counts.duplicates += 1
                    if not done or chosen[key][2]:
                        continue
                chosen[key] = (tree, row, done)
        batch: list[dict[str, str]] = []
        for key, (tree, row, done) in chosen.items():
            if done:
                for rel in row_files(tree, key):
                    if (tree.root / rel).exists():
                        copy_atomic(tree.root / rel, out.root / rel)
            batch.append(row)
            if len(batch) >= FLUSH_ROWS:
                out.put_rows(batch)
                batch = []
        out.put_rows(batch)
        counts.rows = len(chosen)
        counts.done = sum(1 for _, _, done in chosen.values() if done)
        counts.failed = counts.rows - counts.done

        config = Config.from_json(runs[0]["config"], label=str(paths[0] / "run.json")) if runs[0].get("config") \
            else Config()
        try:
            summary = write_analysis(out, counts={"skipped": 0, "merged_parts": len(paths)}, plots=plots,
                                     formats=config.visualization.formats, dpi=config.visualization.dpi,
                                     hedged_answers=config.analysis.hedged_answers)
            counts.accuracy = summary.get("accuracy")
            counts.scored = int(summary.get("scored") or 0)
        except Exception as exc:  # the rows are merged; say what went wrong with the analysis
            counts.analysis_error = f"{type(exc).__name__}: {first_line(exc)}"
        counts.wall_s = time.perf_counter() - started
        out.write_run(merged_run(paths, runs, counts, argv))
    return counts


def merged_run(paths: Sequence[Path], runs: Sequence[dict[str, Any]], counts: MergeCounts,
               argv: Sequence[str] | None) -> dict[str, Any]:
    """run.json of the merged tree: the parts' shared blocks, and each part in brief."""
    first = runs[0]
    dataset = {k: v for k, v in (first.get("dataset") or {}).items() if k != "shard"}
    devices = sorted({str(run.get("device")) for run in runs if run.get("device") is not None})
    started = sorted(run["started"] for run in runs if run.get("started"))
    return {
        "status": counts.status,
        "started": started[0] if started else now(),
        "finished": now(),
        "command": "medtui merge",
        "argv": list(argv) if argv is not None else None,
        "model": first.get("model"),
        "device": devices[0] if len(devices) == 1 else devices,
        "dtype": first.get("dtype"),
        "versions": first.get("versions"),
        "config": first.get("config"),
        "studies": first.get("studies"),
        "dataset": dataset,
        "parts": [
            {"path": str(path), "status": run.get("status"), "started": run.get("started"),
             "finished": run.get("finished"), "device": run.get("device"), "versions": run.get("versions"),
             "shard": (run.get("dataset") or {}).get("shard"), "counts": run.get("counts"),
             "timings_s": run.get("timings_s"), **({"ray": run["ray"]} if run.get("ray") else {})}
            for path, run in zip(paths, runs, strict=True)
        ],
        "counts": {k: v for k, v in counts.to_json().items() if k != "out"},
        "timings_s": {"merge": round(counts.wall_s, 3)},
    }
