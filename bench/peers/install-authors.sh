#!/usr/bin/env bash
# Installs the authors' code as a peer of `lifelong bench` (bench/peers/authors_bench.py):
#
#   bash bench/peers/install-authors.sh [SOURCE]
#
# SOURCE (or $LIFELONG_AUTHORS_SOURCE) is a git repository holding GMvandeVen/continual-learning's
# commit a02db26 (branch preprints, the "Three scenarios" code): a local clone or a bare mirror. On a
# machine with internet, without SOURCE, it clones it:
#   git clone -b preprints https://github.com/GMvandeVen/continual-learning
# The pinned commit is exported (git archive, no .git) to ~/.cache/lifelong/continual-learning
# ($LIFELONG_AUTHORS_CHECKOUT moves it). Python: the torch venv of install-torch.sh
# (~/.cache/lifelong/torch-venv, $LIFELONG_TORCH_VENV), plus requirements-authors.txt (~60 MB).
# Not a dependency of lifelong or of npm test. Safe to run again.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
COMMIT=a02db26d3b10754abdc4a549bdcde6af488c94e0
CHECKOUT="${LIFELONG_AUTHORS_CHECKOUT:-$HOME/.cache/lifelong/continual-learning}"
VENV="${LIFELONG_TORCH_VENV:-$HOME/.cache/lifelong/torch-venv}"
SOURCE="${1:-${LIFELONG_AUTHORS_SOURCE:-}}"

if [ "$(cat "$CHECKOUT/COMMIT" 2>/dev/null)" != "$COMMIT" ]; then
  if [ -z "$SOURCE" ]; then
    SOURCE="$(mktemp -d)/continual-learning"
    git clone -b preprints https://github.com/GMvandeVen/continual-learning "$SOURCE"
  fi
  git -C "$SOURCE" cat-file -e "$COMMIT^{commit}" || { echo "install-authors.sh: $SOURCE has no commit $COMMIT" >&2; exit 1; }
  rm -rf "$CHECKOUT" && mkdir -p "$CHECKOUT"
  git -C "$SOURCE" archive "$COMMIT" | tar -x -C "$CHECKOUT"
  echo "$COMMIT" > "$CHECKOUT/COMMIT"
fi

LIFELONG_TORCH_VENV="$VENV" bash "$HERE/install-torch.sh"
"$VENV/bin/python" -m pip install --disable-pip-version-check --progress-bar off -r "$HERE/requirements-authors.txt"
"$VENV/bin/python" -c 'import torch, torchvision, pandas, matplotlib, tqdm; print(f"ok: torch {torch.__version__}, torchvision {torchvision.__version__}, pandas {pandas.__version__}")'
echo "checkout: $CHECKOUT (commit $COMMIT)"
echo "run: $VENV/bin/python $HERE/authors_bench.py --suite three-scenarios-split-mnist --seeds 1 --out $HERE/results/three-scenarios-split-mnist.authors.json"
