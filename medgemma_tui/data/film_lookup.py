"""Where a dataset row's film is: ``image_path``, else ``{dicom_id}``, else ``{dicom_id}`` with an image suffix.

The order is the one the system medtui replaces used (UNHSAILLab/lvlm-interpret-medgemma: ``image_path``,
then ``{dicom_id}``, then ``{dicom_id}.jpg`` under the image root), with ``.png`` and ``.dcm`` after
``.jpg``, so its CSVs run as they are: a stale ``image_path`` beside a film named by its ``dicom_id`` still
finds the film. README: "The dataset CSV" says the same.

``image_path`` may be written as a Python list of one path (``['02aa....jpg']``, as that system's
one-pixel-attack CSV writes it); ``unlist_path`` reads it as its one path.
"""

from __future__ import annotations

import ast
from pathlib import Path

DICOM_SUFFIXES = (".jpg", ".png", ".dcm")  # tried after {dicom_id} itself, in this order
FOUND_BY = ("image_path", "dicom_id", *(f"dicom_id{suffix}" for suffix in DICOM_SUFFIXES))


def unlist_path(text: str) -> tuple[str, str | None]:
    """(the path, a problem or None) of an ``image_path`` cell; ``['x.jpg']`` and ``["x.jpg"]`` are ``x.jpg``.

    A list of several paths is a problem (one row is one film); a cell that only looks like a list
    (``[draft] x.jpg``) is taken as written.
    """
    value = text.strip()
    if not (value.startswith("[") and value.endswith("]")):
        return value, None
    try:
        items = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value, None
    if not isinstance(items, list | tuple) or not all(isinstance(item, str) for item in items):
        return value, None
    paths = [item.strip() for item in items if item.strip()]
    if len(paths) > 1:
        return paths[0], f"'image_path' lists {len(paths)} films ({value[:60]}); one row takes one film"
    return (paths[0] if paths else ""), None


def candidates(image_path: str, dicom_id: str) -> list[tuple[str, str]]:
    """(how, path relative to the images root) in the order they are tried; each named in ``FOUND_BY``."""
    found = []
    if image_path:
        found.append(("image_path", image_path))
    if dicom_id:
        found.append(("dicom_id", dicom_id))
        found += [(f"dicom_id{suffix}", dicom_id + suffix) for suffix in DICOM_SUFFIXES
                  if not dicom_id.lower().endswith(suffix)]
    return found


def find_film(root: Path, image_path: str, dicom_id: str) -> tuple[Path, str, str]:
    """(the film's path, how it was found, its path relative to ``root`` as tried) for one row.

    The first candidate that is a file wins; with none, the first candidate (``root/image_path``, else
    ``root/dicom_id``) and ``how`` empty, so the run reports that film as not found.
    """
    tried = candidates(image_path, dicom_id)
    for how, relative in tried:
        path = root / relative
        if path.is_file():
            return path, how, relative
    relative = tried[0][1] if tried else ""
    return root / relative, "", relative

