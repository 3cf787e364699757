"""The core and the headless commands never import textual."""

from __future__ import annotations

import subprocess
import sys

HEADLESS = [
    "import cli.main",
    "import medgemma_tui.engine.extract, medgemma_tui.analysis.record_analysis, medgemma_tui.pipeline.evaluation",
    "import medgemma_tui.export.record_io, medgemma_tui.data.schema, medgemma_tui.data.images",
]


def modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"],
                         capture_output=True, text=True, check=True, timeout=120)
    return set(out.stdout.split())


def test_headless_entry_points_do_not_import_textual():
    for code in HEADLESS:
        loaded = modules_after(code)
        assert "textual" not in loaded, code


def test_check_help_runs_without_textual_or_torch():
    loaded = modules_after(
        "from click.testing import CliRunner\nfrom cli.main import main\n"
        "assert CliRunner().invoke(main, ['check', '--help']).exit_code == 0"
    )
    assert "textual" not in loaded
    assert "torch" not in loaded
