#!/usr/bin/env bash
# The de → de fidelity cell over many seeds, in both stacks, one run at a time (each uses both
# cores), then the comparison of the means. Cairn's cells are stages of ner-crosslingual-seeds.yaml
# (only seeds not yet run are computed); Python's results land in scripts/reference/results/.
#
#     scripts/reference/seed_study.sh                # seeds 42 to 51, skipping those already done
#     SEEDS="52 53" scripts/reference/seed_study.sh  # more (add them to the pipeline's matrix too)
#
# Needs: cairn built (cargo build --release), the ner-crosslingual pipeline's panx-de stage run,
# and the reference venv (scripts/reference/venv.sh full).
set -euo pipefail
cd "$(dirname "$0")/../.."
seeds=${SEEDS:-"42 43 44 45 46 47 48 49 50 51"}
cairn=target/release/cairn
seeds_pipeline=scripts/reference/ner-crosslingual-seeds.yaml
results=scripts/reference/results
panx=$(mktemp -d)
trap 'rm -rf "$panx"' EXIT
"$cairn" export pipelines/ner-crosslingual.yaml panx-de "$panx" >/dev/null
for seed in $seeds; do
    out=$results/ner-de-de-python-$seed.json
    if [ ! -s "$out" ]; then
        .venv-ref-full/bin/python scripts/reference/ner_finetune_cell.py "$panx" --seed "$seed" \
            --out "$out.partial" && mv "$out.partial" "$out"
    fi
    "$cairn" run "$seeds_pipeline" --target "f1-$seed"
done
"$cairn" metrics "$seeds_pipeline" --json >"$results/ner-de-de-cairn-metrics.json"
.venv-ref-full/bin/python scripts/reference/seed_study.py "$results" $seeds
