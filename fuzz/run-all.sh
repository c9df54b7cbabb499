#!/usr/bin/env bash
# Runs every fuzz target for N seconds each (default 600), two at a time, niced so that other
# builds keep the CPU. New corpus entries go to fuzz/corpus/<target>/ (git-ignored); the
# committed seeds in fuzz/seeds/<target>/ are only read. Crashes land in fuzz/artifacts/<target>/.
#
#   fuzz/run-all.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-600}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(pipeline load_delimited load_csv load_jsonl load_conll load_parquet)
fi
# Stable toolchain: no sanitizer (ASan needs nightly); coverage instrumentation works on stable.
flags=(--sanitizer none -O)
nice -n 19 cargo fuzz build "${flags[@]}"
mkdir -p logs
run() {
    local t="$1"
    mkdir -p "corpus/$t"
    nice -n 19 cargo fuzz run "${flags[@]}" "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"logs/$t.log" 2>&1
}
status=0
for ((i = 0; i < ${#targets[@]}; i += 2)); do
    pids=()
    for t in "${targets[@]:i:2}"; do
        run "$t" &
        pids+=("$!:$t")
    done
    for p in "${pids[@]}"; do
        if wait "${p%%:*}"; then
            echo "${p#*:}: ok, $(grep -h 'stat::number_of_executed_units' "logs/${p#*:}.log" | awk '{print $2}') executions in ${secs}s"
        else
            echo "${p#*:}: FAILED, see fuzz/logs/${p#*:}.log and fuzz/artifacts/${p#*:}/"
            status=1
        fi
    done
done
exit $status
