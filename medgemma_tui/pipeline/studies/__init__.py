"""Studies of one row that need the model again (headless, opt-in), chosen and built from ``registry.STUDIES``.

Each study returns a plain JSON-ready dict, which ``make_studies`` files in ``result.analysis.extras``
under the study's registered name (the one place a study's output is filed); the
tree writes them to ``robustness/{key}.json`` and ``export.study_tables`` and ``export.method_tables``
turn the files of a tree into tables and summary numbers. ``medtui eval``, its Ray workers and the app
choose and build studies only through ``study_names`` and ``make_studies``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING

from medgemma_tui.registry import STUDIES, resolve

if TYPE_CHECKING:
    from medgemma_tui.analysis.result import SampleResult
    from medgemma_tui.config import Config
    from medgemma_tui.model.loading import LoadedModel
    from medgemma_tui.pipeline.batch import Study


def study_names(config: Config, asked: Collection[str] = ()) -> list[str]:
    """The studies that the command (``asked``: the names its flags asked for) and the config turn on, in
    the registry's order; a study ``within`` another runs only beside it."""
    on: list[str] = []
    for name, spec in STUDIES.items():
        wanted = spec.switched_on(config)
        if spec.within is not None:
            wanted = wanted and spec.within in on
        else:
            wanted = wanted or name in asked
        if wanted:
            on.append(name)
    return on


def with_studies(config: Config, names: Collection[str]) -> Config:
    """The config with the switch set of each chosen study that ``sets_switch`` (another study reads it: the
    methods study runs deletion and insertion on every map when faithfulness is on), as run.json records it."""
    switches = {spec.switch: True for name, spec in STUDIES.items()
                if name in names and spec.sets_switch and isinstance(spec.switch, str) and not spec.switched_on(config)}
    return config.with_overrides(switches) if switches else config


def make_studies(config: Config, names: Sequence[str]) -> list[Study]:
    """The named studies, each a ``batch.Study`` built from the config that files its study's dict in
    ``result.analysis.extras`` under the study's name."""
    return [_filed(name, resolve(STUDIES[name].build)(config)) for name in names]


def _filed(name: str, run: Callable[[LoadedModel, SampleResult], object]) -> Study:
    def study(loaded: LoadedModel, result: SampleResult) -> None:
        result.analysis.extras[name] = run(loaded, result)

    return study

