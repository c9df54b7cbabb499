#!/usr/bin/env python3
"""Reference token ids from the Python `transformers` fast tokenizer, as a compact fixture.

Writes tests/fixtures/tokenizer/reference.json so that the Rust tests can check, without Python,
that cairn's tokenizer produces exactly the ids of
    AutoTokenizer.from_pretrained("sentence-transformers/all-MiniLM-L6-v2")
on every emotion tweet and every WikiANN en/de sentence.

Inputs (run scripts/setup.sh first; it installs both):
  data/emotion/{train,validation,test}.txt   one `text;label` per line, split on the LAST ';'
  data/wikiann/{en,de}/{train,dev,test}      one `<lang>:<token>\t<tag>` per line, blank line
                                             ends a sentence; the word is everything after the
                                             FIRST ':' (the `en:`/`de:` prefix is dropped)
  the model snapshot in the hub cache, loaded offline (HF_HUB_OFFLINE=1)

Calls, exactly:
  emotion:  tokenizer(texts, truncation=True)
  wikiann:  tokenizer(list_of_word_lists, is_split_into_words=True, truncation=True)
            and enc.word_ids(i) per sentence
  (add_special_tokens default True; max length = model_max_length 512 from tokenizer_config.json;
  no padding. transformers ignores the padding/truncation stored in tokenizer.json.)

DIGEST ENCODING (reproduce this on the Rust side):
  ids_sha256 = lowercase hex sha256 of the UTF-8 bytes of the concatenation, over the examples
  of the split in file order, of  ",".join(str(id) for id in ids) + "\n".
  E.g. an example with ids [101, 2023, 102] contributes the bytes b"101,2023,102\n"
  (an example with no ids would contribute b"\n"; none has, [CLS]/[SEP] are always there).
  word_ids_sha256 (wikiann only) uses the same encoding over word_ids(), with None written as -1,
  e.g. [None, 0, 0, 1, None] -> b"-1,0,0,1,-1\n".

Usage: .venv-ref/bin/python scripts/reference/tokenizer_ids.py   (see scripts/reference/README.md)
"""

import hashlib
import json
import os
import sys
import time
import unicodedata
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import tokenizers  # noqa: E402
import transformers  # noqa: E402
from huggingface_hub import try_to_load_from_cache  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
OUT = ROOT / "tests" / "fixtures" / "tokenizer" / "reference.json"
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
N_FIRST = 5
N_HARD = 5

DIGEST_ENCODING = (
    "ids_sha256 = lowercase hex sha256 over the concatenation, for each example of the split in "
    "file order, of its ids as decimal numbers joined by ',' followed by '\\n' (ids [101,2023,102] "
    "contribute the bytes \"101,2023,102\\n\"); word_ids_sha256 is the same over word_ids() with "
    "None written as -1 (\"-1,0,0,1,-1\\n\"). Ids are those of tokenizer(texts, truncation=True) for "
    "emotion (text = line up to the LAST ';') and tokenizer(words, is_split_into_words=True, "
    "truncation=True) for wikiann (word = token column after the FIRST ':'), with special tokens, "
    "no padding, max length 512."
)


def digest(rows):
    h = hashlib.sha256()
    for row in rows:
        h.update((",".join("-1" if v is None else str(v) for v in row) + "\n").encode())
    return h.hexdigest()


def read_emotion(path):
    texts, labels = [], []
    with open(path, encoding="utf-8", newline="\n") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if not line:
                continue
            text, label = line.rsplit(";", 1)
            texts.append(text)
            labels.append(label)
    return texts, labels


def read_wikiann(path):
    sents, tags, words, wtags = [], [], [], []
    with open(path, encoding="utf-8", newline="\n") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if not line:
                if words:
                    sents.append(words)
                    tags.append(wtags)
                    words, wtags = [], []
                continue
            token, tag = line.rsplit("\t", 1)
            words.append(token.split(":", 1)[1])
            wtags.append(tag)
    if words:
        sents.append(words)
        tags.append(wtags)
    return sents, tags


def unusual_chars(s):
    """Characters outside printable ASCII: accents, CJK, controls, odd spaces, ..."""
    return sum(1 for c in s if not (" " <= c <= "~"))


