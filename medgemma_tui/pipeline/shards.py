"""One dataset split into N shards for batch schedulers (Slurm job arrays and the like), film by film.

Every row of one film (one ``image_path``) lands in the same shard, so a shard computes each film's
vision pass once (``batch.FilmAtHand``). The split is a function of the selected rows alone: films are
taken largest first (ties by path) and each goes to the shard holding the fewest rows so far (ties to
the lowest index), so every task of an array that reads the same CSV with the same ``--limit`` gets
the same split, the shards cover every row exactly once, and their sizes differ by at most one film.

Shards count from 0: ``--shard 0/4`` .. ``--shard 3/4``. Inside a Slurm job array the shard comes from
``SLURM_ARRAY_TASK_ID`` and ``SLURM_ARRAY_TASK_COUNT`` (with ``SLURM_ARRAY_TASK_MIN`` and
``SLURM_ARRAY_TASK_STEP`` when set, so ``--array=1-8`` and ``--array=0-14:2`` map onto 0..N-1); see the
"Job Array Support" page of Slurm's documentation for the variables.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from medgemma_tui.data.schema import Sample
from medgemma_tui.errors import MedtuiError

_SHARD = re.compile(r"^\s*(-?\d+)\s*/\s*(-?\d+)\s*$")


class ShardError(MedtuiError, ValueError):
    """A shard that cannot be read: a bad ``--shard`` or Slurm variables that name no shard."""


@dataclass(frozen=True)
class Shard:
    index: int  # 0 .. count - 1
    count: int
    source: str = "--shard"  # or "slurm"

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``"I/N"`` as a shard; ``ShardError`` with one line for anything else."""
    match = _SHARD.match(str(text))
    if not match:
        raise ShardError(f"--shard wants I/N (shard I of N, counting from 0), got {text!r}")
    index, count = int(match.group(1)), int(match.group(2))
    return checked(index, count, f"--shard {text.strip()}")


def checked(index: int, count: int, what: str, source: str = "--shard") -> Shard:
    if count < 1:
        raise ShardError(f"{what}: the number of shards must be at least 1")
    if not 0 <= index < count:
        raise ShardError(f"{what}: the shard index must be 0..{count - 1} (shards count from 0)")
    return Shard(index, count, source)


def shard_from_env(environ: Mapping[str, str]) -> Shard | None:
    """The shard of this Slurm array task, or None outside a job array."""
    task, count = environ.get("SLURM_ARRAY_TASK_ID"), environ.get("SLURM_ARRAY_TASK_COUNT")
    if task is None and count is None:
        return None
    if task is None or count is None:
        have = "SLURM_ARRAY_TASK_ID" if task is not None else "SLURM_ARRAY_TASK_COUNT"
        raise ShardError(f"{have} is set but not its partner; give --shard I/N")
    try:
        task_id, total = int(task), int(count)
        first = int(environ.get("SLURM_ARRAY_TASK_MIN", "0") or 0)
        step = int(environ.get("SLURM_ARRAY_TASK_STEP", "1") or 1)
    except ValueError:
        raise ShardError(f"SLURM_ARRAY_TASK_ID={task!r}, SLURM_ARRAY_TASK_COUNT={count!r}: not whole numbers; "
                         "give --shard I/N") from None
    offset = task_id - first
    if step < 1 or offset % step or not 0 <= offset // step < total:
        raise ShardError(f"Slurm array task {task_id} (min {first}, step {step}) is not one of {total} evenly "
                         "spaced tasks (an array such as --array=1,3,7 has gaps); give --shard I/N")
    return checked(offset // step, total, f"Slurm array task {task_id}", source="slurm")


def films_of(samples: Sequence[Sample]) -> dict[str, list[Sample]]:
    """The rows by film (the CSV's ``image_path``, the same on every host), in dataset order."""
    films: dict[str, list[Sample]] = {}
    for sample in samples:
        films.setdefault(str(sample.image_path), []).append(sample)
    return films


def assign_films(samples: Sequence[Sample], count: int) -> dict[str, int]:
    """Film -> shard: largest films first, each to the shard with the fewest rows (ties: lowest index)."""
    films = films_of(samples)
    loads = [0] * count
    owner: dict[str, int] = {}
    for path in sorted(films, key=lambda p: (-len(films[p]), p)):
        shard = min(range(count), key=lambda i: (loads[i], i))
        owner[path] = shard
        loads[shard] += len(films[path])
    return owner


def shard_samples(samples: Sequence[Sample], shard: Shard) -> list[Sample]:
    """The rows of ``shard``, in dataset order."""
    owner = assign_films(samples, shard.count)
    return [s for s in samples if owner[str(s.image_path)] == shard.index]


def shard_info(samples: Sequence[Sample], chosen: Sequence[Sample], shard: Shard) -> dict[str, Any]:
    """What ``run.json`` says about the shard (``medtui merge`` checks that every shard came)."""
    return {"index": shard.index, "count": shard.count, "source": shard.source, "rows": len(chosen),
            "films": len(films_of(chosen)), "of_rows": len(samples), "of_films": len(films_of(samples))}
