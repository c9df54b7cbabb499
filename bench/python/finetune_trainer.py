#!/usr/bin/env python3
"""The HF side of the fine-tune benchmark: train samples/s of `Trainer` on the emotion corpus.

`AutoModelForSequenceClassification` on all-MiniLM-L6-v2 (6 labels), the reference recipe
(lr 1e-4, batch 64, weight decay 0.01, linear decay, seed 42), `max_steps` optimizer steps, no
evaluation or saving. Two ways:
  chapter   the chapter's way: the whole corpus padded to its longest tweet (87 tokens)
  dynamic   a careful peer: dynamic padding (DataCollatorWithPadding) + group_by_length

Tokenization happens before the clock; the clock is the Trainer's own `train_runtime`.
Prints `samples_per_second=` and `seconds=` (the train runtime).

Usage: HF_HUB_OFFLINE=1 .venv-ref-full/bin/python bench/python/finetune_trainer.py \
    [--steps 50] [--threads 2] [--dynamic]
"""

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import (AutoModelForSequenceClassification, AutoTokenizer,  # noqa: E402
                          DataCollatorWithPadding, Trainer, TrainingArguments)

ROOT = Path(__file__).resolve().parents[2]
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
LABELS = ["sadness", "joy", "love", "anger", "fear", "surprise"]


def load():
    texts, labels = [], []
    with open(ROOT / "data" / "emotion" / "train.txt", encoding="utf-8") as f:
        for line in f:
            t, l = line.rstrip("\n").rsplit(";", 1)
            texts.append(t)
            labels.append(LABELS.index(l))
    return Dataset.from_dict({"text": texts, "label": labels})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dynamic", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tok = AutoTokenizer.from_pretrained(MODEL)
    ds = load()
    if args.dynamic:
        ds = ds.map(lambda b: tok(b["text"], truncation=True), batched=True)
        collator = DataCollatorWithPadding(tok)
    else:
        ds = ds.map(lambda b: tok(b["text"], padding=True, truncation=True), batched=True, batch_size=None)
        collator = None
    ds = ds.remove_columns(["text"])
    model = AutoModelForSequenceClassification.from_pretrained(MODEL, num_labels=len(LABELS))
    with tempfile.TemporaryDirectory() as out:
        targs = TrainingArguments(
            output_dir=out, max_steps=args.steps, per_device_train_batch_size=64,
            learning_rate=1e-4, weight_decay=0.01, seed=42, report_to=[], save_strategy="no",
            eval_strategy="no", logging_strategy="no", disable_tqdm=True,
            train_sampling_strategy="group_by_length" if args.dynamic else "random",
            dataloader_num_workers=0, use_cpu=True,
        )
        trainer = Trainer(model=model, args=targs, train_dataset=ds, data_collator=collator)
        result = trainer.train()
    m = result.metrics
    print(f"samples_per_second={m['train_samples_per_second']:.3f}")
    print(f"seconds={m['train_runtime']:.3f}")


if __name__ == "__main__":
    main()
