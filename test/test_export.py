#!/usr/bin/env python3
"""test_export.py -- bad-input tests of weights/export.py (Python standard library only).

    python3 test/test_export.py        prints one line per failure and "export: N passed, N failed"

Builds tiny Hugging Face directories by hand in a temp dir (config.json, a safetensors file of
zeros, a byte-level tokenizer.json), breaks them one way at a time and checks that export.py
exits with the documented status (1: input refused, 2: bad arguments) and a one-line message
naming the file/key and the problem, that no OUT.tmp is left behind and that an existing OUT is
not clobbered.  One good export is validated with test/rhw_check.py.  Run by test/test_reference.c
(make test) when a python3 is on PATH.
"""

import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
EXPORT = os.path.join(ROOT, "weights", "export.py")
sys.path.insert(0, os.path.join(ROOT, "test"))
import rhw_check  # noqa: E402

D, H, L, NH, NKV, V = 8, 16, 1, 2, 1, 260


def byte_alphabet():
    bs = list(range(33, 127)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for _, c in sorted(zip(bs, cs))]


def tokenizer_json():
    vocab = {ch: i for i, ch in enumerate(byte_alphabet())}
    return {"version": "1.0", "added_tokens": [
        {"id": 256, "content": "<|endoftext|>", "single_word": False, "lstrip": False,
         "rstrip": False, "normalized": False, "special": True}],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                          "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "fuse_unk": False,
                  "byte_fallback": False, "vocab": vocab, "merges": []}}


def base_config(arch="LlamaForCausalLM"):
    return {"architectures": [arch], "model_type": "llama", "hidden_size": D,
            "intermediate_size": H, "num_hidden_layers": L, "num_attention_heads": NH,
            "num_key_value_heads": NKV, "vocab_size": V, "hidden_act": "silu",
            "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
            "rope_scaling": None, "tie_word_embeddings": False, "eos_token_id": 256}


def tensors(cfg):
    hd = D // NH
    q, kv = NH * hd, NKV * hd
    t = [("model.embed_tokens.weight", [V, D])]
    for i in range(L):
        p = "model.layers.%d." % i
        t += [(p + "input_layernorm.weight", [D]), (p + "self_attn.q_proj.weight", [q, D]),
              (p + "self_attn.k_proj.weight", [kv, D]), (p + "self_attn.v_proj.weight", [kv, D])]
        if cfg["architectures"][0] == "Qwen2ForCausalLM":
            t += [(p + "self_attn.q_proj.bias", [q]), (p + "self_attn.k_proj.bias", [kv]),
                  (p + "self_attn.v_proj.bias", [kv])]
        t += [(p + "self_attn.o_proj.weight", [D, q]), (p + "post_attention_layernorm.weight", [D])]
        if cfg["architectures"][0] == "MixtralForCausalLM":  # the router and each expert
            t += [(p + "block_sparse_moe.gate.weight", [cfg["num_local_experts"], D])]
            for e in range(cfg["num_local_experts"]):
                x = p + "block_sparse_moe.experts.%d." % e
                t += [(x + "w1.weight", [H, D]), (x + "w3.weight", [H, D]), (x + "w2.weight", [D, H])]
        else:
            t += [(p + "mlp.gate_proj.weight", [H, D]), (p + "mlp.up_proj.weight", [H, D]),
                  (p + "mlp.down_proj.weight", [D, H])]
    t += [("model.norm.weight", [D])]
    if not cfg.get("tie_word_embeddings"):
        t += [("lm_head.weight", [V, D])]
    if cfg["architectures"][0] == "Phi3ForCausalLM":  # fused as HF's Phi-3 stores them
        out = []
        for n, sh in t:
            if n.endswith("q_proj.weight"):
                out.append((n.replace("q_proj", "qkv_proj"), [q + 2 * kv, D]))
            elif n.endswith("gate_proj.weight"):
                out.append((n.replace("gate_proj", "gate_up_proj"), [2 * H, D]))
            elif not (n.endswith("k_proj.weight") or n.endswith("v_proj.weight") or
                      n.endswith("up_proj.weight")):
                out.append((n, sh))
        t = out
    return t


