"""Fidelity of one cell of pipelines/ner-crosslingual.yaml: the same fine-tune in Python
transformers, written as the NER chapter writes it (tokenize_and_align_labels, the Trainer with
DataCollatorForTokenClassification, seqeval), on the same model directory, the same sampled
sentences and the same hyperparameters, scored on the same test sentences. Prints the entity F1
(and, given --cairn-f1, the difference; exit 1 beyond --tolerance points).

    scripts/reference/venv.sh full
    scripts/reference/seed_study.sh     # seeds 42-51 in both stacks, then the comparison

or one run: `cairn export pipelines/ner-crosslingual.yaml panx-de /tmp/panx-de`, then
    .venv-ref-full/bin/python scripts/reference/ner_finetune_cell.py /tmp/panx-de --seed 42

The training data of a cell `f1-<train>-<eval>` is `panx-<train>` (its `train` and `validation`
splits); its test data `panx-<eval>`'s `test` split (pass --test-dir for another language).
The defaults are the pipeline's recipe. With 126 optimizer steps the seed alone moves one run's
F1 by several points, so compare means over the same seeds (scripts/reference/README.md).
"""
import argparse
import json
import pathlib
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import torch
from seqeval.metrics import f1_score
from transformers import (AutoModelForTokenClassification, AutoTokenizer,
                          DataCollatorForTokenClassification, Trainer, TrainingArguments,
                          set_seed)
from datasets import Dataset

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from cairn_draws import CairnOrder, init_fresh_as_cairn  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("train_dir", help="`cairn export` of the cell's sample stage (panx-<lang>)")
ap.add_argument("--test-dir", help="`cairn export` of the evaluation language (default: train_dir)")
ap.add_argument("--model", default="models/multilingual-e5-small-q4dq")
ap.add_argument("--epochs", type=int, default=3)
ap.add_argument("--batch-size", type=int, default=24)
ap.add_argument("--learning-rate", type=float, default=2e-4)
ap.add_argument("--weight-decay", type=float, default=0.01)
ap.add_argument("--seed", type=int, default=42)
ap.add_argument("--dropout", type=float,
                help="override every dropout probability, as finetune's `dropout` param does")
ap.add_argument("--cairn-draws", action="store_true",
                help="draw the head's initial weights and the batch order from --seed as cairn "
                     "does (SplitMix64), so that with --dropout 0 both stacks train the same "
                     "weights on the same batches and every difference is arithmetic")
ap.add_argument("--max-steps", type=int, default=-1)
ap.add_argument("--trained", help="skip training: score this checkpoint (a run's output_dir/"
                                  "checkpoint-N) on the test split")
ap.add_argument("--logging-steps", type=int, help="log the training loss every N steps")
ap.add_argument("--cairn-f1", type=float, help="cairn's test entity F1 of the same cell")
ap.add_argument("--tolerance", type=float, default=1.5, help="in F1 points")
ap.add_argument("--out", help="write the result as JSON here")
args = ap.parse_args()
torch.set_num_threads(2)


def read_split(directory, split):
    table = pq.read_table(pathlib.Path(directory) / f"{split}.parquet")
    names = json.loads(table.schema.metadata[b"cairn.labels"])
    return Dataset.from_dict(table.select(["tokens", "ner_tags"]).to_pydict()), names


train, tags = read_split(args.train_dir, "train")
validation, _ = read_split(args.train_dir, "validation")
test, test_tags = read_split(args.test_dir or args.train_dir, "test")
assert tags == test_tags, f"label names differ: {tags} vs {test_tags}"
index2tag = dict(enumerate(tags))
tokenizer = AutoTokenizer.from_pretrained(args.model)


def tokenize_and_align_labels(examples):
    # The chapter's function: the first sub-word of each word gets its tag, the rest -100.
    tokenized = tokenizer(examples["tokens"], truncation=True, is_split_into_words=True)
    labels = []
    for idx, label in enumerate(examples["ner_tags"]):
        word_ids = tokenized.word_ids(batch_index=idx)
        previous, label_ids = None, []
        for word_idx in word_ids:
            if word_idx is None or word_idx == previous:
                label_ids.append(-100)
            else:
                label_ids.append(label[word_idx])
            previous = word_idx
        labels.append(label_ids)
    tokenized["labels"] = labels
    return tokenized


