"""Sharper pictures where the terminal speaks a graphics protocol (sixel, kitty's): an option, never the default.

Half-blocks (``picture.py``) stay the default: they work in every terminal and over any SSH hop. With
``--graphics`` the X-ray pane hands the same composed picture (film, map, masks, cursor: ``picture.compose``)
at ``PICTURE_SIDE`` pixels to textual-image, which encodes sixels or kitty's graphics commands and sizes
them from the terminal's cell size. textual-image asks the terminal about its protocols and cell size
when it is first imported, which is impossible once Textual owns the terminal: ``prepare`` runs in the
launcher, before the app starts (as ``--color`` does).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from medgemma_tui.config import GRAPHICS_MODES

HALF_BLOCKS = "half-blocks"
PROTOCOLS = ("sixel", "kitty")
PICTURE_SIDE = 512  # pixels of the picture handed to the protocol: four per map cell edge and then some


@dataclass(frozen=True)
class Graphics:
    """What draws the X-ray: ``renderer`` is "half-blocks", "sixel" or "kitty"; ``note`` says why, if
    the mode asked for was not what the terminal gave."""

    renderer: str = HALF_BLOCKS
    note: str | None = None

    @property
    def sharp(self) -> bool:
        return self.renderer in PROTOCOLS


def prepare(mode: str) -> Graphics:
    """Choose the renderer for ``mode`` (off | auto | sixel | kitty), querying the terminal if needed.

    ``auto`` takes what textual-image detects on this terminal and falls back to half-blocks with a note;
    ``sixel`` and ``kitty`` are taken as asked (the user knows the terminal, e.g. through tmux).
    """
    if mode not in GRAPHICS_MODES:
        raise ValueError(f"graphics {mode!r}: expected one of {', '.join(GRAPHICS_MODES)}")
    if mode == "off":
        return Graphics()
    try:
        detected = importlib.import_module("textual_image.renderable")  # queries the terminal, once
        importlib.import_module("textual_image.widget")  # caches the cell size before Textual starts
    except ImportError as exc:  # a dependency, but a broken install should not stop the app
        return Graphics(note=f"graphics {mode}: textual-image is not importable ({exc}); drawing half-blocks")
    if mode != "auto":
        return Graphics(mode)
    found = {detected.SixelImage: "sixel", detected.TGPImage: "kitty"}.get(detected.Image)
    if found is None:
        return Graphics(note="graphics auto: this terminal answered no sixel or kitty query; drawing half-blocks")
    return Graphics(found)


def image_widget(renderer: str, **kwargs):
    """A textual-image widget drawing with ``renderer`` ("sixel" or "kitty")."""
    from textual_image.widget import SixelImage, TGPImage

    if renderer not in PROTOCOLS:
        raise ValueError(f"no graphics protocol {renderer!r}")
    return (SixelImage if renderer == "sixel" else TGPImage)(**kwargs)