def f32_tensor(info, name):
    """An f32 tensor of a file rhw_check.read_rhw read, as a list (standard library only)."""
    dt, shape, off, nb = info["tensors"][name]
    assert dt == 0, (name, dt)
    with open(info["path"], "rb") as f:
        f.seek(off)
        return list(struct.unpack("<%df" % (nb // 4), f.read(nb)))


def write_safetensors(path, items, dtype="F32"):
    size = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8}
    hdr, off = {}, 0
    for name, shape in items:
        n = 1
        for d in shape:
            n *= d
        hdr[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + n * size[dtype]]}
        off += n * size[dtype]
    hj = json.dumps(hdr).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)) + hj)
        # small nonzero pattern: 1.0 in every f32 slot (0x3f800000), bf16/f16 1.0 too
        pat = {"F32": struct.pack("<f", 1.0), "F16": b"\x00\x3c", "BF16": b"\x80\x3f",
               "F64": struct.pack("<d", 1.0)}[dtype]
        f.write(pat * (off // size[dtype]))


def make_dir(root, name, cfg=None, items=None, dtype="F32"):
    d = os.path.join(root, name)
    os.makedirs(d)
    cfg = cfg if cfg is not None else base_config()
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f)
    with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer_json(), f, ensure_ascii=False)
    write_safetensors(os.path.join(d, "model.safetensors"),
                      items if items is not None else tensors(cfg), dtype)
    return d


class Runner:
    def __init__(self, tmp):
        self.tmp, self.passed, self.failed = tmp, 0, 0

    def run(self, args):
        r = subprocess.run([sys.executable, EXPORT] + args, capture_output=True, text=True)
        return r.returncode, r.stdout, r.stderr

    def check(self, label, args, rc, *words, out=None):
        code, so, se = self.run(args)
        msg = se.strip()
        ok = code == rc
        if rc == 1:
            ok = ok and len(msg.splitlines()) == 1
        ok = ok and all(w.lower() in msg.lower() for w in words)
        if out is not None:
            ok = ok and not os.path.exists(out + ".tmp")
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL %s: exit %d (want %d), stderr %r (want words %r)"
                  % (label, code, rc, msg[:300], words))
        return code, so, se

    def ok(self, label, cond, detail=""):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL %s %s" % (label, detail))


