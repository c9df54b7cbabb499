#!/usr/bin/env python3
"""Reference last hidden states from Python `transformers`, as fixtures for the Rust encoders.

Writes, under tests/fixtures/encoders/:
  <family>/config.json, <family>/model.safetensors   a tiny randomly initialised model
                                                      (bert, distilbert, xlm_roberta), seed fixed
  <family>/expected.safetensors                       input_ids, attention_mask, token_type_ids
                                                      (int64, [B, T], padded with the model's pad
                                                      id) and hidden ([B, T, H] float32, the
                                                      model's last_hidden_state)
  minilm-emotion.safetensors                          sentence-transformers/all-MiniLM-L6-v2 on the
                                                      first 32 emotion train tweets, tokenized with
                                                      the model's tokenizer (truncation=True) and
                                                      padded in ONE batch: input_ids,
                                                      attention_mask, token_type_ids, cls [32, H]
                                                      (position 0), mean [32, H] (mask-aware mean),
                                                      hidden4 [4, T, H] (full sequences, rows 0-3)

The tiny models get every parameter drawn from N(0, 0.2) (LayerNorm weights from N(1, 0.2)) so
that a wrong name, mask or activation shows in the outputs; the stock init (std 0.02, LayerNorm
weight 1 / bias 0) would hide a gamma/beta swap.

Usage (needs torch + transformers; the Rust tests do not):
  scripts/setup.sh
  HF_HUB_OFFLINE=1 /work/main/.venv-ref-full/bin/python scripts/reference/encoder_fixtures.py
"""

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import (  # noqa: E402
    AutoModel,
    AutoTokenizer,
    BertConfig,
    BertModel,
    DistilBertConfig,
    DistilBertModel,
    XLMRobertaConfig,
    XLMRobertaModel,
)

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "encoders"
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
SEED = 1234
VOCAB = 100
N_TWEETS = 32


def randomize(model: torch.nn.Module, gen: torch.Generator) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen) * 0.2
            if "LayerNorm.weight" in name or "layer_norm.weight" in name:
                p.copy_(1.0 + noise)
            else:
                p.copy_(noise)


def tiny_models():
    common = dict(vocab_size=VOCAB, max_position_embeddings=64)
    yield "bert", BertModel(
        BertConfig(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            type_vocab_size=2,
            pad_token_id=0,
            **common,
        ),
        add_pooling_layer=False,
    ), 0
    yield "distilbert", DistilBertModel(
        DistilBertConfig(dim=32, n_layers=2, n_heads=4, hidden_dim=64, pad_token_id=0, **common)
    ), 0
    yield "xlm_roberta", XLMRobertaModel(
        XLMRobertaConfig(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            type_vocab_size=1,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
            **common,
        ),
        add_pooling_layer=False,
    ), 1


def padded_batch(gen: torch.Generator, pad_id: int, lengths, with_types: bool):
    t = max(lengths)
    ids = torch.full((len(lengths), t), pad_id, dtype=torch.int64)
    mask = torch.zeros((len(lengths), t), dtype=torch.int64)
    types = torch.zeros((len(lengths), t), dtype=torch.int64)
    for i, n in enumerate(lengths):
        ids[i, :n] = torch.randint(3, VOCAB, (n,), generator=gen)
        mask[i, :n] = 1
        if with_types:
            types[i, n // 2 : n] = 1  # a second segment, as a sentence pair has
    return ids, mask, types


def tiny(gen: torch.Generator) -> None:
    for name, model, pad_id in tiny_models():
        randomize(model, gen)
        model.eval()
        d = OUT / name
        d.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(d, safe_serialization=True)
        with_types = name == "bert"
        ids, mask, types = padded_batch(gen, pad_id, [11, 6, 2, 9], with_types)
        kwargs = dict(input_ids=ids, attention_mask=mask)
        if with_types:
            kwargs["token_type_ids"] = types
        with torch.inference_mode():
            hidden = model(**kwargs).last_hidden_state.float().contiguous()
        save_file(
            {
                "input_ids": ids,
                "attention_mask": mask,
                "token_type_ids": types,
                "hidden": hidden,
            },
            d / "expected.safetensors",
        )
        sizes = {p.name: p.stat().st_size for p in d.iterdir()}
        print(f"{name}: hidden {tuple(hidden.shape)}, files {sizes}")


def minilm() -> None:
    texts = []
    with open(ROOT / "data" / "emotion" / "train.txt", encoding="utf-8") as f:
        for line in f:
            texts.append(line.rstrip("\n").rsplit(";", 1)[0])
            if len(texts) == N_TWEETS:
                break
    tok = AutoTokenizer.from_pretrained(MODEL)
    model = AutoModel.from_pretrained(MODEL).eval()
    enc = tok(texts, truncation=True, padding=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**enc).last_hidden_state.float()
    m = enc["attention_mask"].unsqueeze(-1).float()
    mean = (hidden * m).sum(1) / m.sum(1)
    lengths = enc["attention_mask"].sum(1)
    print(f"minilm: batch {tuple(hidden.shape)}, lengths of rows 0-3 {lengths[:4].tolist()}")
    save_file(
        {
            "input_ids": enc["input_ids"].contiguous(),
            "attention_mask": enc["attention_mask"].contiguous(),
            "token_type_ids": enc["token_type_ids"].contiguous(),
            "cls": hidden[:, 0].contiguous(),
            "mean": mean.contiguous(),
            "hidden4": hidden[:4].contiguous(),
        },
        OUT / "minilm-emotion.safetensors",
        metadata={"model": MODEL, "transformers": transformers.__version__, "torch": torch.__version__},
    )


def main() -> None:
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    OUT.mkdir(parents=True, exist_ok=True)
    tiny(gen)
    minilm()


if __name__ == "__main__":
    main()
