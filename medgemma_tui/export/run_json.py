"""``run.json``: which model (id, revision, commit), which versions and which config made a tree."""

from __future__ import annotations

import datetime as _dt
from typing import Any


def now() -> str:
    """The time in UTC, to the second, as run.json writes it."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def environment() -> dict[str, str | None]:
    """Versions of everything that decides the numbers."""
    import platform
    from importlib import metadata

    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name, dist in (("medgemma_tui", "medgemma-tui"), ("torch", "torch"), ("transformers", "transformers"),
                       ("numpy", "numpy"), ("safetensors", "safetensors")):
        try:
            versions[name] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def model_json(loaded) -> dict[str, Any]:
    """Model id, requested revision and, for hub models, the commit the weights came from."""
    info = loaded.info.to_json()
    config = getattr(loaded.model, "config", None)
    info["commit"] = getattr(config, "_commit_hash", None)
    info["source"] = loaded.source
    return info
