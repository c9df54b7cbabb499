"""Fixtures for tests/training_fidelity.rs: fifty optimizer steps of the Hugging Face Trainer on the
tiny random BERT of tests/fixtures/encoders/bert, for the sequence and the token task, with every
random difference between the two stacks removed: dropout 0, the fresh head's weights and each
epoch's batch order drawn from the seed as cairn draws them (cairn_draws.py). What
is left to differ is arithmetic, so cairn's per-step training loss must match the Trainer's
(the test allows 1e-3 relative) — a guard for every kernel change.

    scripts/reference/venv.sh full
    .venv-ref-full/bin/python scripts/reference/training_fixture.py

Writes tests/fixtures/training/{sequence,token}.json: the rows (token ids, labels), the recipe
and the Trainer's loss at each step.
"""
import json
import pathlib
import sys

import numpy as np
import torch
from datasets import Dataset
from transformers import (AutoModelForSequenceClassification, AutoModelForTokenClassification,
                          Trainer, TrainingArguments)

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODEL = ROOT / "tests/fixtures/encoders/bert"
OUT = ROOT / "tests/fixtures/training"
RECIPE = dict(seed=7, batch_size=8, learning_rate=5e-3, weight_decay=0.01, max_steps=50,
              max_grad_norm=1.0)
ROWS, LABELS, PAD = 64, 3, 0
torch.set_num_threads(2)
sys.path.insert(0, str(pathlib.Path(__file__).parent))
from cairn_draws import CairnOrder, init_fresh_as_cairn  # noqa: E402


class CairnOrderTrainer(Trainer):
    def _get_train_sampler(self, train_dataset=None):
        return CairnOrder(len(train_dataset or self.train_dataset), RECIPE["seed"])


def collate(rows):
    width = max(len(r["input_ids"]) for r in rows)
    ids = [r["input_ids"] + [PAD] * (width - len(r["input_ids"])) for r in rows]
    mask = [[1] * len(r["input_ids"]) + [0] * (width - len(r["input_ids"])) for r in rows]
    labels = [r["labels"] if isinstance(r["labels"], int)
              else r["labels"] + [-100] * (width - len(r["labels"])) for r in rows]
    return {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask),
            "labels": torch.tensor(labels)}


def rows(task, gen):
    """Sequences of 2–14 ids (101 = [CLS]-like first id kept out of the vocabulary's pad 0) with
    labels that depend on the ids, so the loss falls."""
    ids, labels = [], []
    for _ in range(ROWS):
        n = int(gen.integers(2, 15))
        seq = [int(v) for v in gen.integers(1, 100, size=n)]
        ids.append(seq)
        if task == "sequence":
            labels.append(sum(seq) % LABELS)
        else:
            # The first position is unscored, as a [CLS] is; the rest by id.
            labels.append([-100] + [v % LABELS for v in seq[1:]])
    return ids, labels


def fixture(task):
    gen = np.random.default_rng(11 if task == "sequence" else 12)
    ids, labels = rows(task, gen)
    auto = AutoModelForSequenceClassification if task == "sequence" else AutoModelForTokenClassification
    model, info = auto.from_pretrained(MODEL, num_labels=LABELS, hidden_dropout_prob=0.0,
                                       attention_probs_dropout_prob=0.0, classifier_dropout=0.0,
                                       output_loading_info=True)
    init_fresh_as_cairn(model, info["missing_keys"], RECIPE["seed"])
    args = TrainingArguments(
        output_dir="/tmp/cairn-training-fixture", max_steps=RECIPE["max_steps"],
        per_device_train_batch_size=RECIPE["batch_size"], learning_rate=RECIPE["learning_rate"],
        weight_decay=RECIPE["weight_decay"], max_grad_norm=RECIPE["max_grad_norm"],
        seed=RECIPE["seed"], logging_strategy="steps", logging_steps=1, save_strategy="no",
        report_to=[], disable_tqdm=True, use_cpu=True)
    data = Dataset.from_dict({"input_ids": ids, "labels": labels})
    trainer = CairnOrderTrainer(model=model, args=args, train_dataset=data, data_collator=collate)
    trainer.train()
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    assert len(losses) == RECIPE["max_steps"], len(losses)
    return {"task": task, "model": "tests/fixtures/encoders/bert", "num_labels": LABELS,
            "fresh": sorted(info["missing_keys"]), **RECIPE, "ids": ids, "labels": labels,
            "losses": losses}


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for task in ["sequence", "token"]:
        f = fixture(task)
        (OUT / f"{task}.json").write_text(json.dumps(f) + "\n")
        print(f"{task}: loss {f['losses'][0]:.4f} -> {f['losses'][-1]:.4f} over {len(f['losses'])} steps")
