"""The question and the answer as tokens: gated terms highlighted, the selected query token marked.

Clicking a token (or ``n`` / ``p``) chooses its row: a question token's own row, or for an answer
token the row that *produced* it (the position before it). Question tokens before the image cannot
attend to it: they are dimmed, and clicking one says so.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.widgets import Static

from medgemma_tui.app.frame import Frame
from medgemma_tui.app.state import BLIND_ROW, is_answer_row, sees_image, token_text


def _shown(text: str) -> str:
    return text.replace("\n", "⏎")


def tokens_text(frame: Frame, truth: str = "") -> Text:
    record, analysis = frame.record, frame.analysis
    selected = frame.spec.rows if isinstance(frame.spec.rows, int) else None
    gated = set(record.extra.get("gated_columns", []))
    rows_by_position = {int(record.query_positions[r]): r for r in record.question_rows.tolist()}
    blind = [r for r in record.question_rows.tolist() if not sees_image(record, r)]
    text = Text()
    text.append("Q ", style="bold")
    for column, position in enumerate(record.question_positions.tolist()):
        row = rows_by_position.get(position)
        style = Style(bold=True, underline=True, color="yellow") if column in gated else Style()
        if row in blind:
            style += Style(dim=True)
        if row is not None and row == selected and frame.state.view != "question":
            style += Style(reverse=True)
        if row is not None:
            style += Style(meta={"@click": f"screen.choose_row({row})"})
        text.append(_shown(record.tokens[position]), style=style)
    text.append("\nA ", style="bold")
    for row in record.content_answer_rows.tolist():  # the model's end token is no part of the answer
        k = int(record.query_answer_index[row])
        style = Style(meta={"@click": f"screen.choose_row({row})"})
        if row == selected and frame.state.view != "question":
            style += Style(reverse=True)
        text.append(_shown(record.answer_tokens[k]), style=style)
    text.append("\n→ ", style="dim")
    text.append(analysis.answer_label, style="bold")
    if truth:
        text.append(f"  truth {truth}", style="dim")
    if analysis.correct is not None:
        text.append("  ✓ correct" if analysis.correct else "  ✗ wrong", style="green" if analysis.correct else "red")
    if selected is not None and frame.state.view != "question":
        which = "produced" if is_answer_row(record, selected) else "is"
        text.append(f"\nrow {int(record.query_positions[selected])} {which} {token_text(record, selected)!r}",
                    style="dim")
    if analysis.gating.terms:
        text.append("\ngated: " + ", ".join(dict.fromkeys(analysis.gating.terms)), style="dim")
    if blind:
        text.append(f"\n{BLIND_ROW}", style="dim italic")
    return text


class TokenBar(Static):
    DEFAULT_CSS = "TokenBar { height: auto; }"

    _shape: tuple | None = None

    def show(self, frame: Frame | None, truth: str = "") -> None:
        """Redraw; a layout pass only for a new record, view kind or width (moving the mark keeps the lines)."""
        if frame is None:
            self._shape = None
            self.update(Text("No sample shown yet.", style="dim"))
            return
        shape = (id(frame.record), frame.state.view == "question", self.content_size.width)
        self.update(tokens_text(frame, truth), layout=shape != self._shape)
        self._shape = shape