def odd_chars(s):
    """Controls, format chars (zero-width), non-' ' separators, CJK and other ideographs."""
    n = 0
    for c in s:
        cat = unicodedata.category(c)
        if (cat[0] in "CZ" and c != " ") or "CJK" in unicodedata.name(c, "") or "HIRAGANA" in unicodedata.name(c, ""):
            n += 1
    return n


def empty_words(words, word_ids, n_ids, max_len=512):
    """(words that yield no token, words dropped by truncation) for one sentence."""
    seen = {w for w in word_ids if w is not None}
    if n_ids >= max_len:  # truncated: words after the last one with tokens were cut off
        last = max(seen)
        return sum(1 for j in range(last) if j not in seen), len(words) - 1 - last
    return len(words) - len(seen), 0


def pick_hard(ids, texts, word_ids=None, words=None, unk_id=100):
    """Up to N_HARD 'hard' examples, each with the reasons it was picked."""
    n = len(ids)
    candidates = [
        ("longest", lambda i: len(ids[i])),
        ("most_non_ascii_chars", lambda i: unusual_chars(texts[i])),
        ("most_unk", lambda i: sum(1 for t in ids[i] if t == unk_id)),
        ("most_odd_chars", lambda i: odd_chars(texts[i])),
        ("most_subwords_per_word" if words else "most_tokens_per_char",
         (lambda i: (len(ids[i]) - 2) / max(1, len(words[i]))) if words
         else (lambda i: (len(ids[i]) - 2) / max(1, len(texts[i])))),
    ]
    if words is not None:
        # a word that yields no token at all (e.g. only control/zero-width characters)
        candidates.insert(1, ("word_without_tokens", lambda i: empty_words(words[i], word_ids[i], len(ids[i]))[0]))
    picked = {}
    for reason, key in candidates:
        best = max(range(n), key=key)  # first maximum in file order
        if key(best) <= 0:
            continue
        picked.setdefault(best, []).append(reason)
        if len(picked) >= N_HARD:
            break
    # fill up with the next longest examples
    for i in sorted(range(n), key=lambda i: (-len(ids[i]), i)):
        if len(picked) >= N_HARD:
            break
        if i not in picked and i >= N_FIRST:
            picked[i] = ["long"]
    return sorted(picked.items())


def example(tok, enc_ids, i, text=None, words=None, label=None, tags=None, word_ids=None):
    ex = {"index": i}
    if text is not None:
        ex["text"] = text
        ex["label"] = label
    else:
        ex["words"] = words
        ex["tags"] = tags
    ex["ids"] = enc_ids[i]
    ex["tokens"] = tok.convert_ids_to_tokens(enc_ids[i])
    if word_ids is not None:
        ex["word_ids"] = word_ids[i]
    return ex


def raw_tokenizer(snapshot_dir):
    """tokenizer.json loaded with the `tokenizers` library, padding off, truncation 512:
    what the Rust side will do. Used only as a cross-check, recorded in the fixture."""
    raw = tokenizers.Tokenizer.from_file(str(Path(snapshot_dir) / "tokenizer.json"))
    raw.no_padding()
    raw.enable_truncation(512)
    return raw


