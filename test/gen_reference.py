#!/usr/bin/python3
"""gen_reference.py -- regenerate test/fixtures/: tiny random checkpoints, their .rhw exports and
PyTorch reference logits.  Run with Debian's python3 (torch, numpy):

    /usr/bin/python3 test/gen_reference.py

For each variant (Llama-2 MHA, Mistral GQA, Qwen2 qkv-bias + tied, Llama-3 rope scaling, linear
rope scaling, Mistral and Qwen2 sliding-window attention, Phi-3 with and without longrope, Mixtral's
mixture of experts) it
  1. draws seeded random weights and writes a Hugging Face checkpoint directory by hand
     (config.json, *.safetensors, tokenizer.json, tokenizer_config.json, ...) in a temp dir;
  2. exports it with weights/export.py (f32, and bf16 / f16 for some variants);
  3. runs a reference forward pass written here from the model definitions (Hugging Face
     modeling_llama / modeling_mistral / modeling_qwen2 / modeling_phi3 / modeling_mixtral
     semantics) with torch's own ops in float64, from the weights as stored;
  4. writes test/fixtures/<variant>.logits.bin (float32 LE, N_IDS x vocab: the logits of every
     position of a fixed id sequence), the greedy continuation of a short prompt, and
     test/fixtures/ref_cases.h (ids, greedy tokens, file names) for test/test_reference.c.

Every weight is drawn as a value exactly representable in bf16 AND f16 (8 significant bits,
magnitude 0 or within f16's normal range), so the f32, bf16 and f16 exports of a variant hold
the same numbers and share one reference: the bf16/f16 runs then test the engine's decoding of
those dtypes, not the rounding of the weights.  The rounding itself (export.py's --dtype) is
checked separately here against torch's own conversions (check_conversions).

Greedy decoding must not hinge on float noise: each step's top-2 logit margin of the reference
is recorded, and a variant's seed is advanced (deterministically) until every one of its 64
greedy steps has a margin >= MIN_MARGIN.  A mixture of experts' routing must not hinge on it
either: the seed also advances until, at every position and layer of the id sequence and of the
greedy run, the router logit of the last expert chosen exceeds the next one's by at least
MIN_ROUTE_MARGIN (the smallest such margin is reported), and, for a variant with a bf16 export,
until every position and layer routes alike when each matmul's input rows are rounded to bf16
where the engine's bf16 prefill rounds them (RH_BF16DOT builds and PyTorch's bf16 matmul: a
prefill's rows, not a decode step's).  Routing is discontinuous: without that check a bf16 run
may pick another expert and rightly give other logits.  Everything is seeded: rerunning gives
the same bytes.
"""

import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
FIX = os.path.join(ROOT, "test", "fixtures")
EXPORT = os.path.join(ROOT, "weights", "export.py")
sys.path.insert(0, os.path.join(ROOT, "test"))
import rhw_check  # noqa: E402  (independent .rhw reader)

N_IDS = 48       # positions of the all-logits check
N_PROMPT = 8     # greedy prompt length
N_GEN = 64       # greedy steps
MIN_MARGIN = 0.02  # top-2 logit margin every greedy step must have (engine error ~1e-5)
MIN_ROUTE_MARGIN = 1e-3  # router logit margin at the top-k boundary (engine error ~1e-6)

TRAIN_TEXT = (
    "The quick brown fox jumps over the lazy dog. A retrieval head copies the needle from "
    "the haystack into the answer; the rest of the heads read the context in other ways. "
    "Long context models find a fact inside many thousands of tokens, and they do it with "
    "only a few of their attention heads. When those heads are masked, the model still "
    "talks fluently, but the answer it gives is no longer the one in the document: it "
    "hallucinates. In 2024 the paper tested 4 model families and 6 scales. The best thing "
    "to do in San Francisco is eat a sandwich and sit in Dolores Park on a sunny day."
)

# ------------------------------------------------------------------------------------------
# variants