def main():
    tmp = tempfile.mkdtemp(prefix="rh_test_export_")
    t = Runner(tmp)
    out = os.path.join(tmp, "out.rhw")      # failures must leave this as it was
    ok_out = os.path.join(tmp, "ok.rhw")    # other successful exports
    try:
        # a good export, validated independently
        good = make_dir(tmp, "good")
        code, so, se = t.check("good export", [good, out], 0, out=out)
        if code == 0:
            try:
                info = rhw_check.read_rhw(out)
                t.ok("good export validates", info["config"]["dim"] == D and
                     info["config"]["vocab_size"] == V and info["config"]["eos_ids"] == [256])
            except rhw_check.RhwError as e:
                t.ok("good export validates", False, str(e))
            t.ok("summary line", len(so.strip().splitlines()) == 1 and "params" in so, so)
        before = open(out, "rb").read() if os.path.exists(out) else b""

        # bad arguments: exit 2
        t.check("no arguments", [], 2)
        t.check("bad --dtype", [good, out, "--dtype", "f8"], 2, "dtype")
        t.check("bad --max-ctx", [good, out, "--max-ctx", "0"], 2, "max-ctx")
        t.check("non-integer --max-ctx", [good, out, "--max-ctx", "x"], 2, "max-ctx")
        t.check("unknown flag", [good, out, "--frobnicate"], 2, "frobnicate")
        t.check("--max-ctx beyond the model", [good, out, "--max-ctx", "65"], 1,
                "max-ctx", "max_position_embeddings")

        # refused inputs: exit 1, one line naming the problem
        empty = os.path.join(tmp, "empty")
        os.makedirs(empty)
        t.check("missing config.json", [empty, out], 1, "config.json", "not found", out=out)
        t.check("not a directory", [os.path.join(tmp, "nope"), out], 1, "not a directory")

        def variant(name, mutate=None, items=None, dtype="F32", arch=None):
            cfg = base_config(arch or "LlamaForCausalLM")
            if arch == "MistralForCausalLM":
                cfg["model_type"] = "mistral"
            if arch == "Qwen2ForCausalLM":
                cfg["model_type"] = "qwen2"
            if mutate:
                mutate(cfg)
            return make_dir(tmp, name, cfg, items if items is None else items(cfg), dtype)

        d = variant("arch", lambda c: c.update(architectures=["GPT2LMHeadModel"]))
        t.check("unsupported architecture", [d, out], 1, "architectures", "GPT2LMHeadModel")
        d = variant("qwen3", lambda c: c.update(architectures=["Qwen3ForCausalLM"]))
        t.check("unsupported architecture Qwen3", [d, out], 1, "Qwen3ForCausalLM")
        for typ in ("yarn", "dynamic", "longrope"):
            d = variant("rope_" + typ, lambda c: c.update(rope_scaling={"type": typ,
                                                                        "factor": 2.0}))
            t.check("rope_scaling " + typ, [d, out], 1, "rope_scaling", typ)
        d = variant("rope_llama3_missing",
                    lambda c: c.update(rope_scaling={"rope_type": "llama3", "factor": 8.0}))
        t.check("llama3 rope_scaling without its keys", [d, out], 1, "rope_scaling",
                "low_freq_factor")
        def window_of(path):
            cc = rhw_check.read_rhw(path)["config"]
            return cc["sliding_window"], cc["window_first_layer"]

        d = variant("sw", lambda c: c.update(sliding_window=16), arch="MistralForCausalLM")
        code, _, _ = t.check("sliding window shorter than the context", [d, ok_out], 0)
        if code == 0:
            t.ok("Mistral sliding_window 16 stored (version 2)", window_of(ok_out) == (16, 0) and
                 open(ok_out, "rb").read()[4] == 2)
        for bad in (0, -4, True, "16"):
            d = variant("sw_bad%d" % len(str(bad)) + type(bad).__name__,
                        lambda c: c.update(sliding_window=bad), arch="MistralForCausalLM")
            t.check("sliding_window %r" % (bad,), [d, out], 1, "sliding_window")
        d = variant("sw_huge", lambda c: c.update(sliding_window=1 << 25), arch="MistralForCausalLM")
        t.check("sliding_window past the format's limit", [d, out], 1, "sliding_window")
        d = variant("sw_null", lambda c: c.update(sliding_window=None), arch="MistralForCausalLM")
        code, _, _ = t.check("Mistral sliding_window null", [d, ok_out], 0)
        if code == 0:
            t.ok("no window: version 1", window_of(ok_out) == (0, 0) and
                 open(ok_out, "rb").read()[4] == 1)
        d = variant("sw_default", arch="MistralForCausalLM",
                    mutate=lambda c: c.update(max_position_embeddings=32768))
        code, _, _ = t.check("Mistral default sliding_window 4096", [d, ok_out], 0)
        if code == 0:
            t.ok("Mistral default window 4096", window_of(ok_out) == (4096, 0))
        d = variant("qwen_sw", arch="Qwen2ForCausalLM",
                    mutate=lambda c: c.update(use_sliding_window=True, sliding_window=32,
                                              max_window_layers=0))
        code, _, _ = t.check("Qwen2 use_sliding_window", [d, ok_out], 0)
        if code == 0:
            t.ok("Qwen2 window from max_window_layers", window_of(ok_out) == (32, 0))
        d = variant("qwen_sw_none", arch="Qwen2ForCausalLM",
                    mutate=lambda c: c.update(use_sliding_window=True, sliding_window=32,
                                              max_window_layers=L))
        code, _, _ = t.check("Qwen2 max_window_layers = num_hidden_layers", [d, ok_out], 0)
        if code == 0:
            t.ok("Qwen2 no windowed layer: no window", window_of(ok_out) == (0, 0))
        d = variant("qwen_sw_mwl", arch="Qwen2ForCausalLM",
                    mutate=lambda c: c.update(use_sliding_window=True, sliding_window=32,
                                              max_window_layers=-1))
        t.check("Qwen2 max_window_layers -1", [d, out], 1, "max_window_layers")
        d = variant("qwen_sw_off", arch="Qwen2ForCausalLM",
                    mutate=lambda c: c.update(use_sliding_window=False, sliding_window=32))
        t.check("Qwen2 sliding_window unused", [d, ok_out], 0)
        # Phi-3: fused projections, longrope, partial rotary
        R = (D // NH) // 2

        def phi3(c, **kw):
            c.update(architectures=["Phi3ForCausalLM"], model_type="phi3",
                     original_max_position_embeddings=16, **kw)

        def lr(short=None, long_=None, **kw):
            r = {"type": "longrope", "short_factor": [1.0] * R if short is None else short,
                 "long_factor": [2.0] * R if long_ is None else long_}
            r.update(kw)
            return r

        d = variant("phi3", lambda c: phi3(c))
        code, _, _ = t.check("Phi3ForCausalLM", [d, ok_out], 0)
        if code == 0:
            info = rhw_check.read_rhw(ok_out)
            t.ok("Phi-3: split q/k/v and gate/up, no factor lists",
                 info["tensors"]["model.layers.0.self_attn.k_proj.weight"][1] == (NKV * (D // NH), D)
                 and "model.layers.0.mlp.up_proj.weight" in info["tensors"]
                 and "rope.short_factor" not in info["tensors"])
        d = variant("phi3lr", lambda c: phi3(c, rope_scaling=lr()))
        code, _, _ = t.check("Phi-3 longrope", [d, ok_out], 0)
        if code == 0:
            info = rhw_check.read_rhw(ok_out)
            cc = info["config"]
            want_af = (1 + __import__("math").log(64 / 16) / __import__("math").log(16)) ** 0.5
            t.ok("Phi-3 longrope header and lists", cc["rope_scaling"] == 3 and
                 cc["rope_original_max_ctx"] == 16 and abs(cc["rope_attn_factor"] - want_af) < 1e-6
                 and f32_tensor(info, "rope.long_factor") == [2.0] * R)
        d = variant("phi3lr_af", lambda c: phi3(c, rope_scaling=lr(attention_factor=1.5)))
        code, _, _ = t.check("Phi-3 longrope attention_factor given", [d, ok_out], 0)
        if code == 0:
            t.ok("attention_factor kept", rhw_check.read_rhw(ok_out)["config"]["rope_attn_factor"] == 1.5)
        d = variant("phi3lr_short", lambda c: phi3(c, rope_scaling=lr(short=[1.0] * (R + 1))))
        t.check("longrope short_factor of the wrong length", [d, out], 1, "short_factor", str(R))
        d = variant("phi3lr_long", lambda c: phi3(c, rope_scaling=lr(long_=[1.0] * (R - 1))))
        t.check("longrope long_factor of the wrong length", [d, out], 1, "long_factor", str(R))
        d = variant("phi3lr_neg", lambda c: phi3(c, rope_scaling=lr(long_=[-1.0] * R)))
        t.check("longrope negative factor", [d, out], 1, "long_factor", "positive")
        d = variant("phi3lr_none", lambda c: phi3(c, rope_scaling={"type": "longrope"}))
        t.check("longrope without its lists", [d, out], 1, "short_factor")
        d = variant("llama_lr", lambda c: c.update(rope_scaling=lr()))
        t.check("longrope on Llama", [d, out], 1, "rope_scaling", "longrope")
        d = variant("phi3_partial", lambda c: phi3(c, partial_rotary_factor=0.5))
        code, _, _ = t.check("Phi-3 partial_rotary_factor 0.5", [d, ok_out], 0)
        if code == 0:
            t.ok("rope_dim stored", rhw_check.read_rhw(ok_out)["config"]["rope_dim"] == (D // NH) // 2)
        d = variant("phi3_partial_odd", lambda c: phi3(c, partial_rotary_factor=0.3))
        t.check("partial_rotary_factor giving odd dimensions", [d, out], 1, "partial_rotary_factor")
        d = variant("phi3_sw0", lambda c: phi3(c, sliding_window=0))
        t.check("Phi-3 sliding_window 0", [d, out], 1, "sliding_window")
        d = variant("phi3_sw", lambda c: phi3(c, sliding_window=7))
        code, _, _ = t.check("Phi-3 sliding_window 7", [d, ok_out], 0)
        if code == 0:
            t.ok("Phi-3 window stored", window_of(ok_out) == (7, 0))
        d = variant("phi3_qkv", lambda c: phi3(c), items=lambda c: [
            (n, [s[0] + 1, s[1]] if "qkv_proj" in n else s) for n, s in tensors(c)])
        t.check("Phi-3 qkv_proj of the wrong shape", [d, out], 1, "qkv_proj", "shape")
        d = variant("phi3_gu", lambda c: phi3(c), items=lambda c: [
            x for x in tensors(c) if "gate_up_proj" not in x[0]])
        t.check("Phi-3 without gate_up_proj", [d, out], 1, "gate_up_proj", "missing")

        # Mixtral: a sparse mixture of experts (version 3)
        def mixtral(c, **kw):
            c.update(architectures=["MixtralForCausalLM"], model_type="mixtral",
                     num_local_experts=4, num_experts_per_tok=2, sliding_window=None,
                     router_jitter_noise=0.0, output_router_logits=False)
            c.update(kw)

        d = variant("mixtral", lambda c: mixtral(c))
        code, _, _ = t.check("MixtralForCausalLM", [d, ok_out], 0)
        if code == 0:
            info = rhw_check.read_rhw(ok_out)
            cc = info["config"]
            t.ok("Mixtral: version 3, 4 experts, top-2, router and experts, no dense MLP",
                 open(ok_out, "rb").read()[4] == 3 and cc["n_experts"] == 4 and
                 cc["n_experts_used"] == 2 and
                 info["tensors"]["model.layers.0.block_sparse_moe.gate.weight"][1] == (4, D) and
                 info["tensors"]["model.layers.0.block_sparse_moe.experts.3.w2.weight"][1] == (D, H)
                 and "model.layers.0.mlp.up_proj.weight" not in info["tensors"])
        for k, bad in (("num_experts_per_tok", 5), ("num_experts_per_tok", 0),
                       ("num_local_experts", 257), ("num_local_experts", 0),
                       ("num_experts_per_tok", 1.5)):
            d = variant("mixtral_%s_%s" % (k, str(bad).replace(".", "_")),
                        lambda c: mixtral(c, **{k: bad}) if k != "num_local_experts" else
                        mixtral(c, num_local_experts=bad, num_experts_per_tok=1),
                        items=lambda c: tensors(dict(c, num_local_experts=4)))
            t.check("Mixtral %s %r" % (k, bad), [d, out], 1, k)
        d = variant("mixtral_topk", lambda c: mixtral(c, num_experts_per_tok=5))
        t.check("Mixtral num_experts_per_tok above the experts", [d, out], 1,
                "num_experts_per_tok 5 exceeds num_local_experts 4")
        d = variant("mixtral_router", lambda c: mixtral(c), items=lambda c: [
            (n, [3, s[1]] if n.endswith("gate.weight") else s) for n, s in tensors(c)])
        t.check("Mixtral router of the wrong shape", [d, out], 1, "block_sparse_moe.gate.weight",
                "shape")
        d = variant("mixtral_missing", lambda c: mixtral(c), items=lambda c: [
            x for x in tensors(c) if "experts.3.w2" not in x[0]])
        t.check("Mixtral without an expert's w2", [d, out], 1, "experts.3.w2.weight", "missing")
        d = variant("mixtral_dense", lambda c: mixtral(c), items=lambda c: tensors(
            dict(c, architectures=["LlamaForCausalLM"])))
        t.check("Mixtral with a dense MLP's tensors", [d, out], 1, "block_sparse_moe")
        d = variant("mixtral_sw", lambda c: mixtral(c, sliding_window=16))
        code, _, _ = t.check("Mixtral sliding_window 16", [d, ok_out], 0)
        if code == 0:
            t.ok("Mixtral window stored beside the experts", window_of(ok_out) == (16, 0) and
                 rhw_check.read_rhw(ok_out)["config"]["n_experts"] == 4)
        for moe in ("Qwen2MoeForCausalLM", "Qwen3MoeForCausalLM", "DeepseekV3ForCausalLM"):
            d = variant(moe.lower(), lambda c: c.update(architectures=[moe]))
            t.check("%s refused by name" % moe, [d, out], 1, moe, "not supported")

        d = variant("yi", lambda c: c.update(architectures=["YiForCausalLM"], model_type="Yi"),
                    items=lambda c: [(n.replace("input_layernorm", "ln1")
                                      .replace("post_attention_layernorm", "ln2"), s)
                                     for n, s in tensors(c)])
        code, _, _ = t.check("YiForCausalLM (ln1/ln2) as Llama", [d, ok_out], 0)
        if code == 0:
            names = rhw_check.read_rhw(ok_out)["tensors"]
            t.ok("Yi norms written under Llama's names",
                 "model.layers.0.input_layernorm.weight" in names and
                 "model.layers.0.post_attention_layernorm.weight" in names)
        d = variant("act", lambda c: c.update(hidden_act="gelu"))
        t.check("hidden_act gelu", [d, out], 1, "hidden_act", "gelu")
        d = variant("abias", lambda c: c.update(attention_bias=True))
        t.check("attention_bias", [d, out], 1, "attention_bias")
        d = variant("qwen_abias", arch="Qwen2ForCausalLM",
                    mutate=lambda c: c.update(attention_bias=True))
        t.check("Qwen2 attention_bias (HF's Qwen2 ignores it)", [d, ok_out], 0)
        d = variant("mbias", lambda c: c.update(mlp_bias=True))
        t.check("mlp_bias", [d, out], 1, "mlp_bias")
        d = variant("partial", lambda c: c.update(partial_rotary_factor=0.5))
        t.check("partial rotary", [d, out], 1, "partial_rotary_factor")
        d = variant("hd_odd", lambda c: c.update(head_dim=3))
        t.check("odd head_dim", [d, out], 1, "head_dim")
        d = variant("hd_bad", lambda c: c.update(head_dim=8))
        t.check("head_dim inconsistent with q_proj", [d, out], 1, "q_proj", "shape")
        d = variant("heads", lambda c: c.update(num_key_value_heads=3,
                                               num_attention_heads=2))
        t.check("heads not a multiple of kv heads", [d, out], 1, "num_key_value_heads")
        d = variant("hidden_str", lambda c: c.update(hidden_size="8"))
        t.check("hidden_size not an integer", [d, out], 1, "hidden_size")
        d = variant("eps", lambda c: c.update(rms_norm_eps=-1))
        t.check("negative rms_norm_eps", [d, out], 1, "rms_norm_eps")
        d = variant("eos", lambda c: c.update(eos_token_id=V))
        t.check("eos id out of range", [d, out], 1, "eos_token_id")

        d = variant("missing", items=lambda c: [x for x in tensors(c)
                                                 if "v_proj" not in x[0]])
        t.check("missing tensor", [d, out], 1, "model.layers.0.self_attn.v_proj.weight",
                "missing")
        d = variant("qwen_nobias", arch="Qwen2ForCausalLM",
                    items=lambda c: [x for x in tensors(c) if not x[0].endswith(".bias")])
        t.check("Qwen2 without q/k/v biases", [d, out], 1, "q_proj.bias", "missing")
        d = variant("extra", items=lambda c: tensors(c) + [("model.layers.0.self_attn.o_proj.bias",
                                                            [D])])
        t.check("unexpected tensor", [d, out], 1, "unexpected", "o_proj.bias")
        d = variant("invfreq", items=lambda c: tensors(c) + [
            ("model.layers.0.self_attn.rotary_emb.inv_freq", [2])])
        t.check("rotary_emb.inv_freq is skipped", [d, ok_out], 0)
        d = variant("shape", items=lambda c: [(n, [s[0], s[1] + 1] if n.endswith("up_proj.weight")
                                               else s) for n, s in tensors(c)])
        t.check("wrong tensor shape", [d, out], 1, "up_proj.weight", "shape")
        d = variant("f64", dtype="F64")
        t.check("f64 tensors", [d, out], 1, "dtype", "F64")

        # damaged safetensors files
        d = variant("trunc")
        st = os.path.join(d, "model.safetensors")
        full = open(st, "rb").read()
        for cut in (len(full) - 1, len(full) // 2, 200, 9, 4, 0):
            with open(st, "wb") as f:
                f.write(full[:cut])
            t.check("truncated safetensors at %d" % cut, [d, out], 1, "model.safetensors",
                    out=out)
        with open(st, "wb") as f:
            f.write(struct.pack("<Q", 1 << 40) + full[8:])
        t.check("safetensors header length past the end", [d, out], 1, "header length")
        hl = struct.unpack("<Q", full[:8])[0]
        with open(st, "wb") as f:
            f.write(full[:8] + b"{" * hl + full[8 + hl:])
        t.check("safetensors header not JSON", [d, out], 1, "JSON")

        d = variant("shard")
        os.remove(os.path.join(d, "model.safetensors"))
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
            json.dump({"weight_map": {"model.embed_tokens.weight": "model-00001-of-00002.safetensors"}},
                      f)
        t.check("index names a missing shard", [d, out], 1, "model-00001-of-00002.safetensors",
                "not found")
        d = variant("bin")
        os.remove(os.path.join(d, "model.safetensors"))
        open(os.path.join(d, "pytorch_model.bin"), "wb").close()
        t.check("only a pytorch .bin", [d, out], 1, "safetensors", "pytorch_model.bin")
        d = variant("badjson")
        with open(os.path.join(d, "config.json"), "w") as f:
            f.write("{\"architectures\": [")
        t.check("config.json not JSON", [d, out], 1, "config.json", "JSON")
        d = variant("notok")
        os.remove(os.path.join(d, "tokenizer.json"))
        t.check("no tokenizer", [d, out], 1, "tokenizer")

        d = variant("smallvocab", lambda c: c.update(vocab_size=200),
                    items=lambda c: [(n, [200, s[1]] if s[0] == V and len(s) == 2 else s)
                                     for n, s in tensors(c)])
        t.check("tokenizer larger than vocab_size", [d, out], 1, "vocab_size")
        d = variant("eos9", lambda c: c.update(eos_token_id=list(range(3, 12))))
        t.check("more than 8 eos ids", [d, out], 1, "eos_token_id")
        d = variant("tied_extra", lambda c: c.update(tie_word_embeddings=True),
                    items=lambda c: tensors(c) + [("lm_head.weight", [V, D])])
        t.check("tied embeddings with a stored lm_head", [d, ok_out], 0)
        t.check("unwritable output", [good, os.path.join(tmp, "no", "such", "dir", "x.rhw")], 1,
                "no/such/dir")

        t.ok("failed exports left the previous output alone",
             os.path.exists(out) and open(out, "rb").read() == before)

        # --dtype conversion: works with numpy, else a clear message naming numpy
        try:
            import numpy  # noqa: F401
            have_np = True
        except ImportError:
            have_np = False
        out2 = os.path.join(tmp, "bf16.rhw")
        if have_np:
            code, _, _ = t.check("--dtype bf16", [good, out2, "--dtype", "bf16"], 0)
            if code == 0:
                info = rhw_check.read_rhw(out2)
                t.ok("--dtype bf16 dtypes", all(v[0] == 2 for v in info["tensors"].values()))
        else:
            t.check("--dtype without numpy", [good, out2, "--dtype", "bf16"], 1, "numpy",
                    out=out2)
        d = variant("bf16src", dtype="BF16")
        t.check("bf16 source kept without numpy", [d, out2], 0)
        if os.path.exists(out2):
            info = rhw_check.read_rhw(out2)
            t.ok("bf16 source kept", all(v[0] == 2 for v in info["tensors"].values()))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("export: %d passed, %d failed" % (t.passed, t.failed))
    return 1 if t.failed else 0


if __name__ == "__main__":
    sys.exit(main())
