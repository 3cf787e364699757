"""``SampleResult``: one dataset row answered and analysed, the value every sink (tree, screen) receives."""

from __future__ import annotations

from dataclasses import dataclass

from medgemma_tui.analysis.record_analysis import SampleAnalysis
from medgemma_tui.data.images import LoadedImage
from medgemma_tui.data.schema import Sample


@dataclass
class SampleResult:
    sample: Sample
    film: LoadedImage  # the film as read from disk (the model saw it resized: ``record.xray``)
    analysis: SampleAnalysis

    @property
    def record(self):
        return self.analysis.record