VARIANTS = [
    # Llama-2 style: MHA, SentencePiece-style tokenizer with byte fallback, separate lm_head.
    dict(name="llama2", arch="LlamaForCausalLM", model_type="llama", dim=32, hidden=80,
         layers=2, heads=2, kv=2, head_dim=None, tok="sp", byte_fallback=True, theta=10000.0,
         eps=1e-5, tied=False, max_pos=256, rope=None, src="f32", shards=1, pad_vocab=0,
         masked=True, exports=[("f32", None), ("bf16", "bf16")]),
    # Mistral GQA: 4 query heads share 2 kv heads; head_dim 16 set explicitly (4 x 16 != 32);
    # a bf16 source exported as is (bf16) and to f32.
    dict(name="gqa", arch="MistralForCausalLM", model_type="mistral", dim=32, hidden=56,
         layers=2, heads=4, kv=2, head_dim=16, tok="sp", byte_fallback=False, theta=10000.0,
         eps=1e-5, tied=False, max_pos=256, rope=None, src="bf16", shards=1, pad_vocab=0,
         exports=[("f32", "f32"), ("bf16", None)]),
    # Qwen2: q/k/v biases, tied embeddings, byte-level BPE, dim 40 and head_dim 10 (widths that
    # are not multiples of any SIMD width), padded vocab rows.
    dict(name="qwen2", arch="Qwen2ForCausalLM", model_type="qwen2", dim=40, hidden=72,
         layers=2, heads=4, kv=2, head_dim=None, tok="qwen2", theta=1000000.0, eps=1e-6,
         tied=True, max_pos=256, rope=None, src="f32", shards=1, pad_vocab=5,
         exports=[("f32", None), ("f16", "f16")]),
    # Llama-3: rope_scaling llama3 with original_max_position_embeddings 64, so with
    # theta 1e4 and head_dim 16 the wavelengths 6.3 (< 16: kept), 19.9 and 62.8 (between 16
    # and 64: smoothed) and 199.. (> 64: divided by the factor) cover all three regimes;
    # MQA (1 kv head), tied embeddings (as Llama-3.2), two safetensors shards.
    dict(name="llama3", arch="LlamaForCausalLM", model_type="llama", dim=32, hidden=72,
         layers=2, heads=2, kv=1, head_dim=None, tok="llama3", theta=10000.0, eps=1e-5,
         tied=True, max_pos=512,
         rope={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
               "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
         src="f32", shards=2, pad_vocab=0, exports=[("f32", None), ("f16", "f16")]),
    # Linear rope scaling (positions / 4), three layers, an f16 source kept as f16, and (as
    # Yi ships) only a SentencePiece tokenizer.model, trained here with sentencepiece.
    dict(name="linear", arch="LlamaForCausalLM", model_type="llama", dim=32, hidden=48,
         layers=3, heads=2, kv=2, head_dim=None, tok="spm", byte_fallback=False, theta=10000.0,
         eps=1e-6, tied=False, max_pos=256, rope={"type": "linear", "factor": 4.0}, src="f16",
         shards=1, pad_vocab=0, exports=[("f32", "f32"), ("f16", None)]),
    # Sliding-window attention (format version 2), windows shorter than the 48-id sequence and
    # the 72-token greedy run: Mistral v0.1 style, every layer with sliding_window 12, GQA ...
    dict(name="swa", arch="MistralForCausalLM", model_type="mistral", dim=32, hidden=56,
         layers=2, heads=4, kv=2, head_dim=None, tok="sp", byte_fallback=False, theta=10000.0,
         eps=1e-5, tied=False, max_pos=256, rope=None, src="f32", shards=1, pad_vocab=0,
         window=12, masked=True, exports=[("f32", None), ("bf16", "bf16")]),
    # ... and Qwen2 with use_sliding_window, window 7 from max_window_layers 1 (layer 0 full,
    # layers 1 and 2 windowed).
    dict(name="qwen2swa", arch="Qwen2ForCausalLM", model_type="qwen2", dim=40, hidden=72,
         layers=3, heads=4, kv=2, head_dim=None, tok="qwen2", theta=1000000.0, eps=1e-6,
         tied=True, max_pos=256, rope=None, src="f32", shards=1, pad_vocab=0, window=7,
         window_first=1, exports=[("f32", None)]),
    # Phi-3 without rope scaling: fused qkv_proj and gate_up_proj in the checkpoint (export.py
    # cuts them), GQA, partial_rotary_factor 0.75 (12 of 16 dimensions rotated).
    dict(name="phi3", arch="Phi3ForCausalLM", model_type="phi3", dim=32, hidden=48,
         layers=2, heads=2, kv=1, head_dim=16, tok="sp", byte_fallback=True, theta=10000.0,
         eps=1e-5, tied=False, max_pos=256, rope=None, src="f32", shards=1, pad_vocab=0,
         partial=0.75, masked=True, exports=[("f32", None), ("bf16", "bf16")]),
    # Phi-3 with longrope: original context 32 of max_position_embeddings 128 (attention factor
    # sqrt(1 + ln 4 / ln 32)), so the 48 ids and the greedy run (8 + 64) are longer than the
    # original context; the greedy run crosses it while decoding.
    dict(name="phi3long", arch="Phi3ForCausalLM", model_type="phi3", dim=32, hidden=48,
         layers=2, heads=2, kv=2, head_dim=None, tok="sp", byte_fallback=True, theta=10000.0,
         eps=1e-5, tied=False, max_pos=128, orig_pos=32, src="f32", shards=1, pad_vocab=0,
         rope="longrope", masked=True, exports=[("f32", None)]),
    # Mixtral: a sparse mixture of 8 SwiGLU experts (width 40), 2 a token, in both layers;
    # router weights scaled (std 2 / sqrt(dim)) so that the chosen pair changes from token to
    # token; GQA; a bf16 export of the same numbers.
    dict(name="mixtral", arch="MixtralForCausalLM", model_type="mixtral", dim=32, hidden=40,
         layers=2, heads=4, kv=2, head_dim=None, tok="sp", byte_fallback=True, theta=1000000.0,
         eps=1e-5, tied=False, max_pos=256, rope=None, src="f32", shards=1, pad_vocab=0,
         experts=8, top_k=2, masked=True, exports=[("f32", None), ("bf16", "bf16")]),
]


# ------------------------------------------------------------------------------------------
# tokenizers: tiny BPE vocabularies trained here on TRAIN_TEXT (deterministic)

def bpe_train(words, n_merges):
    """words: list of symbol tuples (with counts by repetition).  Greedy BPE: merge the most
    frequent adjacent pair, ties broken by the pair's text.  Returns the merge list."""
    seqs = [list(w) for w in words]
    merges = []
    for _ in range(n_merges):
        counts = {}
        for s in seqs:
            for a, b in zip(s, s[1:]):
                counts[(a, b)] = counts.get((a, b), 0) + 1
        if not counts:
            break
        best = max(counts.items(), key=lambda kv: (kv[1], [-ord(ch) for ch in kv[0][0] + "\0"
                                                              + kv[0][1]]))[0]
        merges.append(best)
        for s in seqs:
            i = 0
            while i < len(s) - 1:
                if s[i] == best[0] and s[i + 1] == best[1]:
                    s[i:i + 2] = [best[0] + best[1]]
                i += 1
    return merges


def bytes_to_unicode():
    """GPT-2's byte -> printable character map (the byte-level alphabet)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + \
        list(range(0xAE, 0xFF + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def special(id_, content):
    return {"id": id_, "content": content, "single_word": False, "lstrip": False,
            "rstrip": False, "normalized": False, "special": True}


def sp_tokenizer(byte_fallback, n_merges=40):
    """A Llama-2 style tokenizer.json: <unk> <s> </s>, 256 byte-fallback tokens (if asked), the
    characters of the text, BPE merges; Metaspace via the normalizer (Prepend + Replace)."""
    words = ["\u2581" + w for w in TRAIN_TEXT.split(" ")]
    chars = sorted(set("".join(words)))
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256 if byte_fallback else 0):
        vocab["<0x%02X>" % b] = len(vocab)
    for ch in chars:
        vocab.setdefault(ch, len(vocab))
    merges = bpe_train([tuple(w) for w in words], n_merges)
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    tj = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [special(0, "<unk>"), special(1, "<s>"), special(2, "</s>")],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
        "pre_tokenizer": None,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<s>", "type_id": 1}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>",
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": True, "byte_fallback": byte_fallback, "ignore_merges": False,
                  "vocab": vocab, "merges": ["%s %s" % m for m in merges]},
    }
    tcfg = {"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>",
            "eos_token": "</s>", "unk_token": "<unk>", "model_max_length": 1000000,
            "tokenizer_class": "LlamaTokenizer", "legacy": False,
            "chat_template": "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n"
                             "{% endfor %}"}
    return tj, tcfg, len(vocab), {"bos": 1, "eos": [2]}


def spm_tokenizer(vocab_size=100):
    """A SentencePiece BPE tokenizer.model trained on TRAIN_TEXT (identity normalizer, dummy
    prefix, no byte fallback; single-threaded, so the bytes are reproducible)."""
    import io
    import sentencepiece as spm
    f = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(TRAIN_TEXT.split(". ")), model_writer=f, vocab_size=vocab_size,
        model_type="bpe", character_coverage=1.0, num_threads=1, byte_fallback=False,
        normalization_rule_name="identity", remove_extra_whitespaces=False,
        add_dummy_prefix=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1, minloglevel=2)
    tcfg = {"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>",
            "eos_token": "</s>", "unk_token": "<unk>", "tokenizer_class": "LlamaTokenizer"}
    return f.getvalue(), tcfg, vocab_size, {"bos": 1, "eos": [2]}


LLAMA3_PAT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
              r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PAT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
             r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def bytelevel_tokenizer(kind, n_merges=40):
    """A byte-level BPE tokenizer.json in the style of Llama-3 (kind "llama3") or Qwen2
    ("qwen2"): 256 alphabet tokens, merges trained on the text, special tokens after."""
    b2u = bytes_to_unicode()
    # a rough split into words with their leading space (enough to train merges)
    pre = re.findall(r" ?[A-Za-z]+| ?[0-9]| ?[^A-Za-z0-9 ]+| +", TRAIN_TEXT)
    words = [tuple(b2u[b] for b in w.encode("utf-8")) for w in pre]
    vocab = {}
    for b in range(256):
        vocab[b2u[b]] = len(vocab)
    merges = bpe_train(words, n_merges)
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    n_base = len(vocab)
    if kind == "llama3":
        specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"]
        pat, norm, ignore = LLAMA3_PAT, None, True
    else:
        specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        pat, norm, ignore = QWEN2_PAT, {"type": "NFC"}, False
    added = [special(n_base + i, s) for i, s in enumerate(specials)]
    tj = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": norm,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": pat}, "behavior": "Isolated",
             "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
             "use_regex": False}]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                           "use_regex": False},
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                    "use_regex": False},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": ignore,
                  "vocab": vocab, "merges": ["%s %s" % m for m in merges]},
    }
    n = n_base + len(specials)
    if kind == "llama3":
        tj["post_processor"] = {"type": "Sequence", "processors": [
            {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
             "use_regex": True},
            {"type": "TemplateProcessing",
             "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                        {"Sequence": {"id": "A", "type_id": 0}}],
             "pair": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                      {"Sequence": {"id": "A", "type_id": 0}},
                      {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}},
                      {"Sequence": {"id": "B", "type_id": 1}}],
             "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>",
                                                      "ids": [n_base],
                                                      "tokens": ["<|begin_of_text|>"]}}}]}
        # no add_bos_token key: export.py must read BOS from the post-processor
        tcfg = {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>",
                "model_max_length": 131072, "tokenizer_class": "PreTrainedTokenizerFast"}
        ids = {"bos": n_base, "eos": [n_base + 1, n_base + 2]}
    else:
        tcfg = {"add_bos_token": False, "bos_token": None, "eos_token": "<|im_end|>",
                "pad_token": "<|endoftext|>", "model_max_length": 32768,
                "tokenizer_class": "Qwen2Tokenizer",
                "chat_template": "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
                                 "{{ m['content'] }}<|im_end|>\n{% endfor %}"}
        ids = {"bos": None, "eos": [n_base + 2]}
    return tj, tcfg, n, ids


# ------------------------------------------------------------------------------------------
# weights

def representable(x):
    """Round float64 values to ones exact in bf16 and in f16: 8 significant bits (bf16) and
    magnitude 0 or in [2^-14, 65504] (f16 normal range)."""
    x = x.to(torch.bfloat16).to(torch.float64)
    x[x.abs() < 2.0 ** -14] = 0.0
    assert float(x.abs().max()) <= 65504
    return x


def make_weights(v, vocab, seed):
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape, std=1.0, mean=0.0):
        return representable(torch.randn(*shape, generator=g, dtype=torch.float64) * std + mean)

    D, H = v["dim"], v["hidden"]
    hd = v["head_dim"] or D // v["heads"]
    q, kv = v["heads"] * hd, v["kv"] * hd
    W = {"model.embed_tokens.weight": rnd(vocab, D, std=1.0)}
    for i in range(v["layers"]):
        p = "model.layers.%d." % i
        W[p + "input_layernorm.weight"] = rnd(D, std=0.1, mean=1.0)
        W[p + "self_attn.q_proj.weight"] = rnd(q, D, std=1.0 / math.sqrt(D))
        W[p + "self_attn.k_proj.weight"] = rnd(kv, D, std=1.0 / math.sqrt(D))
        W[p + "self_attn.v_proj.weight"] = rnd(kv, D, std=1.0 / math.sqrt(D))
        if v["arch"] == "Qwen2ForCausalLM":
            W[p + "self_attn.q_proj.bias"] = rnd(q, std=0.2)
            W[p + "self_attn.k_proj.bias"] = rnd(kv, std=0.2)
            W[p + "self_attn.v_proj.bias"] = rnd(kv, std=0.2)
        W[p + "self_attn.o_proj.weight"] = rnd(D, q, std=1.0 / math.sqrt(q))
        W[p + "post_attention_layernorm.weight"] = rnd(D, std=0.1, mean=1.0)
        if v.get("experts"):  # Mixtral's checkpoint names: w1 gate, w3 up, w2 down
            W[p + "block_sparse_moe.gate.weight"] = rnd(v["experts"], D, std=2.0 / math.sqrt(D))
            for e in range(v["experts"]):
                ex = p + "block_sparse_moe.experts.%d." % e
                W[ex + "w1.weight"] = rnd(H, D, std=1.0 / math.sqrt(D))
                W[ex + "w3.weight"] = rnd(H, D, std=1.0 / math.sqrt(D))
                W[ex + "w2.weight"] = rnd(D, H, std=1.0 / math.sqrt(H))
            continue
        W[p + "mlp.gate_proj.weight"] = rnd(H, D, std=1.0 / math.sqrt(D))
        W[p + "mlp.up_proj.weight"] = rnd(H, D, std=1.0 / math.sqrt(D))
        W[p + "mlp.down_proj.weight"] = rnd(D, H, std=1.0 / math.sqrt(H))
    W["model.norm.weight"] = rnd(D, std=0.1, mean=1.0)
    if not v["tied"]:
        # logits std ~ 3: peaked enough that greedy steps have clear top-2 margins
        W["lm_head.weight"] = rnd(vocab, D, std=3.0 / math.sqrt(D))
    else:
        W["model.embed_tokens.weight"] = rnd(vocab, D, std=3.0 / math.sqrt(D))
    return W


ST_NAME = {"f32": "F32", "f16": "F16", "bf16": "BF16"}


def tensor_bytes(t, dtype):
    a = t.numpy().astype(np.float32)
    if dtype == "f32":
        return a.astype("<f4").tobytes()
    if dtype == "f16":
        h = a.astype("<f2")
        assert np.array_equal(h.astype(np.float32), a)
        return h.tobytes()
    u = a.view(np.uint32)
    assert not (u & 0xFFFF).any()
    return (u >> 16).astype("<u2").tobytes()


def write_safetensors(path, items, dtype):
    """items: [(name, tensor)] -> a safetensors file written by hand."""
    hdr, blobs, off = {}, [], 0
    for name, t in items:
        b = tensor_bytes(t, dtype)
        hdr[name] = {"dtype": ST_NAME[dtype], "shape": list(t.shape),
                     "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hdr["__metadata__"] = {"format": "pt"}
    hj = json.dumps(hdr, separators=(",", ":")).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)) + hj)
        for b in blobs:
            f.write(b)


def write_hf_dir(d, v, W, tj, tcfg, vocab, ids):
    os.makedirs(d, exist_ok=True)
    cfg = {"architectures": [v["arch"]], "model_type": v["model_type"],
           "hidden_size": v["dim"], "intermediate_size": v["hidden"],
           "num_hidden_layers": v["layers"], "num_attention_heads": v["heads"],
           "num_key_value_heads": v["kv"], "vocab_size": vocab, "hidden_act": "silu",
           "max_position_embeddings": v["max_pos"], "rms_norm_eps": v["eps"],
           "rope_theta": v["theta"], "rope_scaling": v["rope"],
           "tie_word_embeddings": v["tied"], "torch_dtype": {"f32": "float32", "f16": "float16",
                                                             "bf16": "bfloat16"}[v["src"]],
           "initializer_range": 0.02, "use_cache": True, "transformers_version": "4.44.0"}
    if ids["bos"] is not None:
        cfg["bos_token_id"] = ids["bos"]
    cfg["eos_token_id"] = ids["eos"][0]
    if v["head_dim"]:
        cfg["head_dim"] = v["head_dim"]
    if v["model_type"] == "llama":
        cfg.update({"attention_bias": False, "mlp_bias": False, "pretraining_tp": 1})
    if v["model_type"] in ("mistral", "mixtral"):
        cfg["sliding_window"] = v.get("window")
    if v["model_type"] == "mixtral":
        cfg.update({"num_local_experts": v["experts"], "num_experts_per_tok": v["top_k"],
                    "router_aux_loss_coef": 0.02, "output_router_logits": False,
                    "router_jitter_noise": 0.0})
    if v["model_type"] == "phi3":
        cfg["sliding_window"] = v.get("window")
        cfg["partial_rotary_factor"] = v.get("partial", 1.0)
        cfg["original_max_position_embeddings"] = v.get("orig_pos", v["max_pos"])
        if v["rope"] == "longrope":
            cfg["rope_scaling"] = {"type": "longrope", "short_factor": v["short_factor"],
                                   "long_factor": v["long_factor"]}
    if v["model_type"] == "qwen2":
        cfg.update({"use_sliding_window": bool(v.get("window")),
                    "sliding_window": v.get("window") or 32768,
                    "max_window_layers": v.get("window_first", 28)})
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    if v["name"] == "llama3":  # eos may be a list (generation_config overrides config.json)
        with open(os.path.join(d, "generation_config.json"), "w") as f:
            json.dump({"bos_token_id": ids["bos"], "eos_token_id": ids["eos"]}, f, indent=2)
    if isinstance(tj, bytes):  # a SentencePiece model, no tokenizer.json
        with open(os.path.join(d, "tokenizer.model"), "wb") as f:
            f.write(tj)
    else:
        with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(tj, f, ensure_ascii=False, indent=1)
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump(tcfg, f, indent=2)
    items = list(W.items())
    if v["model_type"] == "phi3":  # HF's Phi3 checkpoints fuse q/k/v and gate/up by rows
        fused = []
        for name, t in items:
            if name.endswith("self_attn.q_proj.weight"):
                p = name[:-len("q_proj.weight")]
                fused.append((p + "qkv_proj.weight", torch.cat(
                    [t, W[p + "k_proj.weight"], W[p + "v_proj.weight"]], 0)))
            elif name.endswith("mlp.gate_proj.weight"):
                p = name[:-len("gate_proj.weight")]
                fused.append((p + "gate_up_proj.weight", torch.cat([t, W[p + "up_proj.weight"]], 0)))
            elif not re.search(r"(k_proj|v_proj|up_proj)\.weight$", name):
                fused.append((name, t))
        items = fused
    if v["shards"] == 1:
        write_safetensors(os.path.join(d, "model.safetensors"), items, v["src"])
    else:
        k = (len(items) + 1) // 2
        parts = [items[:k], items[k:]]
        wm = {}
        for i, part in enumerate(parts):
            fn = "model-%05d-of-%05d.safetensors" % (i + 1, len(parts))
            write_safetensors(os.path.join(d, fn), part, v["src"])
            for name, _ in part:
                wm[name] = fn
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": 0}, "weight_map": wm}, f, indent=2)


# ------------------------------------------------------------------------------------------
# the reference forward pass (float64, torch ops), from the model definitions

def rope_inv_freq(c, T=0):
    """inv_freq[i] = theta^(-2i/d), i < d/2, d the rotated dimensions (head_dim, or Phi-3's
    int(head_dim * partial_rotary_factor)), then the scaling variant.  longrope (HF
    _compute_longrope_parameters): 1 / (ext[i] theta^(2i/d)), ext the long factors when the
    sequence (T tokens) is longer than original_max_position_embeddings, else the short ones."""
    hd = c.get("rope_dim") or c["head_dim"]
    inv = 1.0 / (c["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    if c["rope_scaling"] == 3:
        ext = c["long_factor"] if T > c["rope_original_max_ctx"] else c["short_factor"]
        inv = 1.0 / (torch.tensor(ext, dtype=torch.float64) *
                     c["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    elif c["rope_scaling"] == 1:  # linear: positions / factor == frequencies / factor
        inv = inv / c["rope_factor"]
    elif c["rope_scaling"] == 2:  # llama3: by wavelength against the original context
        factor, lo, hi = c["rope_factor"], c["rope_low_freq_factor"], c["rope_high_freq_factor"]
        old = c["rope_original_max_ctx"]
        wavelen = 2 * math.pi / inv
        low_wl, high_wl = old / lo, old / hi
        out = torch.where(wavelen > low_wl, inv / factor, inv)
        smooth = (old / wavelen - lo) / (hi - lo)
        smoothed = (1 - smooth) * out / factor + smooth * out
        medium = (wavelen >= high_wl) & (wavelen <= low_wl)
        inv = torch.where(medium, smoothed, out)
    return inv


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def bf16_rows(a, n, rows=None):
    """a with its first n rows (or, given rows, the rows whose index in the sequence is < n)
    rounded to bf16 through f32, as the engine rounds a prefill's f32 activations."""
    if not n:
        return a
    sel = torch.arange(a.shape[0]) < n if rows is None else rows < n
    a = a.clone()
    a[sel] = a[sel].float().bfloat16().double()
    return a


def moe(W, p, c, h, stats, nr=0):
    """HF MixtralSparseMoeBlock on h (T, D): router logits, softmax over all experts, the top_k
    largest, renormalised over them; each chosen expert's SwiGLU MLP times its weight, added
    into zeros expert by expert (index_add_).  stats: the smallest router-logit margin between
    the last chosen expert and the next, the distinct chosen sets and every position's set in
    order.  nr: the first nr rows' matmul inputs are rounded to bf16 (see bf16_rows)."""
    h = bf16_rows(h, nr)
    r = h @ W[p + "block_sparse_moe.gate.weight"].T          # (T, E)
    pr = torch.softmax(r, dim=-1)
    topw, topi = torch.topk(pr, c["top_k"], dim=-1)
    topw = topw / topw.sum(dim=-1, keepdim=True)
    out = torch.zeros_like(h)
    for e in range(c["n_experts"]):
        tok, slot = torch.where(topi == e)
        if len(tok) == 0:
            continue
        ex = p + "block_sparse_moe.experts.%d." % e
        he = h[tok]
        g = torch.nn.functional.silu(he @ W[ex + "w1.weight"].T) * (he @ W[ex + "w3.weight"].T)
        y = bf16_rows(g, nr, tok) @ W[ex + "w2.weight"].T
        out.index_add_(0, tok, y * topw[tok, slot, None])
    if stats is not None:
        rs = torch.sort(r, dim=-1, descending=True).values
        gap = float((rs[:, c["top_k"] - 1] - rs[:, c["top_k"]]).min())
        stats["route_margin"] = min(stats.get("route_margin", float("inf")), gap)
        sets = [tuple(sorted(row)) for row in topi.tolist()]
        stats.setdefault("choices", set()).update(sets)
        stats.setdefault("routes", []).extend(sets)
    return out


def forward(W, c, ids, masked=None, stats=None, nr=0):
    """Logits (T, vocab) float64 for token ids at positions 0..T-1.  masked: (layer, head) whose
    attention is made uniform over what it sees (the paper's masking: its scores set to 0).
    stats: a dict that a mixture of experts records its routing in.  nr: the matmul inputs of
    the first nr positions are rounded to bf16, as a bf16 prefill of them rounds (bf16_rows)."""
    T = len(ids)
    nh, nkv, hd = c["n_heads"], c["n_kv_heads"], c["head_dim"]
    x = W["model.embed_tokens.weight"][torch.tensor(ids)]
    freqs = torch.outer(torch.arange(T, dtype=torch.float64), rope_inv_freq(c, T))
    emb = torch.cat((freqs, freqs), dim=-1)           # (T, rotated dims)
    cos, sin = emb.cos(), emb.sin()
    if c["rope_scaling"] == 3:  # longrope: cos, sin times the attention factor
        cos, sin = cos * c["rope_attn_factor"], sin * c["rope_attn_factor"]
    rd = emb.shape[-1]
    causal = torch.ones(T, T, dtype=torch.bool).triu(1)
    # sliding window (HF masking_utils.sliding_window_overlay: kv_idx > q_idx - W visible)
    W_ = c.get("sliding_window", 0)
    pos = torch.arange(T)
    windowed = causal | (pos[None, :] <= pos[:, None] - W_) if W_ else causal
    for i in range(c["n_layers"]):
        p = "model.layers.%d." % i
        mask = windowed if W_ and i >= c.get("window_first_layer", 0) else causal
        h = bf16_rows(rms_norm(x, W[p + "input_layernorm.weight"], c["norm_eps"]), nr)
        q = h @ W[p + "self_attn.q_proj.weight"].T
        k = h @ W[p + "self_attn.k_proj.weight"].T
        v = h @ W[p + "self_attn.v_proj.weight"].T
        if c["qkv_bias"]:
            q = q + W[p + "self_attn.q_proj.bias"]
            k = k + W[p + "self_attn.k_proj.bias"]
            v = v + W[p + "self_attn.v_proj.bias"]
        q = q.view(T, nh, hd).transpose(0, 1)          # (nh, T, hd)
        k = k.view(T, nkv, hd).transpose(0, 1)         # (nkv, T, hd)
        v = v.view(T, nkv, hd).transpose(0, 1)
        # RoPE on the first rd dimensions (all of them but with Phi-3's partial_rotary_factor)
        q = torch.cat([q[..., :rd] * cos + rotate_half(q[..., :rd]) * sin, q[..., rd:]], -1)
        k = torch.cat([k[..., :rd] * cos + rotate_half(k[..., :rd]) * sin, k[..., rd:]], -1)
        k = k.repeat_interleave(nh // nkv, dim=0)      # query head j uses kv head j // n_rep
        v = v.repeat_interleave(nh // nkv, dim=0)
        s = (q @ k.transpose(1, 2)) / math.sqrt(hd)    # (nh, T, T)
        if masked is not None and masked[0] == i:
            s[masked[1]] = 0.0
        s = s.masked_fill(mask, float("-inf"))
        a = torch.softmax(s, dim=-1) @ v               # (nh, T, hd)
        a = a.transpose(0, 1).reshape(T, nh * hd)
        x = x + bf16_rows(a, nr) @ W[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, W[p + "post_attention_layernorm.weight"], c["norm_eps"])
        if c.get("n_experts"):
            x = x + moe(W, p, c, h, stats, nr)
            continue
        h = bf16_rows(h, nr)
        g = torch.nn.functional.silu(h @ W[p + "mlp.gate_proj.weight"].T)
        u = h @ W[p + "mlp.up_proj.weight"].T
        x = x + bf16_rows(g * u, nr) @ W[p + "mlp.down_proj.weight"].T
    x = bf16_rows(rms_norm(x, W["model.norm.weight"], c["norm_eps"]), nr)
    head = W["model.embed_tokens.weight"] if c["tied_embeddings"] else W["lm_head.weight"]
    return x @ head.T


def greedy(W, c, prompt, n):
    seq, margins = list(prompt), []
    for _ in range(n):
        last = forward(W, c, seq)[-1]
        top = torch.topk(last, 2).values
        margins.append(float(top[0] - top[1]))
        seq.append(int(torch.argmax(last)))
    return seq[len(prompt):], margins


# ------------------------------------------------------------------------------------------
# checks of export.py's dtype rounding against torch's conversions

def check_conversions(tmp):
    """export.py --dtype bf16/f16 must round exactly as torch does (round-to-nearest-even),
    including ties, subnormals, signed zeros and values near the overflow threshold."""
    g = torch.Generator().manual_seed(7)
    x = torch.randn(4096, generator=g, dtype=torch.float32) * 3
    specials = [0.0, -0.0, 1.0, -1.0, 65504.0, 65519.0, 6.1e-5, 5.96e-8, 2.98e-8, 1e-40,
                1.00390625, 1.01171875, -1.00390625, 3.0e38]
    # exact ties for bf16: x.5 ulp patterns
    ties = torch.tensor([1.0 + 2 ** -8, 1.0 + 3 * 2 ** -8, 2.0 + 2 ** -7, 1.0 + 2 ** -11,
                         1.0 + 3 * 2 ** -11], dtype=torch.float32)
    x = torch.cat([x, torch.tensor(specials, dtype=torch.float32), ties])
    import export_mod
    results = {}
    for dst in ("bf16", "f16"):
        src = x.clone()
        if dst == "f16":
            src = src[src.abs() < 65519.0]  # beyond it export.py refuses (overflow)
        conv = export_mod.converter(0, {"bf16": 2, "f16": 1}[dst], "check")
        got = np.frombuffer(conv(src.numpy().astype("<f4").tobytes()), dtype="<u2")
        ref_t = src.to(torch.bfloat16 if dst == "bf16" else torch.float16)
        ref = ref_t.view(torch.int16).numpy().view(np.uint16)
        bad = int((got != ref).sum())
        assert bad == 0, "export.py --dtype %s differs from torch on %d values" % (dst, bad)
        # and back: bf16/f16 -> f32 exact
        back = export_mod.converter({"bf16": 2, "f16": 1}[dst], 0, "check")(got.tobytes())
        ref_back = ref_t.to(torch.float32).numpy()
        assert np.array_equal(np.frombuffer(back, dtype="<f4"), ref_back)
        results[dst] = len(src)
    # bf16 -> f16 through f32 is a single rounding
    b = torch.randn(2048, generator=g, dtype=torch.float32).to(torch.bfloat16)
    bb = b.view(torch.int16).numpy().view(np.uint16).tobytes()
    got = np.frombuffer(export_mod.converter(2, 1, "check")(bb), dtype="<u2")
    ref = b.to(torch.float16).view(torch.int16).numpy().view(np.uint16)
    assert np.array_equal(got, ref)
    return results


# ------------------------------------------------------------------------------------------

def run_export(hf, out, dtype):
    cmd = [sys.executable, EXPORT, hf, out]
    if dtype:
        cmd += ["--dtype", dtype]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("export failed: %s\n%s%s" % (" ".join(cmd), r.stdout, r.stderr))
    return r.stdout.strip()


def c_array(vals):
    out, line = [], ""
    for v in vals:
        s = "%d, " % v
        if len(line) + len(s) > 90:
            out.append(line.rstrip())
            line = ""
        line += s
    if line:
        out.append(line.rstrip())
    return "\n        ".join(out)


def main():
    os.makedirs(FIX, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="rh_genref_")
    sys.path.insert(0, os.path.join(ROOT, "weights"))
    import importlib.util
    spec = importlib.util.spec_from_file_location("export_mod", EXPORT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sys.modules["export_mod"] = mod
    conv = check_conversions(tmp)
    print("dtype rounding matches torch: bf16 %d values, f16 %d values" % (conv["bf16"],
                                                                          conv["f16"]))
    cases, summary = [], []
    try:
        for v in VARIANTS:
            if v["tok"] == "sp":
                tj, tcfg, n_tok, ids = sp_tokenizer(v["byte_fallback"])
            elif v["tok"] == "spm":
                tj, tcfg, n_tok, ids = spm_tokenizer()
            else:
                tj, tcfg, n_tok, ids = bytelevel_tokenizer(v["tok"])
            vocab = n_tok + v["pad_vocab"]
            seed = 1000 * (VARIANTS.index(v) + 1)
            hd0 = v["head_dim"] or v["dim"] // v["heads"]
            rdim = int(hd0 * v.get("partial", 1.0))
            if v["rope"] == "longrope":  # factor lists of exact f32 values (multiples of 1/8)
                gf = torch.Generator().manual_seed(seed + 999)
                v["short_factor"] = (1 + torch.randint(0, 8, (rdim // 2,), generator=gf) / 8.0).tolist()
                v["long_factor"] = (1 + torch.randint(0, 64, (rdim // 2,), generator=gf) / 8.0).tolist()
            bf16_export = any(dt == "bf16" for dt, _ in v["exports"])
            for attempt in range(1000 if v.get("experts") else 100):
                W = make_weights(v, vocab, seed + attempt)
                hd = v["head_dim"] or v["dim"] // v["heads"]
                rs = v["rope"] if isinstance(v["rope"], dict) else {}
                rtype = rs.get("rope_type", rs.get("type")) if rs else v["rope"]
                c = {"n_heads": v["heads"], "n_kv_heads": v["kv"], "head_dim": hd,
                     "n_layers": v["layers"], "rope_theta": v["theta"],
                     "rope_scaling": {None: 0, "linear": 1, "llama3": 2, "longrope": 3}[rtype],
                     "rope_factor": rs.get("factor", 1.0),
                     "rope_low_freq_factor": rs.get("low_freq_factor", 1.0),
                     "rope_high_freq_factor": rs.get("high_freq_factor", 1.0),
                     "rope_original_max_ctx": rs.get("original_max_position_embeddings",
                                                     v.get("orig_pos", 0)),
                     "rope_dim": 0 if rdim == hd0 else rdim,
                     "short_factor": v.get("short_factor"), "long_factor": v.get("long_factor"),
                     "rope_attn_factor": (math.sqrt(1 + math.log(v["max_pos"] / v["orig_pos"]) /
                                                    math.log(v["orig_pos"]))
                                          if v["rope"] == "longrope" else 0.0),
                     "norm_eps": v["eps"], "qkv_bias": v["arch"] == "Qwen2ForCausalLM",
                     "tied_embeddings": v["tied"], "sliding_window": v.get("window", 0),
                     "window_first_layer": v.get("window_first", 0),
                     "n_experts": v.get("experts", 0), "n_experts_used": v.get("top_k", 0),
                     "top_k": v.get("top_k", 0)}
                g = torch.Generator().manual_seed(seed + attempt + 500)
                # the id sequence: BOS when the model has one, then random ids below n_tok
                seq = torch.randint(0, n_tok, (N_IDS,), generator=g).tolist()
                if ids["bos"] is not None:
                    seq[0] = ids["bos"]
                prompt = seq[:N_PROMPT]
                gen, margins = greedy(W, c, prompt, N_GEN)
                route, same_bf16 = {}, True
                if c["n_experts"]:  # every routing decision the checks make: both sequences
                    forward(W, c, seq, stats=route)
                    forward(W, c, prompt + gen[:-1], stats=route)
                    if bf16_export:
                        # as a bf16 prefill of seq, and of the prompt before decoding, route
                        rb = {}
                        forward(W, c, seq, stats=rb, nr=len(seq))
                        forward(W, c, prompt + gen[:-1], stats=rb, nr=len(prompt))
                        same_bf16 = rb["routes"] == route["routes"]
                if (min(margins) >= MIN_MARGIN and same_bf16 and
                        route.get("route_margin", 1.0) >= MIN_ROUTE_MARGIN):
                    break
            else:
                sys.exit("%s: no seed gives clear greedy margins" % v["name"])
            used_seed = seed + attempt
            if c["rope_scaling"] == 2:  # the three llama3 regimes all occur
                inv0 = rope_inv_freq(dict(c, rope_scaling=0))
                inv1 = rope_inv_freq(c)
                ratio = (inv0 / inv1).tolist()
                assert any(abs(r - 1) < 1e-12 for r in ratio), ratio
                assert any(abs(r - c["rope_factor"]) < 1e-9 for r in ratio), ratio
                assert any(1 + 1e-6 < r < c["rope_factor"] - 1e-6 for r in ratio), ratio
            hf = os.path.join(tmp, v["name"])
            write_hf_dir(hf, v, W, tj, tcfg, vocab, ids)
            files = []
            for dt, flag in v["exports"]:
                fn = "%s.rhw" % v["name"] if dt == "f32" else "%s.%s.rhw" % (v["name"], dt)
                out = os.path.join(FIX, fn)
                line = run_export(hf, out, flag)
                info = rhw_check.read_rhw(out)
                # the exported tensors must be exactly the reference's weights
                for name, t in W.items():
                    got = torch.from_numpy(rhw_check.tensor(info, name))
                    assert torch.equal(got, t), "%s: %s differs after export" % (fn, name)
                cc = info["config"]
                for k in ("n_heads", "n_kv_heads", "head_dim", "n_layers", "rope_scaling",
                          "qkv_bias", "tied_embeddings", "sliding_window", "window_first_layer",
                          "rope_dim", "n_experts", "n_experts_used"):
                    assert cc[k] == c[k], (fn, k, cc[k], c[k])
                for k in ("rope_theta", "rope_factor", "rope_low_freq_factor",
                          "rope_high_freq_factor", "norm_eps"):
                    assert abs(cc[k] - c[k]) <= 1e-6 * abs(c[k]), (fn, k, cc[k], c[k])
                assert cc["rope_original_max_ctx"] == c["rope_original_max_ctx"]
                if c["rope_scaling"] == 3:
                    assert abs(cc["rope_attn_factor"] - c["rope_attn_factor"]) < 1e-6
                    for key in ("short_factor", "long_factor"):
                        got = rhw_check.tensor(info, "rope." + key).tolist()
                        assert got == c[key], (fn, key, got, c[key])
                assert cc["vocab_size"] == vocab and cc["max_ctx"] == v["max_pos"]
                assert cc["bos_id"] == (ids["bos"] if ids["bos"] is not None else -1)
                assert cc["eos_ids"] == (ids["eos"] if v["name"] == "llama3" else ids["eos"][:1])
                files.append((fn, {"f32": 0, "f16": 1, "bf16": 2}[dt], os.path.getsize(out)))
                print("  " + line)
            logits = forward(W, c, seq)
            extra = ""
            if c["rope_scaling"] == 3:  # the long factors must matter past the original context
                short = forward(W, dict(c, long_factor=c["short_factor"]), seq)
                ld = float((logits - short).abs().max())
                assert ld > 0.1, (v["name"], ld)
                extra = "  longrope orig %d (max|logit change| with the short factors %.3f)" % (
                    c["rope_original_max_ctx"], ld)
            if c["rope_dim"]:
                extra += "  rope_dim %d of %d" % (c["rope_dim"], c["head_dim"])
            if c["n_experts"]:  # routing must vary: many distinct expert pairs
                assert len(route["choices"]) >= c["n_experts"], route["choices"]
                extra += ("  %d experts, top-%d: %d distinct expert sets, smallest router margin "
                          "%.4f (>= %g)" % (c["n_experts"], c["top_k"], len(route["choices"]),
                                            route["route_margin"], MIN_ROUTE_MARGIN))
                if bf16_export:
                    extra += ", routes alike with bf16-rounded prefill inputs"
            if c["sliding_window"]:  # the window must matter: without it the logits differ
                full = forward(W, dict(c, sliding_window=0), seq)
                wd = float((logits - full).abs().max())
                assert wd > 0.1, (v["name"], wd)
                assert float((logits[:c["sliding_window"]] - full[:c["sliding_window"]])
                             .abs().max()) < 1e-9  # and inside the first window it does not
                extra = "  window %d from layer %d (max|logit change| without it %.3f)" % (
                    c["sliding_window"], c["window_first_layer"], wd)
            if v.get("masked"):  # layer 1, head 0 uniform: <name>.masked.logits.bin
                ml = forward(W, c, seq, masked=(1, 0))
                md = float((ml - logits).abs().max())
                assert md > 0.01, (v["name"], md)
                with open(os.path.join(FIX, "%s.masked.logits.bin" % v["name"]), "wb") as f:
                    f.write(ml.numpy().astype("<f4").tobytes())
                extra += "  head 1-0 uniform: max|logit change| %.3f" % md
            lp = os.path.join(FIX, "%s.logits.bin" % v["name"])
            with open(lp, "wb") as f:
                f.write(logits.numpy().astype("<f4").tobytes())
            # rounding the f64 reference to f32 for storage costs <= 0.5 ulp (~2e-7 here)
            cases.append(dict(name=v["name"], vocab=vocab, seq=seq, prompt=prompt, gen=gen,
                              files=files, min_margin=min(margins), seed=used_seed,
                              max_abs=float(logits.abs().max())))
            summary.append("%-7s seed %d  vocab %d  max|logit| %.3f  greedy min top-2 margin "
                           "%.4f (steps %d, all >= %.2f)  files %s%s"
                           % (v["name"], used_seed, vocab, float(logits.abs().max()),
                              min(margins), N_GEN, MIN_MARGIN,
                              ", ".join("%s (%d B)" % (f[0], f[2]) for f in files), extra))
            print(summary[-1])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    # the C side: ref_cases.h
    h = ["/* Generated by test/gen_reference.py -- do not edit. Reference logits of each case",
         " * are in test/fixtures/<name>.logits.bin (float32 LE, n_ids x vocab). */",
         "#define REFERENCE_N_IDS %d" % N_IDS, "#define REFERENCE_N_PROMPT %d" % N_PROMPT,
         "#define REFERENCE_N_GEN %d" % N_GEN, ""]
    h.append("typedef struct { const char *file; int dtype; } reference_file;")
    h.append("typedef struct {")
    h.append("    const char *name; int vocab; double min_margin, max_abs;")
    h.append("    int ids[REFERENCE_N_IDS], prompt[REFERENCE_N_PROMPT], gen[REFERENCE_N_GEN];")
    h.append("    int n_files; reference_file files[4];")
    h.append("} reference_case;")
    h.append("static const reference_case reference_cases[] = {")
    for cs in cases:
        h.append("    {\"%s\", %d, %.6f, %.6f," % (cs["name"], cs["vocab"], cs["min_margin"],
                                                 cs["max_abs"]))
        h.append("     {" + c_array(cs["seq"]) + "},")
        h.append("     {" + c_array(cs["prompt"]) + "},")
        h.append("     {" + c_array(cs["gen"]) + "},")
        h.append("     %d, {%s}}," % (len(cs["files"]), ", ".join(
            "{\"%s\", %d}" % (f[0], f[1]) for f in cs["files"])))
    h.append("};")
    h.append("#define REFERENCE_N_CASES ((int)(sizeof reference_cases / sizeof reference_cases[0]))")
    with open(os.path.join(FIX, "ref_cases.h"), "w") as f:
        f.write("\n".join(h) + "\n")
    with open(os.path.join(FIX, "README.txt"), "w") as f:
        f.write("Generated by test/gen_reference.py (do not edit); used by test/test_reference.c.\n"
                "Weights are random and exactly representable in bf16 and f16, so each variant's\n"
                "f32/bf16/f16 exports share one reference (<name>.logits.bin, float32 LE,\n"
                "%d x vocab, computed in float64 with torch).  Greedy: %d tokens after the first\n"
                "%d ids; every step's top-2 margin >= %.2f.\n\n" % (N_IDS, N_GEN, N_PROMPT,
                                                                    MIN_MARGIN))
        f.write("\n".join(summary) + "\n")
    total = sum(os.path.getsize(os.path.join(FIX, x)) for x in os.listdir(FIX))
    print("fixtures: %d bytes in %s" % (total, FIX))


if __name__ == "__main__":
    main()
