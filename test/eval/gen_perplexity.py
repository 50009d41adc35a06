#!/usr/bin/python3
"""gen_perplexity.py -- regenerate test/eval/perplexity_llama2.json: the sliding-window
perplexity of a short text under test/fixtures/llama2.rhw, computed in float64 with the reference
forward pass of test/gen_reference.py (torch ops, from the weights as stored), for
test/test_eval.c's eval/perplexity_reference.  Needs Debian's python3 with numpy and torch
(apt-get install python3-numpy python3-torch) and the built binary (its tokenizer gives the ids;
test/test_tokenizer.c checks that tokenizer against sentencepiece):

    make && /usr/bin/python3 test/eval/gen_perplexity.py [./retrieval_heads]

The computation, as eval's: windows [b, min(b + WINDOW, N)) for b = 0, STRIDE, 2 STRIDE, ... until
one reaches the end; each scores the tokens after the previous window's end (the first window:
all but token 0) by -log softmax(logits of the token before)[token]; a scored token t is
copyable when ids[j-2..j] == ids[t-2..t] for some j in [b + 2, t).
"""

import json
import os
import subprocess
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(ROOT, "test"))
import gen_reference  # noqa: E402  (the reference forward pass)
import rhw_check  # noqa: E402  (an independent .rhw reader)

MODEL = "test/fixtures/llama2.rhw"
WINDOW, STRIDE = 48, 20
TEXT = ("The quick brown fox. The quick brown fox jumps. A head copies the needle; a head copies "
        "the needle again. The lazy dog sleeps, the lazy dog sleeps, and the fox jumps over the "
        "lazy dog.")


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "retrieval_heads")
    info = rhw_check.read_rhw(os.path.join(ROOT, MODEL))
    c = info["config"]
    out = subprocess.run([binary, "tokenize", os.path.join(ROOT, MODEL), TEXT], check=True,
                         capture_output=True, text=True).stdout
    ids = [int(x) for x in out.split()]
    if c["add_bos"]:
        ids = [c["bos_id"]] + ids
    W = {name: torch.from_numpy(rhw_check.tensor(info, name)) for name in info["tensors"]}
    N = len(ids)
    nll, copy = [], []
    prev_end, b = 0, 0
    while True:
        e = min(b + WINDOW, N)
        t0 = max(prev_end, b + 1)
        if e > t0:
            logits = gen_reference.forward(W, c, ids[b:e])
            lp = torch.log_softmax(logits, dim=-1)
            for t in range(t0, e):
                nll.append(-float(lp[t - 1 - b, ids[t]]))
                copy.append(int(t - 2 >= b and any(ids[j - 2:j + 1] == ids[t - 2:t + 1]
                                                   for j in range(b + 2, t))))
        prev_end = e
        if e == N:
            break
        b += STRIDE
    doc = {"model": MODEL, "text": TEXT, "window": WINDOW, "stride": STRIDE, "ids": ids,
           "tokens": len(nll), "nll": sum(nll), "copy_tokens": sum(copy),
           "copy_nll": sum(x for x, k in zip(nll, copy) if k), "per_token_nll": nll,
           "copyable": copy}
    with open(os.path.join(HERE, "perplexity_llama2.json"), "w") as f:
        json.dump(doc, f)
        f.write("\n")
    print("%d ids, %d tokens scored (%d copyable), NLL %.6f" % (N, len(nll), sum(copy), sum(nll)))


if __name__ == "__main__":
    main()
