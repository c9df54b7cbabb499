#!/usr/bin/env bash
# One benchmark command: cairn side by side with the Python stack and DVC on this machine.
#   bench/run.sh [--quick] [--reps N] [--only substring,...]
# Makes (once) the pinned Python venv, installs data and model, builds cairn in release mode,
# then runs bench/run.py. Results: bench/results/<date>.md and .json (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/reference/venv.sh full
cargo build --release --locked
cargo build --release --locked -p cairn-stages --example matmul_peak
exec .venv-ref-full/bin/python bench/run.py "$@"
