#!/usr/bin/env bash
# The GPU check of issue 16, in one command, on a machine with a GPU:
#
#     benchmarks/gpu_check.sh                      # CUDA, 2,000 distinct images, bf16 and fp16
#     benchmarks/gpu_check.sh --device cpu --n 50  # a dry run of the same code on the CPU
#
# It embeds N distinct images at each precision and prints images/s end to end against the
# model-only ceiling on that device and the logit drift against fp32 on the CPU (see
# benchmarks/gpu_check.py). Python: $PYTHON if set, else the repository's .venv, else a python3
# that already has the requirements, else a fresh venv in /tmp with `pip install -r
# requirements.txt` (nothing beyond the requirements). The check itself stops after 8 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

pick_python() {
    if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"; return; fi
    if [ -x .venv/bin/python ]; then echo .venv/bin/python; return; fi
    if python3 -c "import torch, torchxrayvision, umap, sklearn, pandas, pyarrow" 2>/dev/null; then
        echo python3; return
    fi
    local venv=/tmp/cxrviz-gpu-venv
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv" >&2
        "$venv/bin/pip" install -q -r requirements.txt >&2
    fi
    echo "$venv/bin/python"
}

PY=$(pick_python)
echo "python: $PY"
status=0
timeout --signal=TERM --kill-after=10 480 "$PY" benchmarks/gpu_check.py "$@" || status=$?
if [ "$status" -eq 124 ]; then
    echo "gpu_check: stopped after 8 minutes (the numbers printed above are all it measured)" >&2
fi
exit "$status"
