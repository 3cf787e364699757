"""One dataset sample through the whole chain: film -> record -> analysis. Shared by ``eval`` and the app."""

from __future__ import annotations

from dataclasses import dataclass

from medgemma_tui.analysis.sample import DEFAULT_SPEC, SampleAnalysis, analyse_record
from medgemma_tui.analysis.views import MapSpec
from medgemma_tui.data.images import LoadedImage, load_image
from medgemma_tui.data.schema import Sample
from medgemma_tui.engine.extract import extract_record
from medgemma_tui.model.loading import LoadedModel


@dataclass
class SampleResult:
    sample: Sample
    film: LoadedImage
    analysis: SampleAnalysis

    @property
    def record(self):
        return self.analysis.record


def run_sample(
    loaded: LoadedModel,
    sample: Sample,
    max_new_tokens: int = 24,
    spec: MapSpec = DEFAULT_SPEC,
    terms: list[str] | None = None,
) -> SampleResult:
    film = load_image(sample.image)
    record = extract_record(loaded, film.rgb, sample.question, max_new_tokens=max_new_tokens,
                            image_path=str(sample.image))
    analysis = analyse_record(
        record, pixels=film.pixels, boxes=list(sample.bbox or ()), ground_truth=sample.answer, spec=spec, terms=terms
    )
    return SampleResult(sample=sample, film=film, analysis=analysis)
