"""The chapter's feature-based path in Python, as the fidelity reference for cairn.

Extracts the last hidden state of [CLS] for every emotion tweet with
sentence-transformers/all-MiniLM-L6-v2 (from the HF cache installed by scripts/setup.sh), writes
them to data/reference/emotion-minilm-cls-<split>.parquet (columns: text, label, hidden_state),
then fits the chapter's models on them and prints the figures ../shared/reference/README.md
quotes: logistic-regression and most-frequent validation accuracy / weighted F1, and the UMAP
trustworthiness (k=15, cosine) of the MinMax-scaled train features.

Run: scripts/reference/venv.sh full && HF_HUB_OFFLINE=1 .venv-ref-full/bin/python scripts/reference/features.py [--no-umap]
"""

import json
import pathlib
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from transformers import AutoModel, AutoTokenizer

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
LABELS = ["sadness", "joy", "love", "anger", "fear", "surprise"]
OUT = ROOT / "data" / "reference"


def read_split(name):
    texts, labels = [], []
    for line in (ROOT / "data" / "emotion" / f"{name}.txt").read_text(encoding="utf-8").splitlines():
        text, label = line.rsplit(";", 1)
        texts.append(text)
        labels.append(LABELS.index(label))
    return texts, np.array(labels)


@torch.inference_mode()
def cls_states(model, tok, texts, batch=64):
    order = sorted(range(len(texts)), key=lambda i: len(tok(texts[i])["input_ids"]))
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    for start in range(0, len(order), batch):
        idx = order[start : start + batch]
        enc = tok([texts[i] for i in idx], padding=True, truncation=True, return_tensors="pt")
        out[idx] = model(**enc).last_hidden_state[:, 0].numpy()
    return out


def main():
    torch.set_num_threads(2)
    tok = AutoTokenizer.from_pretrained(MODEL)
    model = AutoModel.from_pretrained(MODEL).eval()
    OUT.mkdir(parents=True, exist_ok=True)
    feats = {}
    for split in ["train", "validation", "test"]:
        texts, labels = read_split(split)
        t = time.time()
        x = cls_states(model, tok, texts)
        print(f"{split}: {len(texts)} rows in {time.time() - t:.1f}s", file=sys.stderr)
        feats[split] = (x, labels)
        table = pa.table(
            {
                "text": texts,
                "label": pa.array(labels, pa.int64()),
                "hidden_state": pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1), pa.float32()), x.shape[1]),
            }
        )
        pq.write_table(table, OUT / f"emotion-minilm-cls-{split}.parquet")

    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    (xt, yt), (xv, yv) = feats["train"], feats["validation"]
    lr = LogisticRegression(max_iter=3000).fit(xt, yt)
    pv = lr.predict(xv)
    dummy = DummyClassifier(strategy="most_frequent").fit(xt, yt)
    result = {
        "logreg_val_accuracy": accuracy_score(yv, pv),
        "logreg_val_f1_weighted": f1_score(yv, pv, average="weighted"),
        "logreg_n_iter": int(lr.n_iter_[0]),
        "most_frequent_val_accuracy": accuracy_score(yv, dummy.predict(xv)),
    }
    if "--no-umap" not in sys.argv:
        import umap
        from sklearn.manifold import trustworthiness
        from sklearn.preprocessing import MinMaxScaler

        xs = MinMaxScaler().fit_transform(xt)
        t = time.time()
        emb = umap.UMAP(n_components=2, metric="cosine").fit_transform(xs)
        result["umap_seconds"] = time.time() - t
        result["umap_trustworthiness_k15_cosine"] = trustworthiness(xs, emb, n_neighbors=15, metric="cosine")
        np.save(OUT / "emotion-umap-learn-train.npy", emb)
    print(json.dumps(result, indent=2))
    (OUT / "feature-path-reference.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
