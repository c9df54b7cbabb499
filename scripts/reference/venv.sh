#!/usr/bin/env bash
# Create (or refresh) a git-ignored Python environment in the project root with a pinned
# reference stack: `tokenize` (default) -> .venv-ref/ from requirements-tokenize.txt;
# `full` -> .venv-ref-full/ from requirements-full.txt (torch, transformers, scikit-learn,
# umap-learn, seqeval, datasets: the chapters' stack, for fixtures and benchmarks).
# Idempotent: does nothing when the venv was already built from the same requirements file.
#
# Usage: scripts/reference/venv.sh [tokenize|full]   (then: .venv-ref/bin/python scripts/reference/...)
# Environment: PYTHON (default python3), used only to create the venv.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SET="${1:-tokenize}"
case "$SET" in
    tokenize) VENV="$ROOT/.venv-ref" ;;
    full) VENV="$ROOT/.venv-ref-full" ;;
    *) echo "usage: $0 [tokenize|full]" >&2; exit 2 ;;
esac
REQ="$ROOT/scripts/reference/requirements-$SET.txt"
STAMP="$VENV/.requirements-$SET.sha256"
PYTHON="${PYTHON:-python3}"

want="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
    echo "venv: $VENV is up to date"
    exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "venv: creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
echo "venv: installing pinned packages from ${REQ#"$ROOT"/}"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"
printf '%s' "$want" > "$STAMP"
"$VENV/bin/python" -c 'import transformers, tokenizers; print(f"venv: ready: transformers {transformers.__version__}, tokenizers {tokenizers.__version__}")'
if [[ "$SET" == full ]]; then
    "$VENV/bin/python" -c 'import torch, sklearn, umap; print(f"venv: torch {torch.__version__}, scikit-learn {sklearn.__version__}, umap-learn {umap.__version__}")'
fi
