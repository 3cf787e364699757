#!/usr/bin/env bash
# Fill wheels/ for scripts/gpu_check.py: this package and the dependencies a GPU image with torch lacks, at the
# versions this environment has, for the GPU machine's Python (PYVER, e.g. 311; default this Python's).
# Run from the repository root in the environment where medtui is installed; then carry wheels/ to the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p wheels
python -m pip wheel --quiet --no-deps -w wheels .
pyver=${PYVER:-$(python -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')}
python - > wheels/requirements.txt <<'PY'
import importlib.metadata as m
for name in ("transformers", "tokenizers", "huggingface-hub", "safetensors", "pydicom", "plotext", "textual",
             "textual-image", "rich", "click"):  # numpy-built ones (pandas, scipy) come with the image
    try:
        print(f"{name}=={m.version(name)}")
    except m.PackageNotFoundError:
        pass
PY
python -m pip download --quiet --no-deps --only-binary=:all: --python-version "$pyver" \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform any -d wheels -r wheels/requirements.txt
du -sh wheels