def encode(ds):
    return ds.map(tokenize_and_align_labels, batched=True, remove_columns=["tokens", "ner_tags"])


def align_predictions(predictions, label_ids):
    preds = np.argmax(predictions, axis=2)
    truth, pred = [], []
    for p_row, l_row in zip(preds, label_ids):
        truth.append([index2tag[l] for l in l_row if l != -100])
        pred.append([index2tag[p] for p, l in zip(p_row, l_row) if l != -100])
    return pred, truth


def compute_metrics(eval_pred):
    pred, truth = align_predictions(eval_pred.predictions, eval_pred.label_ids)
    return {"f1": f1_score(truth, pred)}


class CairnOrderTrainer(Trainer):
    def _get_train_sampler(self, train_dataset=None):
        return CairnOrder(len(train_dataset or self.train_dataset), args.seed)


dropout = {} if args.dropout is None else dict(
    hidden_dropout_prob=args.dropout, attention_probs_dropout_prob=args.dropout,
    classifier_dropout=args.dropout)
# The chapter builds the model in the Trainer's `model_init`, after the Trainer has seeded torch:
# seed here too, so the head's initial weights depend on --seed.
set_seed(args.seed)
model, loading = AutoModelForTokenClassification.from_pretrained(
    args.trained or args.model, num_labels=len(tags), id2label=index2tag,
    label2id={t: i for i, t in enumerate(tags)}, output_loading_info=True, **dropout)
if args.cairn_draws and not args.trained:
    init_fresh_as_cairn(model, loading["missing_keys"], args.seed)
training_args = TrainingArguments(
    output_dir="/tmp/ner-finetune-cell", num_train_epochs=args.epochs,
    per_device_train_batch_size=args.batch_size, per_device_eval_batch_size=args.batch_size,
    learning_rate=args.learning_rate, weight_decay=args.weight_decay, seed=args.seed,
    eval_strategy="epoch", save_strategy="epoch", load_best_model_at_end=True,
    metric_for_best_model="f1", save_total_limit=1,
    report_to=[], disable_tqdm=True, use_cpu=True, max_steps=args.max_steps,
    **(dict(logging_strategy="epoch") if args.logging_steps is None
       else dict(logging_strategy="steps", logging_steps=args.logging_steps)))
trainer = (CairnOrderTrainer if args.cairn_draws else Trainer)(
    model=model, args=training_args, data_collator=DataCollatorForTokenClassification(tokenizer),
    compute_metrics=compute_metrics, train_dataset=encode(train), eval_dataset=encode(validation),
    processing_class=tokenizer)
start = time.perf_counter()
if not args.trained:
    trainer.train()
for entry in trainer.state.log_history:
    if "loss" in entry and args.logging_steps:
        print(f"step {entry['step']} loss {entry['loss']:.6f} grad_norm {entry['grad_norm']:.6f}"
              f" lr {entry['learning_rate']:.6e}")
seconds = time.perf_counter() - start
output = trainer.predict(encode(test))
pred, truth = align_predictions(output.predictions, output.label_ids)
f1 = f1_score(truth, pred)
result = {"python_test_entity_f1": f1, "train_seconds": round(seconds, 1),
          "train_rows": len(train), "test_rows": len(test)}
print(f"python transformers: test entity F1 {f1:.4f} (training {seconds:.0f} s)")
if args.cairn_f1 is not None:
    delta = 100 * (args.cairn_f1 - f1)
    result.update(cairn_test_entity_f1=args.cairn_f1, delta_points=round(delta, 2))
    print(f"cairn:               test entity F1 {args.cairn_f1:.4f} ({delta:+.2f} points)")
if args.out:
    pathlib.Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
if args.cairn_f1 is not None and abs(delta) > args.tolerance:
    print(f"FAIL: more than {args.tolerance} points apart")
    raise SystemExit(1)
