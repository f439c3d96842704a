#!/usr/bin/env bash
# Install the course into ./.venv from scratch (needs only Python >= 3.11 and pip).
# PyTorch: the CPU build is installed first where no torch is present, so that nothing pulls
# a multi-GB CUDA build. Override with TORCH_SPEC (e.g. TORCH_SPEC="torch" on a GPU machine).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
VPY=.venv/bin/python
"$VPY" -m pip install --quiet --upgrade pip 2>&1 | grep -v "is ignored" || true
if ! "$VPY" -c "import torch" 2>/dev/null; then
    "$VPY" -m pip install --quiet "${TORCH_SPEC:-torch==2.13.0}" 2>&1 | grep -v "is ignored" || true
fi
"$VPY" -m pip install --quiet -e ".[course,test]" 2>&1 | grep -v "is ignored" || true
# An editable install gets no bytecode, and where PYTHONDONTWRITEBYTECODE is set no process ever
# writes it: every grading process (kernel, producer, nbgrader) would compile the package again.
"$VPY" -m compileall -q src >/dev/null || true
"$VPY" -c "import torch, transformer_lens, induction_course; print('installed: torch', torch.__version__, '| induction_course', induction_course.__version__)"
if [ "$(uname -s)" = Linux ] && ! command -v bwrap >/dev/null; then
    echo "note: bubblewrap (bwrap) is missing: 'induction-course grade' will run student code unsandboxed; install it with: sudo apt-get install bubblewrap"
fi
