#!/usr/bin/env python3
"""cairn side by side with the Python stack and DVC: one command, ratios measured in one run.

Each workload runs on both sides, interleaved (A B A B ...), `--reps` times; the table gives
the median and min-max of each side, the ratio (Python or DVC time / cairn time: > 1 means
cairn is faster) and each side's peak RSS. Results are printed and written as Markdown + JSON
under bench/results/ (git-ignored).

Usage: bench/run.sh [--quick] [--reps N] [--only a,b]
(bench/run.sh makes the pinned venv and the release build first, then calls this script.)

Timings are of the work itself where both sides can isolate it (each side prints `seconds=`);
process wall time and peak RSS are reported beside them.
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
CAIRN = ROOT / "target" / "release" / "cairn"
PY = ROOT / ".venv-ref-full" / "bin" / "python"
THREADS = "2"
ENV = dict(
    os.environ,
    HF_HUB_OFFLINE="1",
    OMP_NUM_THREADS=THREADS,
    MKL_NUM_THREADS=THREADS,
    RAYON_NUM_THREADS=THREADS,
    TOKENIZERS_PARALLELISM="true",
    RUST_LOG="warn",
)


def run(cmd, cwd=None):
    """Runs a setup command; fails loudly."""
    subprocess.run(cmd, cwd=cwd, env=ENV, check=True, stdout=subprocess.DEVNULL)


def run_measured(cmd, cwd=None):
    """Runs a timed command; returns (wall seconds, the child's own peak RSS in MiB, stdout).
    os.wait4 gives the rusage of that one process (not the high-water mark of all children)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, cwd=cwd, env=ENV, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"command failed ({code}): {' '.join(map(str, cmd))}\n{stdout}\n{stderr}")
    return wall, usage.ru_maxrss / 1024.0, stdout


def seconds_from(stdout, default):
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("seconds="):
            return float(line.split("=", 1)[1])
    return default


def stage_seconds(manifest, stage):
    """A stage's wall time as cairn recorded it in the manifest."""
    import yaml  # pyyaml comes with the venv (transformers depends on it)

    data = yaml.safe_load(pathlib.Path(manifest).read_text())
    return float(data["stages"][stage]["wall-time-s"])


class Workload:
    """One comparison: `reference` (Python/DVC) vs `cairn`, each a callable -> (seconds, rss)."""

    name = ""
    reference_name = ""
    unit = "s"

    def setup(self, quick, tmp):
        pass

    def reference(self):
        raise NotImplementedError

    def cairn(self):
        raise NotImplementedError


class CairnPipeline:
    """A pipeline under bench/pipelines run with its own cache in a temp dir."""

    def __init__(self, file, tmp):
        import yaml

        self.cache = pathlib.Path(tmp) / "cache"
        self.file = ROOT / "bench" / "pipelines" / file
        self.name = yaml.safe_load(self.file.read_text())["name"]

    def run(self, *args):
        return run_measured([CAIRN, "--cache-dir", self.cache, *args, self.file], cwd=ROOT)

    def manifest(self):
        return self.cache / "manifests" / f"{self.name}.yaml"


class Tokenize(Workload):
    name = "tokenize 20k tweets"
    reference_name = "datasets.map(tokenizer, batched=True)"

    def setup(self, quick, tmp):
        self.pipe = CairnPipeline("tokenize.yaml", tmp)
        self.pipe.run("run")  # load once; only tokenize is timed

    def reference(self):
        wall, rss, out = run_measured([PY, ROOT / "bench/python/tokenize_datasets.py", "--repeat", "1"], cwd=ROOT)
        return seconds_from(out, wall), rss

    def cairn(self):
        wall, rss, _ = self.pipe.run("run", "--force", "tokenize")
        return stage_seconds(self.pipe.manifest(), "tokenize"), rss


