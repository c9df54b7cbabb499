"""Checks that Python `transformers` loads a model directory written by cairn's `finetune`
stage and gives the predictions cairn wrote.

    cairn export pipelines/emotion.yaml finetune /tmp/ft
    .venv-ref-full/bin/python scripts/reference/check_finetuned.py /tmp/ft [--rows 500]

Sequence task: compares logits with the `logits` column of each predicted split.
Token task: compares per-token predicted ids with the `pred` column (words from `tokens`).
"""
import argparse
import json
import pathlib

import pyarrow.parquet as pq
import torch
from transformers import (AutoConfig, AutoModelForSequenceClassification,
                          AutoModelForTokenClassification, AutoTokenizer)

ap = argparse.ArgumentParser()
ap.add_argument("export_dir")
ap.add_argument("--rows", type=int, default=500)
args = ap.parse_args()
root = pathlib.Path(args.export_dir)
model_dir = root / "model"
config = AutoConfig.from_pretrained(model_dir)
token_task = config.architectures[0].endswith("ForTokenClassification")
cls = AutoModelForTokenClassification if token_task else AutoModelForSequenceClassification
model = cls.from_pretrained(model_dir).eval()
tok = AutoTokenizer.from_pretrained(model_dir)
torch.set_num_threads(2)

report = {"model": str(model_dir), "architecture": config.architectures[0], "splits": {}}
for path in sorted(root.glob("*.parquet")):
    table = pq.read_table(path).to_pydict()
    if "pred" not in table:
        continue
    n = min(args.rows, len(table["pred"]))
    agree, total, max_diff = 0, 0, 0.0
    with torch.inference_mode():
        for i in range(n):
            if token_task:
                enc = tok(table["tokens"][i], is_split_into_words=True, truncation=True, return_tensors="pt")
                pred = model(**enc).logits[0].argmax(-1).tolist()
                want = table["pred"][i]
                agree += sum(int(a == b) for a, b in zip(pred, want)) if len(pred) == len(want) else 0
                total += len(want)
            else:
                enc = tok(table["text"][i], truncation=True, return_tensors="pt")
                logits = model(**enc).logits[0]
                want = torch.tensor(table["logits"][i])
                max_diff = max(max_diff, (logits - want).abs().max().item())
                agree += int(logits.argmax().item() == table["pred"][i])
                total += 1
    report["splits"][path.stem] = {"rows": n, "agreement": agree / max(total, 1), "compared": total,
                                   **({} if token_task else {"max_abs_logit_diff": max_diff})}
print(json.dumps(report, indent=1))
