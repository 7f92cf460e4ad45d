#!/usr/bin/env bash
# Installs PyTorch for `npm run bench:peers` (bench/peers/torch_step.py) into a venv:
#
#   bash bench/peers/install-torch.sh
#
# Default ~/.cache/lifelong/torch-venv (the bench's default --python); LIFELONG_TORCH_VENV moves it.
# PyPI's Linux torch is the CUDA build: with its nvidia-* wheels about 5 GB on disk, ~3 min.
# Not a dependency of lifelong or of npm test. Safe to run again.
set -euo pipefail
VENV="${LIFELONG_TORCH_VENV:-$HOME/.cache/lifelong/torch-venv}"
PYTHON="${PYTHON:-python3}"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --disable-pip-version-check --progress-bar off torch==2.15.0 numpy==2.4.6
"$VENV/bin/python" -c 'import torch; print(f"ok: torch {torch.__version__}, {torch.get_num_threads()} threads by default")'
echo "run: npm run bench:peers -- --python $VENV/bin/python"
