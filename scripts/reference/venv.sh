#!/usr/bin/env bash
# Create (or refresh) the git-ignored Python environment .venv-ref/ in the project root with
# the pinned reference stack of scripts/reference/requirements-tokenize.txt.
# Idempotent: does nothing when the venv was already built from the same requirements file.
#
# Usage: scripts/reference/venv.sh        (then: .venv-ref/bin/python scripts/reference/...)
# Environment: PYTHON (default python3), used only to create the venv.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.venv-ref"
REQ="$ROOT/scripts/reference/requirements-tokenize.txt"
STAMP="$VENV/.requirements-tokenize.sha256"
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
