"""``medtui masks IMAGE... --out DIR``: anatomy masks of films (MedGemma not loaded), with a contact sheet."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
import numpy as np

from cli.errors import EXIT_FAILED, UsageError, reports_errors, user_error_types
from medgemma_tui.colormaps import MASK_COLORS, hex_rgb
from medgemma_tui.errors import first_line

MASK_NAMES = (("body", "body"), ("lung_left", "lung_left"), ("lung_right", "lung_right"),
              ("mediastinum", "mediastinum"))
# Outline colours on the contact sheet: the masks' own (``colormaps.MASK_COLORS``), as the app and the figures
OUTLINES = tuple((name, hex_rgb(MASK_COLORS[name])) for name in ("body", "lung_right", "lung_left", "mediastinum"))
SHEET_NAME = "contact_sheet.png"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".dcm", ".dicom", ".dic", ".tif", ".tiff", ".bmp", ".webp", ".gif"}
TILE = 256  # height of one film on the contact sheet


def _films(images: tuple[str, ...], data: str | None, images_root: str | None) -> list[Path]:
    """The films to read: each IMAGE (a folder stands for its files), then the dataset's image paths."""
    out: list[Path] = []
    for item in images:
        p = Path(item)
        if p.is_dir():  # its image files; DICOM files often have no suffix at all
            out.extend(sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith(".")
                              and f.suffix.lower() in IMAGE_SUFFIXES | {""}))
        else:
            out.append(p)
    if data is not None:
        from medgemma_tui.data.schema import load_dataset

        for sample in load_dataset(data, images_root):
            out.append(Path(sample.image))
    return list(dict.fromkeys(out))  # a film named twice (one per question of a dataset) is read once


def _stems(paths: list[Path]) -> list[str]:
    """File names without extension; a repeated one gets ``-2``, ``-3``... so no mask overwrites another."""
    seen: dict[str, int] = {}
    out = []
    for p in paths:
        n = seen.get(p.stem, 0) + 1
        seen[p.stem] = n
        out.append(p.stem if n == 1 else f"{p.stem}-{n}")
    return out


def _save_mask(mask: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray(np.where(mask, 255, 0).astype(np.uint8), mode="L").save(path)


def outlined_tile(pixels: np.ndarray, masks, height: int = TILE) -> np.ndarray:
    """The film shrunk to ``height`` rows, RGB, with each mask's outline drawn in its colour."""
    from PIL import Image
    from scipy import ndimage

    h, w = pixels.shape[:2]
    width = max(1, round(w * height / h))
    gray = np.asarray(Image.fromarray(pixels).convert("L").resize((width, height), Image.BILINEAR))
    tile = np.repeat(gray[:, :, None], 3, axis=2).copy()
    for name, colour in OUTLINES:
        m = np.asarray(Image.fromarray(getattr(masks, name).astype(np.uint8) * 255).resize((width, height),
                                                                                          Image.NEAREST)) > 127
        edge = m & ~ndimage.binary_erosion(m, iterations=1, border_value=0)
        tile[ndimage.binary_dilation(edge)] = colour
    return tile


def contact_sheet(tiles: list[tuple[str, np.ndarray]], columns: int = 6) -> np.ndarray:
    """Tiles side by side in rows of ``columns``, each labelled with its stem."""
    from PIL import Image, ImageDraw

    widths = [t.shape[1] for _, t in tiles]
    cell_w = max(widths)
    rows = (len(tiles) + columns - 1) // columns
    sheet = Image.new("RGB", (cell_w * min(columns, len(tiles)), (TILE + 14) * rows), (0, 0, 0))
    draw = ImageDraw.Draw(sheet)
    for k, (label, tile) in enumerate(tiles):
        x, y = (k % columns) * cell_w, (k // columns) * (TILE + 14)
        sheet.paste(Image.fromarray(tile), (x + (cell_w - tile.shape[1]) // 2, y))
        draw.text((x + 2, y + TILE + 1), label[:40], fill=(230, 230, 230))
    return np.asarray(sheet)


@click.command("masks", short_help="Anatomy masks of films, no model: check them before a run.")
@click.argument("images", nargs=-1, type=click.Path())
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="folder for the masks")
@click.option("--data", type=click.Path(), help="dataset CSV: its image_path column names the films")
@click.option("--images", "images_root", type=click.Path(), help="images root for --data (default: the CSV's folder)")
@click.option("--json", "as_json", is_flag=True, help="one JSON line per film on stdout")
@click.option("--method", type=click.Choice(["lungnet", "classical"]), default="lungnet", show_default=True,
              help="the trained network, or thresholds and shape checks alone")
@reports_errors
def masks_command(images, out_dir, data, images_root, as_json, method) -> None:
    """Body, lung-field and cardiomediastinum masks of chest films; MedGemma is not loaded.

    Writes {stem}_body.png, {stem}_lung_left.png (the patient's left: image right), {stem}_lung_right.png
    and {stem}_mediastinum.png (0/255, the film's size) and contact_sheet.png (outlines over the films)
    into --out. A film that cannot be read gets one line on stderr and the rest go on; the exit status is
    1 when any failed. Masks that fail their plausibility check are written and marked "implausible".
    """
    from PIL import Image

    from medgemma_tui.analysis.masks import anatomy_masks
    from medgemma_tui.data.images import load_image

    if not images and data is None:
        raise UsageError("give at least one IMAGE or --data CSV")
    paths = _films(images, data, images_root)
    if not paths:
        raise UsageError("no films found")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if method == "lungnet":  # load once, so each film's seconds are its own
        from medgemma_tui.analysis.lungnet import load_lungnet

        load_lungnet()
    failed = 0
    tiles: list[tuple[str, np.ndarray]] = []
    for path, stem in zip(paths, _stems(paths), strict=True):
        try:
            pixels = load_image(path).pixels
            t0 = time.perf_counter()
            am = anatomy_masks(pixels, method=method)
            seconds = time.perf_counter() - t0
        except user_error_types() as exc:
            click.echo(f"medtui: error: {first_line(exc)}", err=True)
            failed += 1
            continue
        except ValueError as exc:  # an image the masks cannot read (too small, wrong shape)
            click.echo(f"medtui: error: {path}: {first_line(exc)}", err=True)
            failed += 1
            continue
        for attr, suffix in MASK_NAMES:
            _save_mask(getattr(am, attr), out / f"{stem}_{suffix}.png")
        tiles.append((f"{stem} ({am.quality})", outlined_tile(pixels, am)))
        areas = {k: round(v, 5) for k, v in am.areas().items()}
        if as_json:
            click.echo(json.dumps({"image": str(path), "stem": stem, "width": int(pixels.shape[1]),
                                   "height": int(pixels.shape[0]), "areas": areas, "quality": am.quality,
                                   "quality_reasons": list(am.quality_reasons), "fallback": list(am.fallback),
                                   "seconds": round(seconds, 4)}))
        else:
            why = f" ({', '.join(am.quality_reasons)})" if am.quality_reasons else ""
            click.echo(f"{path}: {am.quality}{why}; lungs {100 * (areas['lung_right'] + areas['lung_left']):.1f}%, "
                       f"mediastinum {100 * areas['mediastinum']:.1f}% of the film; {seconds:.2f} s")
    if tiles:
        Image.fromarray(contact_sheet(tiles)).save(out / SHEET_NAME)
    if failed:
        click.echo(f"medtui: {failed} of {len(paths)} films failed", err=True)
        sys.exit(EXIT_FAILED)
