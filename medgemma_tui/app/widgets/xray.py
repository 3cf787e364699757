"""The X-ray pane: the film with its heatmap (Line API, cached strips), a colour bar and the cell under the cursor."""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.cache import LRUCache
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static

from medgemma_tui.app.bindings import CURSOR_BINDINGS
from medgemma_tui.app.frame import Frame, cell_text
from medgemma_tui.app.graphics import PICTURE_SIDE, image_widget
from medgemma_tui.app.picture import Paint, background_style, colorbar_segments, compose, picture_strips


class XrayView(Widget, can_focus=True):
    """Half-block picture of the current frame. Strips are cached by everything they depend on."""

    BINDINGS = CURSOR_BINDINGS
    DEFAULT_CSS = "XrayView { width: 1fr; height: 1fr; }"

    class CursorMoved(Message):
        def __init__(self, drow: int, dcol: int) -> None:
            super().__init__()
            self.drow, self.dcol = drow, dcol

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.frame: Frame | None = None
        self.paint = Paint()
        self.masks: dict | None = None
        self.boxes: tuple = ()  # ground-truth boxes as fractions of the film (picture.box_fractions)
        self._cache: LRUCache[tuple, tuple[object, list[Strip]]] = LRUCache(48)

    def show(self, frame: Frame | None, paint: Paint, masks: dict | None, boxes: tuple = ()) -> None:
        self.frame, self.paint, self.masks, self.boxes = frame, paint, masks, boxes
        self.refresh()

    def picture_key(self) -> tuple:
        """Everything the picture's pixels depend on (the record by id, its view, the paint, masks, boxes)."""
        frame = self.frame
        record_id = None if frame is None else id(frame.record)
        spec = None if frame is None else frame.spec
        masks = self.paint.masks and self.masks is not None
        boxes = self.boxes if self.paint.masks else ()
        return (record_id, spec, self.paint, masks, boxes)

    def cache_key(self) -> tuple:
        """The strips' key: the picture's, and the pane's size they are cut to."""
        return (*self.picture_key(), self.size.width, self.size.height)

    def strips(self) -> list[Strip]:
        key = self.cache_key()
        hit = self._cache.get(key)
        if hit is not None:
            return hit[1]
        width, height = self.size.width, self.size.height
        if self.frame is None:
            strips = [Strip([Segment(" " * width, background_style(self.paint))], width)] * height
        else:
            record = self.frame.record
            strips = picture_strips(record.xray, self.frame.grid, self.paint, width, height, self.masks, self.boxes)
        # the value keeps the record alive, so its id in the key cannot be reused while cached
        self._cache[key] = (self.frame, strips)
        return strips

    def render_line(self, y: int) -> Strip:
        strips = self.strips()
        if 0 <= y < len(strips):
            return strips[y]
        return Strip.blank(self.size.width, background_style(self.paint))

    def action_cursor(self, drow: int, dcol: int) -> None:
        self.post_message(self.CursorMoved(drow, dcol))


class SharpXrayView(XrayView):
    """The same picture drawn through a terminal graphics protocol (``--graphics``): the composed pixels
    at ``PICTURE_SIDE`` go to a textual-image widget, which sizes them to the pane from the cell size."""

    DEFAULT_CSS = """
    SharpXrayView { width: 1fr; height: 1fr; align: center top; }
    SharpXrayView > .xray-image { width: auto; height: 1fr; }
    """

    def __init__(self, renderer: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.renderer = renderer
        self._pictures: LRUCache[tuple, tuple[object, object]] = LRUCache(16)

    def compose(self):
        yield image_widget(self.renderer, classes="xray-image")

    def picture(self):
        """The PIL image on show: cached by all it depends on but the pane's size (the protocol scales)."""
        from PIL import Image

        if self.frame is None:
            return None
        key = self.picture_key()
        hit = self._pictures.get(key)
        if hit is None:
            rgb = compose(self.frame.record.xray, self.frame.grid, self.paint, PICTURE_SIDE, self.masks, self.boxes)
            hit = self._pictures[key] = (self.frame, Image.fromarray(rgb))
        return hit[1]

    def show(self, frame: Frame | None, paint: Paint, masks: dict | None, boxes: tuple = ()) -> None:
        self.frame, self.paint, self.masks, self.boxes = frame, paint, masks, boxes
        image = self.query_one(".xray-image")
        picture = self.picture()
        if image.image is not picture:
            image.image = picture

    def render_line(self, y: int) -> Strip:
        return Strip.blank(self.size.width, background_style(self.paint))


MIN_BAR = 8  # cells of gradient below which the colour bar drops the colormap's name rather than cut it


class ColorBar(Widget):
    """``0 ▕gradient▏ max 0.0123``: what the colours of the map mean."""

    DEFAULT_CSS = "ColorBar { height: 1; width: 1fr; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.frame: Frame | None = None
        self.paint = Paint()

    def show(self, frame: Frame | None, paint: Paint) -> None:
        self.frame, self.paint = frame, paint
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        if y != 0 or self.frame is None:
            return Strip.blank(width, base)
        grid = self.frame.grid
        top, low = float(grid.max()), float(grid.min())
        left = f"{low:.4f} " if self.paint.scale == "range" else "0 "
        right = f" {top:.4f} max" + ("" if self.paint.scale == "range" else f" (min {low:.4f})")
        room = width - len(left) - len(right) - 2
        name = f"  {self.paint.colormap}"
        if room - len(name) < MIN_BAR:
            name = ""  # the colormap's name only where it fits whole beside a bar that can be read
        bar_width = max(0, min(32, room - len(name)))
        segments = [Segment(left, base), *colorbar_segments(self.paint.colormap, bar_width, self.paint.colors)]
        segments.append(Segment(right, base))
        segments.append(Segment(name, base + Style(dim=True)))
        return Strip(segments).crop(0, width).extend_cell_length(width, base)


# The keys the picture's first line names, longest first: the widest that fits is shown, so a narrow
# terminal (whose samples table starts hidden) still says how to reach the table and every other key.
HINTS = (
    "arrows: cell cursor · o overlay · m masks and box · s samples · / filter · ? all keys",
    "arrows: cell · o overlay · m masks · s samples · / filter · ? keys",
    "s samples · / filter · arrows: cell · ? keys",
    "s samples · / filter · ? keys",
)


class CellInfo(Static):
    """The value and anatomical zone of the cell under the cursor (arrow keys on the picture)."""

    DEFAULT_CSS = "CellInfo { height: 1; width: 1fr; }"

    _shown: tuple | None = None

    def on_resize(self) -> None:
        if self._shown is not None:  # the hint and the cell's text are fitted to the width
            self.show(*self._shown)

    def show(self, frame: Frame | None, zones, cursor: tuple[int, int] | None) -> None:
        self._shown = (frame, zones, cursor)
        if frame is None:
            self.update("", layout=False)
        elif cursor is None:
            width = self.content_size.width or len(HINTS[-1])
            hint = next((h for h in HINTS if len(h) <= width), HINTS[-1])
            self.update(Text(hint, style="dim", no_wrap=True, overflow="ellipsis"), layout=False)
        else:
            text = cell_text(frame, zones, cursor, self.content_size.width or None)
            self.update(Text(text, no_wrap=True, overflow="ellipsis"), layout=False)
