#!/usr/bin/python3
"""gen_kvcache_reference.py -- the KV cache policy's reference logits: test/fixtures/kvcache_*.logits.bin.
Run with Debian's python3 (torch, numpy):

    /usr/bin/python3 test/gen_kvcache_reference.py

For the fixture models gqa.rhw (4 query heads, 2 KV heads) and llama2.rhw (no grouping), read
independently of the engine (test/rhw_check.py), it runs gen_reference.py's float64 forward pass
with a per-head attention mask instead of the causal one: a query head whose KV head is kept
full sees positions 0..i, every other query head sees the sinks 0..S-1 and the window
i-W+1..i (and never beyond i).  The policy: S = 2, W = 8, the KV heads kept full are KV head 1
of layer 0 (query heads of it), no other.  ids[i] = (7 i + 3) % vocab, 40 of them.  Writes the
logits of every position (float32 LE, 40 x vocab); test/test_kvcache.c (kvcache/torch) holds the
engine's fast and reference passes to them.
"""

import math
import os
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(ROOT, "test"))
import gen_reference  # noqa: E402  (its rope, norms)
import rhw_check  # noqa: E402

FIX = os.path.join(ROOT, "test", "fixtures")
T, S, W = 40, 2, 8
KEEP = {(0, 1)}  # (layer, kv head) kept full


def visible(c, layer):
    """(n_heads, T, T) bool: query head h at position i sees position j."""
    nh, nkv = c["n_heads"], c["n_kv_heads"]
    i = torch.arange(T).view(T, 1)
    j = torch.arange(T).view(1, T)
    causal = j <= i
    window = causal & ((j < S) | (j > i - W))
    rows = [causal if (layer, h // (nh // nkv)) in KEEP else window for h in range(nh)]
    return torch.stack(rows)


def forward(Wt, c, ids):
    nh, nkv, hd = c["n_heads"], c["n_kv_heads"], c["head_dim"]
    x = Wt["model.embed_tokens.weight"][torch.tensor(ids)]
    freqs = torch.outer(torch.arange(T, dtype=torch.float64), gen_reference.rope_inv_freq(c))
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    for li in range(c["n_layers"]):
        p = "model.layers.%d." % li
        h = gen_reference.rms_norm(x, Wt[p + "input_layernorm.weight"], c["norm_eps"])
        q = (h @ Wt[p + "self_attn.q_proj.weight"].T).view(T, nh, hd).transpose(0, 1)
        k = (h @ Wt[p + "self_attn.k_proj.weight"].T).view(T, nkv, hd).transpose(0, 1)
        v = (h @ Wt[p + "self_attn.v_proj.weight"].T).view(T, nkv, hd).transpose(0, 1)
        q = q * cos + gen_reference.rotate_half(q) * sin
        k = k * cos + gen_reference.rotate_half(k) * sin
        k = k.repeat_interleave(nh // nkv, dim=0)
        v = v.repeat_interleave(nh // nkv, dim=0)
        s = (q @ k.transpose(1, 2)) / math.sqrt(hd)
        s = s.masked_fill(~visible(c, li), float("-inf"))
        a = (torch.softmax(s, dim=-1) @ v).transpose(0, 1).reshape(T, nh * hd)
        x = x + a @ Wt[p + "self_attn.o_proj.weight"].T
        h = gen_reference.rms_norm(x, Wt[p + "post_attention_layernorm.weight"], c["norm_eps"])
        g = torch.nn.functional.silu(h @ Wt[p + "mlp.gate_proj.weight"].T)
        x = x + (g * (h @ Wt[p + "mlp.up_proj.weight"].T)) @ Wt[p + "mlp.down_proj.weight"].T
    x = gen_reference.rms_norm(x, Wt["model.norm.weight"], c["norm_eps"])
    head = Wt["model.embed_tokens.weight"] if c["tied_embeddings"] else Wt["lm_head.weight"]
    return x @ head.T


def main():
    for name in ("gqa", "llama2"):
        info = rhw_check.read_rhw(os.path.join(FIX, name + ".rhw"))
        c = info["config"]
        assert not c["qkv_bias"] and c["rope_scaling"] == 0
        Wt = {n: torch.from_numpy(rhw_check.tensor(info, n)) for n in info["tensors"]}
        ids = [(7 * i + 3) % c["vocab_size"] for i in range(T)]
        lg = forward(Wt, c, ids)
        out = os.path.join(FIX, "kvcache_%s.logits.bin" % name)
        with open(out + ".tmp", "wb") as f:
            f.write(lg.numpy().astype("<f4").tobytes())
        os.replace(out + ".tmp", out)
        print("%s: %d x %d logits, max |logit| %.3f" % (out, T, c["vocab_size"], float(lg.abs().max())))


if __name__ == "__main__":
    main()
