#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: build cairn with the `cuda` feature, run the encoder fidelity
# tests on cuda:0 (the same 1e-4 bar against transformers as on the CPU), then time
# extract-hidden and a fine-tune on the CPU and on cuda:0 over the same data, and print one
# table. Never part of the test suite: the suite needs no GPU.
#
# Usage: scripts/gpu-check.sh [--rows N] [--steps S]     (defaults: 16000 tweets, 50 steps × 64)
#
# Needs: the NVIDIA driver (nvidia-smi), Rust, and scripts/setup.sh's data and model. The CUDA
# toolkit is the machine's (nvcc on PATH or in $CUDA_HOME) when it has one, else the wheels of
# scripts/cuda-toolkit.sh. Writes bench/results/gpu-check-<time>.md (git-ignored).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
rows=16000
steps=50
while [ $# -gt 0 ]; do
    case "$1" in
        --rows) rows="$2"; shift 2 ;;
        --steps) steps="$2"; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "gpu-check.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

if ! nvidia-smi >/dev/null 2>&1; then
    echo "gpu-check.sh: no NVIDIA GPU here (nvidia-smi failed); nothing to check" >&2
    exit 1
fi
gpu="$(nvidia-smi --query-gpu=name,driver_version,compute_cap --format=csv,noheader | head -1)"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d .)}"
if ! command -v nvcc >/dev/null && [ ! -x "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" ]; then
    scripts/cuda-toolkit.sh
    # shellcheck source=/dev/null
    source .venv-cuda/env.sh
elif ! command -v nvcc >/dev/null; then
    export CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}"
    export PATH="$CUDA_HOME/bin:$PATH"
fi
scripts/setup.sh >/dev/null

target=target/cuda
cargo build --release --features cuda --target-dir "$target"
cairn="$target/release/cairn"

echo "== encoder fidelity on cuda:0"
CAIRN_TEST_DEVICE=cuda:0 cargo test --release --features cuda --target-dir "$target" \
    -p cairn-stages nn::encoders::tests -- --test-threads 1 2>&1 | tee /tmp/gpu-check-tests.log \
    | grep -E "max \|Δ\||test result|FAILED|panicked"
fidelity="$(grep -E '^test result' /tmp/gpu-check-tests.log | tail -1)"

echo "== extract-hidden and fine-tune, cpu and cuda:0"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cat >"$work/pipeline.yaml" <<EOF
name: gpu-check
root: $ROOT
stages:
  load:
    kind: load
    format: delimited
    delimiter: ";"
    columns: [text, label]
    labels: [sadness, joy, love, anger, fear, surprise]
    splits: {train: data/emotion/train.txt, validation: data/emotion/validation.txt}
    limit: {train: $rows}
  tokenize: {kind: tokenize, inputs: [load], tokenizer: sentence-transformers/all-MiniLM-L6-v2}
  hidden:
    kind: extract-hidden
    inputs: [tokenize]
    model: sentence-transformers/all-MiniLM-L6-v2
    batch-size: 64
  finetune:
    kind: finetune
    inputs: [tokenize]
    model: sentence-transformers/all-MiniLM-L6-v2
    epochs: 1
    batch-size: 64
    learning-rate: 1.0e-4
    seed: 42
    max-steps: $steps
    predict-splits: []
EOF
# One cache for both devices: a GPU result is cached apart from the CPU's (its fingerprint
# records the device), so the second device recomputes rather than reusing the first's.
for device in cpu cuda:0; do
    "$cairn" --cache-dir "$work/cache" run "$work/pipeline.yaml" --device "$device" \
        --force hidden --force finetune >/dev/null
    cp "$work/cache/manifests/gpu-check.yaml" "$work/manifest-${device%%:*}.yaml"
done

python3 - "$work" "$rows" "$steps" "$gpu" "$fidelity" <<'EOF'
import datetime, pathlib, re, sys

work, rows, steps, gpu, fidelity = sys.argv[1:]


def stage_facts(manifest, stage):
    """wall-time-s and the run facts of `stage` in a manifest (flat `key: value` lines)."""
    facts, inside = {}, False
    for line in pathlib.Path(manifest).read_text().splitlines():
        if re.match(r"^  \S", line):
            inside = line.strip() == f"{stage}:"
        elif inside and (m := re.match(r"^\s+([a-z_-]+): ([0-9.]+)$", line)):
            facts.setdefault(m.group(1), float(m.group(2)))
    return facts


rows_ = [f"GPU: {gpu}; {rows} tweets, fine-tune {steps} steps × 64",
         f"Encoder fidelity tests on cuda:0: {fidelity}", "",
         "| stage | cpu | cuda:0 | speed-up |", "| --- | ---: | ---: | ---: |"]
for stage, label in [("hidden", "extract-hidden (s)"), ("finetune", "fine-tune (s)")]:
    cpu = stage_facts(f"{work}/manifest-cpu.yaml", stage)["wall-time-s"]
    gpu_s = stage_facts(f"{work}/manifest-cuda.yaml", stage)["wall-time-s"]
    rows_.append(f"| {label} | {cpu:.1f} | {gpu_s:.1f} | {cpu / gpu_s:.1f}× |")
for device in ["cpu", "cuda"]:
    sps = stage_facts(f"{work}/manifest-{device}.yaml", "finetune").get("train_samples_per_second")
    rows_.append(f"| fine-tune samples/s, {device} | | | {sps} |")
text = "\n".join(rows_)
print(text)
out = pathlib.Path("bench/results")
out.mkdir(parents=True, exist_ok=True)
stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
(out / f"gpu-check-{stamp}.md").write_text(text + "\n")
EOF