def main():
    t0 = time.time()
    tok = AutoTokenizer.from_pretrained(MODEL)
    assert tok.is_fast, f"expected a fast tokenizer, got {type(tok)}"
    assert tok.model_max_length == 512, tok.model_max_length
    tok_json = try_to_load_from_cache(MODEL, "tokenizer.json")
    assert isinstance(tok_json, str), f"tokenizer.json not in the hub cache: {tok_json}"
    snapshot_dir = os.path.dirname(tok_json)
    rev = os.path.basename(snapshot_dir)
    with open(tok_json, "rb") as fh:
        tok_json_sha = hashlib.sha256(fh.read()).hexdigest()
    raw = raw_tokenizer(snapshot_dir)

    out = {
        "digest_encoding": DIGEST_ENCODING,
        "generator": "scripts/reference/tokenizer_ids.py",
        "versions": {
            "python": sys.version.split()[0],
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
        },
        "model": {
            "repo": MODEL,
            "revision": rev,
            "tokenizer_class": type(tok).__name__,
            "tokenizer_json_sha256": tok_json_sha,
            "model_max_length": tok.model_max_length,
            "special_ids": {t: tok.convert_tokens_to_ids(t) for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")},
        },
        "emotion": {},
        "wikiann": {"en": {}, "de": {}},
    }
    unk_id = tok.unk_token_id

    for split in ("train", "validation", "test"):
        texts, labels = read_emotion(DATA / "emotion" / f"{split}.txt")
        enc = tok(texts, truncation=True)
        ids = enc["input_ids"]
        untrunc = tok(texts, truncation=False)["input_ids"]
        raw_ids = [e.ids for e in raw.encode_batch(texts, add_special_tokens=True)]
        hard = pick_hard(ids, texts, unk_id=unk_id)
        out["emotion"][split] = {
            "file": f"data/emotion/{split}.txt",
            "count": len(ids),
            "total_tokens": sum(len(x) for x in ids),
            "max_tokens": max(len(x) for x in ids),
            "truncated": sum(1 for x in untrunc if len(x) > 512),
            "unk_tokens": sum(x.count(unk_id) for x in ids),
            "ids_sha256": digest(ids),
            "raw_tokenizer_json_matches": raw_ids == ids,
            "sample": {
                "first": [example(tok, ids, i, text=texts[i], label=labels[i]) for i in range(N_FIRST)],
                "hard": [dict(example(tok, ids, i, text=texts[i], label=labels[i]), why=why) for i, why in hard],
            },
        }
        print(f"emotion/{split}: {len(ids)} examples, {out['emotion'][split]['total_tokens']} tokens, "
              f"raw tokenizer.json {'matches' if raw_ids == ids else 'DIFFERS'}", file=sys.stderr)

    for lang in ("en", "de"):
        for split in ("train", "dev", "test"):
            sents, tags = read_wikiann(DATA / "wikiann" / lang / split)
            enc = tok(sents, is_split_into_words=True, truncation=True)
            ids = enc["input_ids"]
            wids = [enc.word_ids(i) for i in range(len(ids))]
            untrunc = tok(sents, is_split_into_words=True, truncation=False)["input_ids"]
            raw_enc = raw.encode_batch(sents, is_pretokenized=True, add_special_tokens=True)
            raw_ok = [e.ids for e in raw_enc] == ids and [e.word_ids for e in raw_enc] == wids
            joined = [" ".join(s) for s in sents]
            hard = pick_hard(ids, joined, word_ids=wids, words=sents, unk_id=unk_id)
            empties = [empty_words(s, wi, len(x)) for s, wi, x in zip(sents, wids, ids)]
            out["wikiann"][lang][split] = {
                "file": f"data/wikiann/{lang}/{split}",
                "count": len(ids),
                "words": sum(len(s) for s in sents),
                "total_tokens": sum(len(x) for x in ids),
                "max_tokens": max(len(x) for x in ids),
                "truncated": sum(1 for x in untrunc if len(x) > 512),
                "unk_tokens": sum(x.count(unk_id) for x in ids),
                "words_without_tokens": sum(e[0] for e in empties),
                "words_cut_by_truncation": sum(e[1] for e in empties),
                "ids_sha256": digest(ids),
                "word_ids_sha256": digest(wids),
                "raw_tokenizer_json_matches": raw_ok,
                "sample": {
                    "first": [example(tok, ids, i, words=sents[i], tags=tags[i], word_ids=wids)
                              for i in range(N_FIRST)],
                    "hard": [dict(example(tok, ids, i, words=sents[i], tags=tags[i], word_ids=wids), why=why)
                             for i, why in hard],
                },
            }
            print(f"wikiann/{lang}/{split}: {len(ids)} sentences, "
                  f"{out['wikiann'][lang][split]['total_tokens']} tokens, "
                  f"raw tokenizer.json {'matches' if raw_ok else 'DIFFERS'}", file=sys.stderr)

    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(dumps(out) + "\n", encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size} bytes) in {time.time() - t0:.1f}s",
          file=sys.stderr)


def dumps(obj, indent=0):
    """JSON with nested structure indented but flat lists (ids, tokens, words) on one line."""
    pad = "  " * (indent + 1)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{pad}{json.dumps(k, ensure_ascii=False)}: {dumps(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * indent + "}"
    if isinstance(obj, list) and any(isinstance(v, (dict, list)) for v in obj):
        items = [pad + dumps(v, indent + 1) for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + "  " * indent + "]"
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":") if isinstance(obj, list) else None)


if __name__ == "__main__":
    main()
