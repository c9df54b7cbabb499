#!/usr/bin/env python3
"""The PyTorch side of the extract-hidden benchmark: rows/s of the last hidden state of [CLS].

Two ways, on the first N emotion tweets (train, then validation and test; default 2000), same model and tokenizer as cairn:
  peer     the careful PyTorch peer: sort by length, batches of 64 with per-batch padding,
           torch.inference_mode(), results back in the original order
  chapter  the chapter's way: pad everything to the longest tweet, batches of 1000 (--chapter)

Tokenization is done before the clock starts (cairn's tokenize is a separate stage); the clock
covers padding, the forward passes and pooling. Threads: torch.set_num_threads(--threads).

Usage:
  HF_HUB_OFFLINE=1 .venv-ref-full/bin/python bench/python/extract_hidden.py \
      [--rows 2000] [--threads 2] [--batch 64] [--repeat 3] [--chapter]
Prints one line per repeat and the best, e.g. `peer: 2000 rows in 4.33 s = 462 rows/s`.
"""

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch  # noqa: E402
from transformers import AutoModel, AutoTokenizer  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def tweets(n):
    """The first n tweets of train, then validation, then test (20,000 in all)."""
    out = []
    for split in ["train", "validation", "test"]:
        with open(ROOT / "data" / "emotion" / f"{split}.txt", encoding="utf-8") as f:
            for line in f:
                out.append(line.rstrip("\n").rsplit(";", 1)[0])
                if len(out) == n:
                    return out
    return out


def peer(model, enc, batch, pad_id):
    ids = enc["input_ids"]
    types = enc["token_type_ids"]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out = torch.empty((len(ids), model.config.hidden_size))
    with torch.inference_mode():
        for s in range(0, len(order), batch):
            idx = order[s : s + batch]
            t = max(len(ids[i]) for i in idx)
            x = torch.full((len(idx), t), pad_id, dtype=torch.long)
            m = torch.zeros((len(idx), t), dtype=torch.long)
            tt = torch.zeros((len(idx), t), dtype=torch.long)
            for r, i in enumerate(idx):
                n = len(ids[i])
                x[r, :n] = torch.tensor(ids[i])
                m[r, :n] = 1
                tt[r, :n] = torch.tensor(types[i])
            h = model(input_ids=x, attention_mask=m, token_type_ids=tt).last_hidden_state
            out[idx] = h[:, 0]
    return out


def chapter(model, tok, texts, batch=1000):
    enc = tok(texts, truncation=True, padding=True, return_tensors="pt")
    outs = []
    with torch.no_grad():
        for s in range(0, len(texts), batch):
            part = {k: v[s : s + batch] for k, v in enc.items()}
            outs.append(model(**part).last_hidden_state[:, 0])
    return torch.cat(outs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--chapter", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    texts = tweets(a.rows)
    tok = AutoTokenizer.from_pretrained(MODEL)
    model = AutoModel.from_pretrained(MODEL).eval()
    enc = tok(texts, truncation=True)
    name = "chapter" if a.chapter else "peer"
    best = 0.0
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        if a.chapter:
            chapter(model, tok, texts)
        else:
            peer(model, enc, a.batch, tok.pad_token_id)
        dt = time.perf_counter() - t0
        rate = len(texts) / dt
        best = max(best, rate)
        print(f"{name}: {len(texts)} rows in {dt:.2f} s = {rate:.0f} rows/s", flush=True)
    print(f"{name} best: {best:.0f} rows/s ({a.threads} threads, torch {torch.__version__})")
    print(f"seconds={len(texts) / best:.3f}")


if __name__ == "__main__":
    main()