class Orchestration(Workload):
    """Fully cached 11-stage pipeline: `dvc repro` / `dvc status` vs `cairn run` / `cairn status`."""

    reference_name = "dvc"

    def __init__(self, command, big):
        self.command = command
        self.big = big
        self.name = f"no-op {command}, 11 stages" + (", large input" if big else "")

    def setup(self, quick, tmp):
        if self.big:
            self.name = self.name.replace("large", "64 MiB" if quick else "1 GiB")
        d = pathlib.Path(tmp) / f"{self.command}-{'big' if self.big else 'small'}"
        d.mkdir()
        self.dir = d
        (d / "small.txt").write_text("".join(f"tweet number {i};joy\n" for i in range(100)))
        if self.big:
            size = (64 if quick else 1024) << 20
            line = b"the quick brown fox jumps over the lazy dog again and again;joy\n"
            with open(d / "big.txt", "wb") as f:
                written = 0
                while written < size:
                    f.write(line * 4096)
                    written += len(line) * 4096
        # DVC side: the same shape, stages that copy small files.
        stages = {"s1": {"cmd": "cp small.txt o1.txt", "deps": ["small.txt"] + (["big.txt"] if self.big else []), "outs": ["o1.txt"]}}
        for k in range(2, 12):
            stages[f"s{k}"] = {"cmd": f"cp o{k-1}.txt o{k}.txt", "deps": [f"o{k-1}.txt"], "outs": [f"o{k}.txt"]}
        import yaml

        (d / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
        dvc = str(PY.parent / "dvc")
        run([dvc, "init", "--no-scm", "-q"], cwd=d)
        run([dvc, "repro", "-q"], cwd=d)
        # cairn side: load (+ the big file as a declared split) and ten normalize stages.
        splits = {"train": "small.txt"}
        if self.big:
            splits["big"] = "big.txt"
        pipeline = {
            "name": "orchestration",
            "stages": {
                "s1": {"kind": "load", "format": "delimited", "delimiter": ";", "columns": ["text", "label"],
                       "labels": ["joy"], "splits": splits},
            },
        }
        prev = "s1.train"
        for k in range(2, 12):
            pipeline["stages"][f"s{k}"] = {"kind": "normalize", "inputs": [prev], "ops": ["lowercase"]}
            prev = f"s{k}"
        (d / "pipeline.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
        run([CAIRN, "run", "pipeline.yaml"], cwd=d)
        time.sleep(1.1)  # past the stat cache's racy window, as any later edit would be
        run([CAIRN, "run", "pipeline.yaml"], cwd=d)

    def reference(self):
        dvc = str(PY.parent / "dvc")
        args = ["repro"] if self.command == "run" else ["status"]
        wall, rss, _ = run_measured([dvc, *args, "-q"], cwd=self.dir)
        return wall, rss

    def cairn(self):
        wall, rss, _ = run_measured([CAIRN, self.command, "pipeline.yaml"], cwd=self.dir)
        return wall, rss


def all_workloads():
    return [
        Tokenize(),
        Orchestration("run", big=False),
        Orchestration("status", big=False),
        Orchestration("run", big=True),
        Orchestration("status", big=True),
    ]


def fmt(values):
    med = statistics.median(values)
    return f"{med:.3f} ({min(values):.3f}-{max(values):.3f})"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller inputs, fewer repetitions (< 5 min)")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--only", default="", help="comma-separated substrings of workload names")
    args = ap.parse_args()
    reps = args.reps or (3 if args.quick else 5)
    chosen = [w for w in all_workloads() if not args.only or any(s in w.name for s in args.only.split(","))]

    rows = []
    with tempfile.TemporaryDirectory(prefix="cairn-bench-") as tmp:
        for w in chosen:
            print(f"== {w.name}", file=sys.stderr)
            w.setup(args.quick, tmp)
            ref, ours, ref_rss, our_rss = [], [], [], []
            for _ in range(reps):
                t, r = w.reference()
                ref.append(t)
                ref_rss.append(r)
                t, r = w.cairn()
                ours.append(t)
                our_rss.append(r)
            ratio = statistics.median(ref) / statistics.median(ours)
            rows.append(
                {
                    "workload": w.name,
                    "reference": w.reference_name,
                    "reference_s": ref,
                    "cairn_s": ours,
                    "ratio": ratio,
                    "reference_peak_rss_mib": max(ref_rss),
                    "cairn_peak_rss_mib": max(our_rss),
                }
            )
            print(f"   {w.reference_name}: {fmt(ref)} s; cairn: {fmt(ours)} s; ratio {ratio:.2f}x", file=sys.stderr)

    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {THREADS} threads per side"
    lines = [
        f"Benchmark {stamp} on {machine}; {reps} interleaved repetitions; median (min-max) seconds; ratio = reference / cairn (> 1: cairn faster)",
        "",
        "| workload | reference | reference s | cairn s | ratio | peak RSS ref / cairn (MiB) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['workload']} | {r['reference']} | {fmt(r['reference_s'])} | {fmt(r['cairn_s'])} | "
            f"{r['ratio']:.2f}x | {r['reference_peak_rss_mib']:.0f} / {r['cairn_peak_rss_mib']:.0f} |"
        )
    table = "\n".join(lines)
    print(table)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    name = datetime.datetime.now().strftime("%Y%m%d-%H%M%S") + ("-quick" if args.quick else "")
    (out / f"{name}.md").write_text(table + "\n")
    (out / f"{name}.json").write_text(json.dumps({"date": stamp, "machine": machine, "reps": reps, "rows": rows}, indent=2))
    print(f"\nwritten: bench/results/{name}.md and .json", file=sys.stderr)


if __name__ == "__main__":
    main()
