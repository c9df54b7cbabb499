"""Compares the de → de cell's test entity F1 over seeds: cairn (the `f1-<seed>` stages of
ner-crosslingual-seeds.yaml) against Python transformers (ner_finetune_cell.py --seed N).
Prints a table per seed, each stack's mean and standard deviation, the difference of the means
with its 95 % confidence interval (Welch), and writes the same as Markdown beside the results.
Exit 1 when the difference of the means is beyond --tolerance points.

    python seed_study.py RESULTS_DIR SEED...
"""
import argparse
import json
import pathlib
import statistics

from scipy import stats

ap = argparse.ArgumentParser()
ap.add_argument("results", type=pathlib.Path)
ap.add_argument("seeds", type=int, nargs="+")
ap.add_argument("--tolerance", type=float, default=1.5, help="in F1 points")
args = ap.parse_args()

cairn_metrics = json.loads((args.results / "ner-de-de-cairn-metrics.json").read_text())
rows = []
for seed in args.seeds:
    python_file = args.results / f"ner-de-de-python-{seed}.json"
    cairn = cairn_metrics.get(f"f1-{seed}", {}).get("test", {}).get("entity_f1")
    python = json.loads(python_file.read_text())["python_test_entity_f1"] if python_file.exists() else None
    if cairn is not None and python is not None:
        rows.append((seed, 100 * cairn, 100 * python))
if len(rows) < 2:
    raise SystemExit(f"need at least two seeds run in both stacks, have {len(rows)}")

cairn = [c for _, c, _ in rows]
python = [p for _, _, p in rows]
delta = statistics.mean(cairn) - statistics.mean(python)
welch = stats.ttest_ind(cairn, python, equal_var=False)
low, high = welch.confidence_interval(0.95)
lines = ["| seed | cairn | Python |", "| ---: | ---: | ---: |"]
lines += [f"| {s} | {c:.2f} | {p:.2f} |" for s, c, p in rows]
lines += [
    f"| mean ± sd ({len(rows)} seeds) | {statistics.mean(cairn):.2f} ± {statistics.stdev(cairn):.2f}"
    f" | {statistics.mean(python):.2f} ± {statistics.stdev(python):.2f} |",
    "",
    f"Difference of the means (cairn − Python): {delta:+.2f} F1 points; 95 % confidence interval "
    f"{low:+.2f} to {high:+.2f} (Welch's t-test, p = {welch.pvalue:.2f}).",
]
verdict = "within" if abs(delta) <= args.tolerance else "beyond"
lines.append(f"The difference is {verdict} the ±{args.tolerance} bar.")
text = "\n".join(lines)
print(text)
(args.results / "ner-de-de-seeds.md").write_text(
    "# The de → de cell over seeds (test entity F1, points)\n\n" + text + "\n")
raise SystemExit(0 if verdict == "within" else 1)
