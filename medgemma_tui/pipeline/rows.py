"""One dataset row through the whole chain: film -> answer and record -> model views -> analysis.

``RowSettings`` is everything the config decides about a row (the map spec, the gating terms, the
decoding), built in one place from a ``Config`` so every front end reads the same keys.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from medgemma_tui.analysis.answers import HEDGED_DEFAULT, read_answer
from medgemma_tui.analysis.masks import AnatomyMasks
from medgemma_tui.analysis.record_analysis import DEFAULT_SPEC, POINTING_TOLERANCE_PX, analyse_record
from medgemma_tui.analysis.result import SampleResult
from medgemma_tui.analysis.views import MODEL_VIEWS, MapSpec, mark_decision
from medgemma_tui.config.schema import PromptConfig
from medgemma_tui.data.images import LoadedImage, load_image
from medgemma_tui.data.schema import Sample, question_problem
from medgemma_tui.engine.extract import extract_record, extract_records
from medgemma_tui.engine.record import TARGET_INDEX, AttentionRecord
from medgemma_tui.engine.vision import VisionCache
from medgemma_tui.errors import MedtuiError
from medgemma_tui.model.loading import LoadedModel

if TYPE_CHECKING:
    from medgemma_tui.config import Config


class SampleError(MedtuiError):
    """A row that cannot be answered as it stands (an empty question, no image path)."""


@dataclass(frozen=True)
class RowSettings:
    """How a row is answered and analysed."""

    spec: MapSpec = DEFAULT_SPEC
    terms: tuple[str, ...] | None = None
    max_new_tokens: int = 24
    pointing_tolerance_px: float = POINTING_TOLERANCE_PX
    hedged_answers: str = HEDGED_DEFAULT  # what a leaning hedge reads as ([analysis] hedged_answers)
    prompt: PromptConfig = PromptConfig()  # the chat prompt ([prompt]): system turn, instruction, image order
    batch_size: int | str = 1  # rows of one film per generate ([decoding] batch_size; "auto": by the device)

    @classmethod
    def from_config(cls, config: Config) -> RowSettings:
        """The map of ``grids/`` and the overlay from ``[analysis]``, the decoding from ``[decoding]``, the
        chat prompt from ``[prompt]``."""
        analysis = config.analysis
        spec = DEFAULT_SPEC.with_(view=analysis.map_view, rows=analysis.default_row, layers=analysis.layer_span)
        terms = tuple(analysis.terms) if analysis.terms else None
        return cls(spec=spec, terms=terms, max_new_tokens=config.decoding.max_new_tokens,
                   pointing_tolerance_px=analysis.pointing_tolerance_px, hedged_answers=analysis.hedged_answers,
                   prompt=config.prompt,
                   batch_size=config.decoding.batch_size)

    def with_view(self, view: str | None) -> RowSettings:
        if view is None:
            return self
        return dataclasses.replace(self, spec=self.spec.with_(view=view))

    @property
    def term_list(self) -> list[str] | None:
        return list(self.terms) if self.terms else None


def needs_model(sample: Sample) -> bool:
    """Whether the row will be put to the model (a bad row fails without it)."""
    return not sample.problem and bool(str(sample.question).strip())


def check_row(sample: Sample) -> None:
    """Raise ``SampleError`` for a row the model cannot be asked."""
    if sample.problem:
        raise SampleError(f"bad row: {sample.problem}")
    if problem := question_problem(str(sample.question)):
        raise SampleError(problem)


def answer_row(loaded: LoadedModel, sample: Sample, settings: RowSettings, film: LoadedImage | None = None,
               vision: VisionCache | None = None, masks: AnatomyMasks | None = None,
               record: AttentionRecord | None = None) -> SampleResult:
    """Answer one row and analyse it; the views that need the model again are computed first.

    ``film`` and ``vision`` carry the film at hand from the previous row on the same image: the file
    is not read again, its vision pass is reused (``engine.vision``) and so are its anatomy ``masks``.
    ``record`` is the row's answer when it was already given with others of its film (``answer_films``)."""
    check_row(sample)
    film = film if film is not None else load_image(sample.image)
    if record is None:
        record = answer_film(loaded, sample, film, settings, vision)
    return analyse_row(sample, film, record, settings, loaded, masks)


def answer_film(loaded: LoadedModel, sample: Sample, film: LoadedImage, settings: RowSettings,
                vision: VisionCache | None = None):
    """The answer to the row's question about ``film`` and its attention record."""
    return extract_record(loaded, film.rgb, sample.question, max_new_tokens=settings.max_new_tokens,
                          image_path=str(sample.image), vision=vision, prompt_settings=settings.prompt)


def mark_decision_target(record: AttentionRecord, cue_span: tuple[int, int] | None = None) -> AttentionRecord:
    """Keep the decision token with the record (``analysis.views.mark_decision``: from ``cue_span``, the
    answer's reading, when at hand) and name it as the one the gradient views and attribution methods
    explain (``engine.gradients.target_row``): the verdict, not a sentence's first word."""
    record.extra.setdefault(TARGET_INDEX, mark_decision(record, cue_span))
    return record


def answer_films(loaded: LoadedModel, samples: list[Sample], film: LoadedImage, settings: RowSettings,
                 vision: VisionCache | None = None) -> list[AttentionRecord]:
    """The records of several rows about ``film``, answered by one generate (``engine.extract.extract_records``):
    each the same as ``answer_film`` gives the row alone. Anything else a row needs the model for (the
    gradient and relative views, the studies) is computed per row afterwards, by ``analyse_row``."""
    for sample in samples:
        check_row(sample)
    return extract_records(loaded, film.rgb, [s.question for s in samples], max_new_tokens=settings.max_new_tokens,
                           image_path=str(samples[0].image), vision=vision, prompt_settings=settings.prompt)


def analyse_row(sample: Sample, film: LoadedImage, record, settings: RowSettings,
                loaded: LoadedModel | None = None, masks: AnatomyMasks | None = None) -> SampleResult:
    """The analysis of an answered row; a model view (gradient, relative) asks ``loaded`` for its map. The
    answer is read here, once: its decision token is the gradient views' target and the analysis's row."""
    reading = read_answer(record.answer, record.question, settings.hedged_answers)
    mark_decision_target(record, reading.cue_span)
    if settings.spec.view in MODEL_VIEWS and MODEL_VIEWS[settings.spec.view] not in record.maps:
        if loaded is None:
            raise SampleError(f"the {settings.spec.view} view needs the model, and none is loaded")
        from medgemma_tui.engine.gradients import add_model_views

        add_model_views(loaded, film.rgb, record, [MODEL_VIEWS[settings.spec.view]])
    analysis = analyse_record(record, pixels=film.pixels, boxes=list(sample.bbox or ()),
                              ground_truth=sample.answer if sample.answer else None, spec=settings.spec,
                              terms=settings.term_list, pointing_tolerance_px=settings.pointing_tolerance_px,
                              masks=masks, hedged_answers=settings.hedged_answers, reading=reading)
    return SampleResult(sample=sample, film=film, analysis=analysis)
