#!/usr/bin/env bash
# Installs the Python environment of the Avalanche peer benchmark (avalanche_bench.py):
#
#   bash bench/peers/install.sh
#
# Creates a venv (default ~/.cache/lifelong/avalanche-venv; override with
# LIFELONG_AVALANCHE_VENV=/path) and installs the exact pins of requirements.txt with
# --no-deps, from PyPI only. About 3.0 GB downloaded, 5.7 GB on disk: torch 2.5.1 on PyPI is
# the CUDA build and cannot be imported without its nvidia-* wheels (see README.md).
# Not a dependency of lifelong or of npm test. Safe to run again (already-installed pins are kept).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${LIFELONG_AVALANCHE_VENV:-$HOME/.cache/lifelong/avalanche-venv}"
PYTHON="${PYTHON:-python3}"

if ! "$PYTHON" -c 'import sys; sys.exit(0 if (3, 9) <= sys.version_info[:2] <= (3, 12) else 1)'; then
  echo "install.sh: needs Python 3.9-3.12 (numpy 1.26.4, torch 2.5.1); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "creating venv $VENV"
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --disable-pip-version-check --progress-bar off --no-deps -r "$HERE/requirements.txt"
"$VENV/bin/python" -m pip check
"$VENV/bin/python" - <<'EOF'
import warnings
warnings.filterwarnings("ignore")
import torch, torchvision, avalanche
from avalanche.training import EWC, GenerativeReplay, Naive
from avalanche.training.supervised import PNNStrategy
x = torch.nn.Linear(4, 2)(torch.ones(3, 4)).sum()
x.backward()
print(f"ok: torch {torch.__version__} (cuda available: {torch.cuda.is_available()}), torchvision {torchvision.__version__}, avalanche {avalanche.__version__}")
EOF
echo "run: $VENV/bin/python $HERE/avalanche_bench.py --suite three-scenarios-split-mnist --repeats 1 --out results/three-scenarios-split-mnist.avalanche.json"
