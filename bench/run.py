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

    def extra(self):
        """More facts for the JSON (and the FLOP/s summary)."""
        return {}


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


MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# MiniLM per token: 6 layers × (QKV + output 8h² + FFN 16h²) with h = 384, attention excluded.
FLOP_PER_TOKEN = 6 * 24 * 384 * 384
SPLITS = {"train": "data/emotion/train.txt", "validation": "data/emotion/validation.txt",
          "test": "data/emotion/test.txt"}


def cairn_in(d, *args):
    """cairn with its cache in d/cache (the bench pipelines' root is the repo: keep its cache/
    and manifests out of it)."""
    return [CAIRN, "--cache-dir", pathlib.Path(d) / "cache", *args]


def emotion_pipeline(tmp, name, rows, extra_stages):
    """A pipeline over the first `rows` emotion tweets (train, then validation and test, as the
    Python scripts read them): load → tokenize → hidden (+ `extra_stages`), in its own cache."""
    import yaml

    splits, limit, left = {}, {}, rows
    for split, path in SPLITS.items():
        if left <= 0:
            break
        splits[split] = path
        n = sum(1 for _ in open(ROOT / path, encoding="utf-8"))
        if left < n:
            limit[split] = left
        left -= n
    load = {"kind": "load", "format": "delimited", "delimiter": ";", "columns": ["text", "label"],
            "labels": ["sadness", "joy", "love", "anger", "fear", "surprise"], "splits": splits}
    if limit:
        load["limit"] = limit
    stages = {
        "load": load,
        "tokenize": {"kind": "tokenize", "inputs": ["load"], "tokenizer": MODEL},
        "hidden": {"kind": "extract-hidden", "inputs": ["tokenize"], "model": MODEL, "batch-size": 64},
        **extra_stages,
    }
    d = pathlib.Path(tmp) / name
    d.mkdir(exist_ok=True)
    f = d / "pipeline.yaml"
    f.write_text(yaml.safe_dump({"name": name, "root": str(ROOT), "stages": stages}, sort_keys=False))
    return d, f


class Emotion:
    """One shared emotion pipeline (features computed once) whose stages the workloads time."""

    _made = {}

    @classmethod
    def get(cls, tmp, rows, steps):
        key = (rows, steps)
        if key not in cls._made:
            extra = {
                "scale": {"kind": "scale", "inputs": ["hidden"], "method": "min-max"},
                "umap": {"kind": "project", "inputs": ["scale"], "method": "umap", "metric": "cosine",
                         "n-neighbors": 15, "min-dist": 0.1, "splits": ["train"],
                         "trustworthiness": False},
                "logreg": {"kind": "classify", "inputs": ["hidden"], "method": "logistic-regression",
                           "C": 1.0, "max-iter": 3000},
                "finetune": {"kind": "finetune", "inputs": ["tokenize"], "model": MODEL, "epochs": 1,
                             "batch-size": 64, "learning-rate": 1.0e-4, "weight-decay": 0.01,
                             "seed": 42, "max-steps": steps, "predict-splits": [],
                             "eval-split": "validation" if rows > 16000 else "train"},
            }
            d, f = emotion_pipeline(tmp, f"bench-emotion-{rows}", rows, extra)
            run(cairn_in(d, "run", f, "--target", "hidden"), cwd=ROOT)
            out = d / "export"
            run(cairn_in(d, "export", f, "hidden", out), cwd=ROOT)
            cls._made[key] = (d, f, out)
        return cls._made[key]


def cpu_model():
    """The CPU's model name from /proc/cpuinfo (Linux), else the platform's word for it."""
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def instruction_sets():
    """The vector instruction sets that decide kernel speed: AVX2, FMA, AVX-512 (F), AVX-VNNI."""
    try:
        flags = next(line for line in open("/proc/cpuinfo", encoding="utf-8")
                     if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return "flags unknown"
    names = {"avx2": "AVX2", "fma": "FMA", "avx512f": "AVX-512", "avx_vnni": "AVX-VNNI",
             "avx512_vnni": "AVX-512 VNNI"}
    found = [label for flag, label in names.items() if flag in flags]
    return " + ".join(found) if found else "no AVX2"


def stage_metrics(manifest, stage):
    import yaml

    return yaml.safe_load(pathlib.Path(manifest).read_text())["stages"][stage].get("metrics", {})


def stage_facts(manifest, stage):
    """The run record's facts of a stage (timing lives there, never in its metrics)."""
    import yaml

    return yaml.safe_load(pathlib.Path(manifest).read_text())["stages"][stage].get("run-facts", {})


class CairnStage(Workload):
    """Times one stage of the shared emotion pipeline (`--force` it; the manifest's wall time)."""

    stage = ""

    def setup(self, quick, tmp):
        self.rows = 2000 if quick else 20000
        self.steps = 10 if quick else 50
        self.dir, self.file, self.export = Emotion.get(tmp, self.rows, self.steps)

    def manifest(self):
        return self.dir / "cache" / "manifests" / f"{self.file.parent.name}.yaml"

    def cairn(self):
        _, rss, _ = run_measured(cairn_in(self.dir, "run", self.file, "--target", self.stage, "--force", self.stage), cwd=ROOT)
        return stage_seconds(self.manifest(), self.stage), rss


class ExtractHidden(CairnStage):
    stage = "hidden"

    def __init__(self, chapter):
        self.chapter = chapter
        self.name = "extract-hidden, " + ("chapter's way" if chapter else "careful peer")
        self.reference_name = ("torch: pad all to the longest, batch 1000" if chapter
                               else "torch: sorted, batch 64, inference_mode")

    def setup(self, quick, tmp):
        super().setup(quick, tmp)
        if self.chapter:
            # The chapter's way is ~7x slower: a smaller slice keeps the run in bounds.
            self.rows = 500 if quick else 2000
            d, f = emotion_pipeline(tmp, f"bench-chapter-{self.rows}", self.rows, {})
            run(cairn_in(d, "run", f), cwd=ROOT)
            self.dir, self.file = d, f
        self.name += f", {self.rows} tweets"

    def extra(self):
        m = stage_metrics(self.manifest(), "tokenize")
        return {"tokens": sum(v for k, v in m.items() if k.startswith("tokens."))}

    def reference(self):
        args = ["--rows", str(self.rows), "--repeat", "1"] + (["--chapter"] if self.chapter else [])
        wall, rss, out = run_measured([PY, ROOT / "bench/python/extract_hidden.py", *args], cwd=ROOT)
        return seconds_from(out, wall), rss


class Umap(CairnStage):
    name = "UMAP"
    stage = "umap"
    reference_name = "umap-learn (cosine, 15 neighbours)"

    def setup(self, quick, tmp):
        super().setup(quick, tmp)
        run(cairn_in(self.dir, "run", self.file, "--target", "umap"), cwd=ROOT)
        self.name = f"UMAP {'2k' if quick else '16k'}×384 train features → 2-D"

    def reference(self):
        wall, rss, out = run_measured([PY, ROOT / "bench/python/umap_fit.py", self.export / "train.parquet"], cwd=ROOT)
        return seconds_from(out, wall), rss


class LogReg(CairnStage):
    name = "logistic regression on [CLS] features"
    stage = "logreg"
    reference_name = "scikit-learn LogisticRegression(lbfgs)"

    def setup(self, quick, tmp):
        super().setup(quick, tmp)
        self.name = "logistic regression on [CLS] features"
        # classify.py reads <prefix>-<split>.parquet (--quick has train only: it scores on it).
        for split in ["train", "validation"]:
            src = self.export / f"{split}.parquet"
            if not src.exists():
                src = self.export / "train.parquet"
            dst = self.export / f"features-{split}.parquet"
            if not dst.exists():
                dst.symlink_to(src)

    def reference(self):
        wall, rss, out = run_measured([PY, ROOT / "bench/python/classify.py", "--features", self.export / "features"], cwd=ROOT)
        return seconds_from(out, wall), rss


class Finetune(CairnStage):
    """Train time of a fixed number of optimizer steps (batch 64); samples/s = steps·64 / s."""

    name = "fine-tune steps × 64 (train time)"
    stage = "finetune"
    reference_name = "HF Trainer, padded to the longest (the chapter)"

    def __init__(self, dynamic=False):
        self.dynamic = dynamic
        if dynamic:
            self.reference_name = "HF Trainer, dynamic padding + group_by_length"

    def setup(self, quick, tmp):
        super().setup(quick, tmp)
        self.name = f"fine-tune {self.steps} steps × 64 (train time)"

    def reference(self):
        args = ["--steps", str(self.steps)] + (["--dynamic"] if self.dynamic else [])
        wall, rss, out = run_measured([PY, ROOT / "bench/python/finetune_trainer.py", *args], cwd=ROOT)
        return seconds_from(out, wall), rss

    def cairn(self):
        _, rss, _ = run_measured(cairn_in(self.dir, "run", self.file, "--target", self.stage, "--force", self.stage), cwd=ROOT)
        sps = stage_facts(self.manifest(), self.stage)["train_samples_per_second"]
        return self.steps * 64 / sps, rss


class MatmulPeak(Workload):
    name = "f32 matmul 4096³ (FLOP/s ceiling)"
    reference_name = "torch"

    def setup(self, quick, tmp):
        self.n = 2048 if quick else 4096
        self.name = f"f32 matmul {self.n}³ (FLOP/s ceiling)"
        self.example = ROOT / "target" / "release" / "examples" / "matmul_peak"

    def reference(self):
        wall, rss, out = run_measured([PY, ROOT / "bench/python/matmul_peak.py", "--n", str(self.n)], cwd=ROOT)
        return seconds_from(out, wall), rss

    def extra(self):
        return {"n": self.n}

    def cairn(self):
        wall, rss, out = run_measured([self.example, str(self.n)], cwd=ROOT)
        return seconds_from(out, wall), rss


def all_workloads():
    return [
        Tokenize(),
        ExtractHidden(chapter=False),
        ExtractHidden(chapter=True),
        Umap(),
        LogReg(),
        Finetune(),
        Finetune(dynamic=True),
        MatmulPeak(),
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
            w.setup(args.quick, tmp)
            print(f"== {w.name}", file=sys.stderr)
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
                    **w.extra(),
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
    machine = f"{cpu_model()} ({platform.machine()}; {instruction_sets()}), {os.cpu_count()} cores, {THREADS} threads per side"
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
    # The encoder's achieved FLOP/s in extract-hidden as a fraction of the matmul ceiling.
    peer = next((r for r in rows if r["workload"].startswith("extract-hidden, careful")), None)
    peak = next((r for r in rows if r["workload"].startswith("f32 matmul")), None)
    if peer and peak and "tokens" in peer and "n" in peak:
        flops = peer["tokens"] * FLOP_PER_TOKEN
        ours = flops / statistics.median(peer["cairn_s"]) / 1e9
        theirs = flops / statistics.median(peer["reference_s"]) / 1e9
        ceil_c = 2 * peak["n"] ** 3 / statistics.median(peak["cairn_s"]) / 1e9
        ceil_t = 2 * peak["n"] ** 3 / statistics.median(peak["reference_s"]) / 1e9
        lines += [
            "",
            f"Encoder FLOP/s in extract-hidden ({peer['tokens']} real tokens × {FLOP_PER_TOKEN / 1e6:.1f} MFLOP): "
            f"cairn {ours:.1f} GFLOP/s = {ours / ceil_c:.0%} of candle's matmul ceiling ({ceil_c:.1f} GFLOP/s); "
            f"torch peer {theirs:.1f} GFLOP/s = {theirs / ceil_t:.0%} of torch's ({ceil_t:.1f} GFLOP/s).",
        ]
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
