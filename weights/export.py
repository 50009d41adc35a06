#!/usr/bin/env python3
"""export.py -- a Hugging Face checkpoint directory -> one .rhw file (format: retrieval_heads.h).

    python3 weights/export.py HF_DIR OUT.rhw [--dtype f32|f16|bf16] [--max-ctx N] [--name NAME]

Reads HF_DIR/config.json, the safetensors weights (model.safetensors, or the shards named by
model.safetensors.index.json), the tokenizer (tokenizer.json or tokenizer.model, through
rhw_tok.py beside this script), tokenizer_config.json and generation_config.json (BOS/EOS ids,
add_bos_token, chat_template).

Supported: LlamaForCausalLM (Llama-2, Llama-3.x with rope_scaling llama3, Yi, TinyLlama),
YiForCausalLM (Yi's first configs: Llama with the norms named ln1/ln2), MistralForCausalLM,
Qwen2ForCausalLM, Phi3ForCausalLM (its fused qkv_proj and gate_up_proj are cut by rows into
q/k/v_proj and gate_proj (first half)/up_proj; longrope's short_factor and long_factor are
written as the f32 tensors rope.short_factor and rope.long_factor; partial_rotary_factor as
rope_dim), MixtralForCausalLM (a sparse mixture of experts in every layer: the router
block_sparse_moe.gate and the experts' w1/w3/w2, written in format version 3);
sliding-window attention as the config sets it (written in format version 2; a model without a
window, a partial rotary or longrope is written as version 1).  Anything in the config that would change the math and
that the engine does not implement is refused with a message naming the key: it is never
silently ignored.

Tensors keep their source dtype (bytes copied as they are; the Python standard library is
enough) unless --dtype asks for another; then every tensor is converted with numpy,
round-to-nearest-even, one chunk at a time.  The export streams: at most one chunk of one
tensor is in memory, so a 7B bf16 checkpoint exports in a few hundred MB.  The output is
written to OUT.tmp and renamed when complete.

Exit status: 0 done (a one-line summary on stdout); 1 the input is unsupported or malformed
(one line on stderr naming the file or key and the problem); 2 bad command-line arguments.
"""

import argparse
import copy
import json
import math
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree

# .rhw constants (retrieval_heads.h)
MAGIC = b"RHWF"
VERSION = 1    # written when the model needs no version 2 field (then the file is as before)
VERSION_2 = 2  # adds sliding_window and window_first_layer at header bytes 200..207
VERSION_3 = 3  # adds n_experts and n_experts_used at 216..223 (a mixture of experts)
MAX_EXPERTS = 256
MAX_CTX = 1 << 24
HEADER_BYTES = 256
ALIGN = 64
MAX_EOS = 8
DT_F32, DT_F16, DT_BF16 = 0, 1, 2
DT_NAMES = {DT_F32: "f32", DT_F16: "f16", DT_BF16: "bf16"}
DT_SIZE = {DT_F32: 4, DT_F16: 2, DT_BF16: 2}
ROPE_NONE, ROPE_LINEAR, ROPE_LLAMA3, ROPE_LONGROPE = 0, 1, 2, 3
FLAG_QKV_BIAS, FLAG_TIED, FLAG_ADD_BOS = 1, 2, 4

# safetensors dtype strings we can carry; anything else is refused.
ST_DTYPES = {"F32": DT_F32, "F16": DT_F16, "BF16": DT_BF16}
ST_ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
               "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "U32": 4, "U64": 8}

CHUNK_BYTES = 64 << 20  # streaming copy/convert granularity

# YiForCausalLM (Yi's first releases, remote code) is Llama's math with the two norms named
# ln1 / ln2; they are read under either name and written under Llama's.
ARCHS = {"LlamaForCausalLM": "llama", "MistralForCausalLM": "mistral",
         "Qwen2ForCausalLM": "qwen2", "YiForCausalLM": "llama", "Phi3ForCausalLM": "phi3",
         "MixtralForCausalLM": "mixtral"}
MODEL_TYPES = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM",
               "qwen2": "Qwen2ForCausalLM", "Yi": "YiForCausalLM", "phi3": "Phi3ForCausalLM",
               "mixtral": "MixtralForCausalLM"}
# Mixtures of experts refused by name, with what they would need.
UNSUPPORTED = {
    "Qwen2MoeForCausalLM": "a shared expert with its sigmoid gate beside the routed experts, and "
                           "norm_topk_prob, are not implemented (MixtralForCausalLM is)",
    "Qwen3MoeForCausalLM": "q/k norms and norm_topk_prob are not implemented (MixtralForCausalLM "
                           "is)",
    "DeepseekV2ForCausalLM": "multi-head latent attention and shared experts are not implemented",
    "DeepseekV3ForCausalLM": "multi-head latent attention and shared experts are not implemented",
}
YI_ALIASES = {"input_layernorm.weight": "ln1.weight",
              "post_attention_layernorm.weight": "ln2.weight"}

# Per-family defaults of the HF config classes, for keys a config.json may leave out.
DEFAULTS = {
    "llama": {"max_position_embeddings": 2048, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
              "tie_word_embeddings": False, "hidden_act": "silu"},
    "mistral": {"max_position_embeddings": 4096 * 32, "rms_norm_eps": 1e-6,
                "rope_theta": 10000.0, "tie_word_embeddings": False, "hidden_act": "silu",
                "sliding_window": 4096, "num_key_value_heads": 8},
    "phi3": {"max_position_embeddings": 4096, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
             "tie_word_embeddings": False, "hidden_act": "silu", "sliding_window": None,
             "partial_rotary_factor": 1.0, "original_max_position_embeddings": 4096},
    "qwen2": {"max_position_embeddings": 32768, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
              "tie_word_embeddings": False, "hidden_act": "silu", "use_sliding_window": False,
              "sliding_window": 4096, "num_key_value_heads": 32},
    "mixtral": {"max_position_embeddings": 4096 * 32, "rms_norm_eps": 1e-5, "rope_theta": 1e6,
                "tie_word_embeddings": False, "hidden_act": "silu", "sliding_window": None,
                "num_key_value_heads": 8, "num_local_experts": 8, "num_experts_per_tok": 2},
}

# Config keys of related families that change the math; present with a non-neutral value in
# one of our architectures' configs, they are refused rather than ignored.
MATH_KEYS_NEUTRAL = {
    "attention_bias": False, "mlp_bias": False, "partial_rotary_factor": 1.0,
    "attn_logit_softcapping": None, "final_logit_softcapping": None,
    "query_pre_attn_scalar": None, "use_qk_norm": False, "qk_layernorm": False,
    "embedding_multiplier": 1.0, "logits_scaling": 1.0, "residual_multiplier": 1.0,
    "attention_multiplier": None, "rope_interleaved": False, "alibi": False,
    "use_parallel_residual": False, "no_rope_layers": None, "layer_types": None,
}


class ExportError(Exception):
    """One line: the file or key, and the problem."""


def fail(msg):
    raise ExportError(msg)


# ------------------------------------------------------------------------------------------
# small readers

def read_json(path, required=True):
    if not os.path.exists(path):
        if required:
            fail("%s: file not found" % path)
        return None
    try:
        with open(path, "rb") as f:
            return json.loads(f.read().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        fail("%s: cannot parse JSON: %s" % (path, str(e).splitlines()[0]))


def cfg_int(cfg, key, path, lo=1, hi=1 << 31):
    v = cfg.get(key)
    if isinstance(v, bool) or not isinstance(v, int):
        fail("%s: %s must be an integer, got %r" % (path, key, v))
    if v < lo or v > hi:
        fail("%s: %s = %d out of range [%d, %d]" % (path, key, v, lo, hi))
    return v


def cfg_float(cfg, key, path, default=None, positive=True):
    v = cfg.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        fail("%s: %s must be a number, got %r" % (path, key, v))
    v = float(v)
    if not math.isfinite(v) or (positive and v <= 0):
        fail("%s: %s = %r must be a finite positive number" % (path, key, v))
    if abs(v) > 3.4e38:
        fail("%s: %s = %r does not fit a float32" % (path, key, v))
    return v


# ------------------------------------------------------------------------------------------
# safetensors: u64 LE header length, JSON header {name: {dtype, shape, data_offsets}}, data

class StTensor:
    __slots__ = ("name", "path", "st_dtype", "dtype", "shape", "offset", "nbytes", "data")


def read_safetensors_header(path):
    """Returns {name: StTensor} with every offset checked against the file's size."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                fail("%s: truncated safetensors file (%d bytes, no header length)"
                     % (path, len(head)))
            (hlen,) = struct.unpack("<Q", head)
            if hlen > size - 8 or hlen > (100 << 20):
                fail("%s: safetensors header length %d exceeds the file (%d bytes)"
                     % (path, hlen, size))
            raw = f.read(hlen)
    except OSError as e:
        fail("%s: cannot read: %s" % (path, e.strerror))
    try:
        hdr = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        fail("%s: safetensors header is not valid JSON: %s" % (path, str(e).splitlines()[0]))
    if not isinstance(hdr, dict):
        fail("%s: safetensors header is not a JSON object" % path)
    base = 8 + hlen
    data_len = size - base
    out = {}
    for name, ent in hdr.items():
        if name == "__metadata__":
            continue
        if not isinstance(ent, dict):
            fail("%s: tensor %s: entry is not an object" % (path, name))
        dt, shape, offs = ent.get("dtype"), ent.get("shape"), ent.get("data_offsets")
        if dt not in ST_ITEMSIZE:
            fail("%s: tensor %s: unknown dtype %r" % (path, name, dt))
        if (not isinstance(shape, list) or len(shape) > 8 or
                any(isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in shape)):
            fail("%s: tensor %s: bad shape %r" % (path, name, shape))
        if (not isinstance(offs, list) or len(offs) != 2 or
                any(isinstance(o, bool) or not isinstance(o, int) for o in offs)):
            fail("%s: tensor %s: bad data_offsets %r" % (path, name, offs))
        b, e = offs
        n = 1
        for d in shape:
            n *= d
        if not (0 <= b <= e):
            fail("%s: tensor %s: bad data_offsets %r" % (path, name, offs))
        if e > data_len:
            fail("%s: tensor %s: data [%d, %d) past the end of the file (%d data bytes): "
                 "truncated?" % (path, name, b, e, data_len))
        if e - b != n * ST_ITEMSIZE[dt]:
            fail("%s: tensor %s: %d bytes for shape %r of %s" % (path, name, e - b, shape, dt))
        t = StTensor()
        t.name, t.path, t.st_dtype = name, path, dt
        t.dtype = ST_DTYPES.get(dt)
        t.shape, t.offset, t.nbytes = tuple(shape), base + b, e - b
        out[name] = t
    return out


def load_tensor_index(hf_dir):
    """All tensors of the checkpoint: {name: StTensor}, from one file or the sharded index."""
    idx_path = os.path.join(hf_dir, "model.safetensors.index.json")
    single = os.path.join(hf_dir, "model.safetensors")
    if os.path.exists(idx_path):
        idx = read_json(idx_path)
        wm = idx.get("weight_map") if isinstance(idx, dict) else None
        if not isinstance(wm, dict) or not wm:
            fail("%s: weight_map missing or empty" % idx_path)
        files = []
        for name, fn in wm.items():
            if not isinstance(fn, str) or os.sep in fn or fn.startswith("."):
                fail("%s: weight_map[%s]: bad file name %r" % (idx_path, name, fn))
            if fn not in files:
                files.append(fn)
        tensors = {}
        for fn in files:
            p = os.path.join(hf_dir, fn)
            if not os.path.exists(p):
                fail("%s: shard named in %s not found" % (p, os.path.basename(idx_path)))
            for name, t in read_safetensors_header(p).items():
                if name in tensors:
                    fail("%s: tensor %s also in %s" % (p, name, tensors[name].path))
                tensors[name] = t
        for name, fn in wm.items():
            t = tensors.get(name)
            if t is None or os.path.basename(t.path) != fn:
                fail("%s: tensor %s: weight_map says %s, not found there"
                     % (idx_path, name, fn))
        return tensors
    if os.path.exists(single):
        files = [single]
    else:
        files = sorted(os.path.join(hf_dir, f) for f in os.listdir(hf_dir)
                       if f.endswith(".safetensors"))
        if not files:
            bins = [f for f in os.listdir(hf_dir) if f.endswith(".bin") or f.endswith(".pt")]
            hint = (" (PyTorch pickles such as %s are not read: convert to safetensors)"
                    % bins[0]) if bins else ""
            fail("%s: no *.safetensors weights found%s" % (hf_dir, hint))
    tensors = {}
    for p in files:
        for name, t in read_safetensors_header(p).items():
            if name in tensors:
                fail("%s: tensor %s also in %s" % (p, name, tensors[name].path))
            tensors[name] = t
    return tensors


# ------------------------------------------------------------------------------------------
# the model config: config.json -> .rhw header fields, refusing what we do not implement

def parse_config(hf_dir, max_ctx_arg):
    path = os.path.join(hf_dir, "config.json")
    cfg = read_json(path)
    if not isinstance(cfg, dict):
        fail("%s: not a JSON object" % path)
    archs = cfg.get("architectures")
    if archs is None:
        mt = cfg.get("model_type")
        if mt not in MODEL_TYPES:
            fail("%s: architectures missing and model_type %r is not one of %s"
                 % (path, mt, ", ".join(sorted(MODEL_TYPES))))
        archs = [MODEL_TYPES[mt]]
    if not isinstance(archs, list) or len(archs) != 1 or not isinstance(archs[0], str):
        fail("%s: architectures must list exactly one architecture, got %r" % (path, archs))
    arch = archs[0]
    if arch in UNSUPPORTED:
        fail("%s: architectures: %s is not supported: %s" % (path, arch, UNSUPPORTED[arch]))
    if arch not in ARCHS:
        fail("%s: architectures: %s is not supported (supported: %s)"
             % (path, arch, ", ".join(sorted(ARCHS))))
    fam = ARCHS[arch]
    d = dict(DEFAULTS[fam])
    d.update({k: v for k, v in cfg.items()})
    c = {"arch": arch, "family": fam}

    c["dim"] = cfg_int(d, "hidden_size", path)
    c["hidden_dim"] = cfg_int(d, "intermediate_size", path)
    c["n_layers"] = cfg_int(d, "num_hidden_layers", path, hi=100000)
    c["n_heads"] = cfg_int(d, "num_attention_heads", path, hi=100000)
    if d.get("num_key_value_heads") is None:
        d["num_key_value_heads"] = c["n_heads"]
    c["n_kv_heads"] = cfg_int(d, "num_key_value_heads", path, hi=100000)
    c["vocab_size"] = cfg_int(d, "vocab_size", path)
    if c["n_heads"] % c["n_kv_heads"]:
        fail("%s: num_attention_heads %d is not a multiple of num_key_value_heads %d"
             % (path, c["n_heads"], c["n_kv_heads"]))
    if d.get("head_dim") is not None:
        c["head_dim"] = cfg_int(d, "head_dim", path, hi=1 << 16)
    else:
        if c["dim"] % c["n_heads"]:
            fail("%s: head_dim: hidden_size %d is not a multiple of num_attention_heads %d"
                 % (path, c["dim"], c["n_heads"]))
        c["head_dim"] = c["dim"] // c["n_heads"]
    if c["head_dim"] % 2:
        fail("%s: head_dim %d is odd: RoPE needs an even head_dim" % (path, c["head_dim"]))

    act = d.get("hidden_act")
    if act != "silu":
        fail("%s: hidden_act %r is not supported (only silu)" % (path, act))
    for key, neutral in MATH_KEYS_NEUTRAL.items():
        # Qwen2's attention has q/k/v biases and no o bias whatever attention_bias says (HF's
        # Qwen2Attention does not read the key); a stray o_proj.bias is refused as a tensor.
        if key == "attention_bias" and fam == "qwen2":
            continue
        if key == "partial_rotary_factor" and fam == "phi3":
            continue  # Phi-3 (Phi-4-mini) rotates part of each head: rope_dim below
        if key in cfg and cfg[key] != neutral and cfg[key] is not None:
            if key == "partial_rotary_factor" and cfg[key] == 1:
                continue
            what = {"attention_bias": " (q/k/v/o projection biases)",
                    "mlp_bias": " (MLP biases)"}.get(key, "")
            fail("%s: %s = %r is not supported%s" % (path, key, cfg[key], what))

    c["norm_eps"] = cfg_float(d, "rms_norm_eps", path)
    c["rope_theta"] = cfg_float(d, "rope_theta", path)
    tied = d.get("tie_word_embeddings")
    if not isinstance(tied, bool):
        fail("%s: tie_word_embeddings must be true or false, got %r" % (path, tied))
    c["tied"] = tied
    c["qkv_bias"] = fam == "qwen2"

    # a sparse mixture of experts (HF MixtralSparseMoeBlock): softmax over num_local_experts
    # router logits, the num_experts_per_tok largest, renormalised; router_jitter_noise acts
    # only in training, the aux-loss keys too
    c["n_experts"], c["n_experts_used"] = 0, 0
    if fam == "mixtral":
        c["n_experts"] = cfg_int(d, "num_local_experts", path, hi=MAX_EXPERTS)
        c["n_experts_used"] = cfg_int(d, "num_experts_per_tok", path, hi=1 << 31)
        if c["n_experts_used"] > c["n_experts"]:
            fail("%s: num_experts_per_tok %d exceeds num_local_experts %d"
                 % (path, c["n_experts_used"], c["n_experts"]))

    mpe = cfg_int(d, "max_position_embeddings", path)
    if max_ctx_arg is not None and max_ctx_arg > mpe:
        fail("--max-ctx %d exceeds max_position_embeddings %d of %s" % (max_ctx_arg, mpe, path))
    c["max_ctx"] = max_ctx_arg if max_ctx_arg is not None else mpe

    # partial rotary (Phi-3): RoPE on the first int(head_dim * factor) dimensions of a head
    c["rope_dim"] = 0
    if fam == "phi3":
        prf = cfg_float(d, "partial_rotary_factor", path)
        if prf > 1:
            fail("%s: partial_rotary_factor %r must be in (0, 1]" % (path, prf))
        rd = int(c["head_dim"] * prf)
        if rd < 2 or rd % 2:
            fail("%s: partial_rotary_factor %r gives %d rotary dimensions of head_dim %d (must be "
                 "even and >= 2)" % (path, prf, rd, c["head_dim"]))
        c["rope_dim"] = 0 if rd == c["head_dim"] else rd
    R = (c["rope_dim"] or c["head_dim"]) // 2

    # RoPE scaling: none, linear, llama3, longrope (Phi-3); everything else changes the math we
    # implement.
    c["rope_scaling"], c["rope_factor"] = ROPE_NONE, 1.0
    c["rope_low"], c["rope_high"], c["rope_orig"] = 1.0, 1.0, 0
    c["rope_attn"], c["rope_short"], c["rope_long"] = 0.0, None, None
    rs = d.get("rope_scaling")
    if rs is not None:
        if not isinstance(rs, dict):
            fail("%s: rope_scaling must be an object or null, got %r" % (path, rs))
        rtype = rs.get("rope_type", rs.get("type", "default"))
        if rtype == "default":
            pass
        elif rtype == "linear":
            c["rope_scaling"] = ROPE_LINEAR
            c["rope_factor"] = cfg_float(rs, "factor", path + ": rope_scaling")
        elif rtype in ("longrope", "su") and fam == "phi3":
            # HF _compute_longrope_parameters ("su" is its old name): inv_freq[i] =
            # 1 / (ext[i] theta^(2i/2R)), ext = long_factor while the sequence is longer than
            # original_max_position_embeddings, else short_factor; cos and sin times
            # attention_factor, by default sqrt(1 + ln(s) / ln(orig)), s = max_position_embeddings
            # / original_max_position_embeddings (1 when s <= 1).
            rp = path + ": rope_scaling"
            c["rope_scaling"] = ROPE_LONGROPE
            for key in ("short_factor", "long_factor"):
                v = rs.get(key)
                if (not isinstance(v, list) or
                        any(isinstance(x, bool) or not isinstance(x, (int, float)) or
                            not math.isfinite(x) or x <= 0 for x in v)):
                    fail("%s: %s must be a list of positive numbers" % (rp, key))
                if len(v) != R:
                    fail("%s: %s has %d entries, expected %d (rotary dimensions / 2)"
                         % (rp, key, len(v), R))
                c["rope_" + key.split("_")[0]] = [float(x) for x in v]
            orig = d.get("original_max_position_embeddings", rs.get(
                "original_max_position_embeddings"))
            if orig is None:
                orig = mpe
                factor = rs.get("factor") or 1.0
            else:
                orig = cfg_int({"original_max_position_embeddings": orig},
                               "original_max_position_embeddings", path)
                factor = mpe / orig
            af = rs.get("attention_factor")
            if af is None:
                af = 1.0 if factor <= 1.0 else math.sqrt(1 + math.log(factor) / math.log(orig))
            else:
                af = cfg_float(rs, "attention_factor", rp)
            c["rope_orig"], c["rope_attn"] = orig, af
        elif rtype == "llama3":
            if fam != "llama":
                fail("%s: rope_scaling type llama3 is only supported for LlamaForCausalLM"
                     % path)
            rp = path + ": rope_scaling"
            c["rope_scaling"] = ROPE_LLAMA3
            c["rope_factor"] = cfg_float(rs, "factor", rp)
            c["rope_low"] = cfg_float(rs, "low_freq_factor", rp)
            c["rope_high"] = cfg_float(rs, "high_freq_factor", rp)
            c["rope_orig"] = cfg_int(rs, "original_max_position_embeddings", rp)
            if c["rope_high"] <= c["rope_low"]:
                fail("%s: rope_scaling high_freq_factor %r must exceed low_freq_factor %r"
                     % (path, c["rope_high"], c["rope_low"]))
        else:
            fail("%s: rope_scaling type %r is not supported (only linear, llama3 and, for "
                 "Phi3ForCausalLM, longrope)" % (path, rtype))

    # Sliding-window attention (format version 2): position i attends to i - W < j <= i, as
    # HF's masking_utils.sliding_window_overlay.  Mistral: every layer when sliding_window is
    # set; Qwen2: with use_sliding_window, the layers from max_window_layers on (HF's
    # layer_types: "sliding_attention" for i >= max_window_layers).
    c["sliding_window"], c["window_first_layer"] = 0, 0
    first = 0
    if fam in ("mistral", "phi3", "mixtral"):
        sw = d.get("sliding_window")
        uses_sw = sw is not None
    elif fam == "qwen2":
        sw = d.get("sliding_window")
        uses_sw = bool(d.get("use_sliding_window")) and sw is not None
        if uses_sw:
            first = cfg_int(d, "max_window_layers", path, lo=0, hi=1 << 31)
            if first >= c["n_layers"]:
                uses_sw = False  # no layer is windowed
    else:
        sw, uses_sw = None, False
    if uses_sw:
        if isinstance(sw, bool) or not isinstance(sw, int) or sw <= 0:
            fail("%s: sliding_window must be a positive integer (or null for none), got %r"
                 % (path, sw))
        if sw > MAX_CTX:
            fail("%s: sliding_window %d exceeds the format's limit of %d" % (path, sw, MAX_CTX))
        c["sliding_window"], c["window_first_layer"] = sw, first
    return c, cfg


# ------------------------------------------------------------------------------------------
# BOS / EOS / add_bos / chat template

def token_ids_by_content(hf_dir):
    """{content: id} of tokenizer.json's added tokens (to resolve BOS/EOS given as strings)."""
    tj = read_json(os.path.join(hf_dir, "tokenizer.json"), required=False)
    out = {}
    if isinstance(tj, dict):
        for t in tj.get("added_tokens") or []:
            if isinstance(t, dict) and isinstance(t.get("content"), str):
                if isinstance(t.get("id"), int):
                    out[t["content"]] = t["id"]
        model = tj.get("model")
        vocab = model.get("vocab") if isinstance(model, dict) else None
        if isinstance(vocab, dict):
            for k, v in vocab.items():
                if isinstance(v, int):
                    out.setdefault(k, v)
    return out


def token_content(v):
    if isinstance(v, str):
        return v
    if isinstance(v, dict) and isinstance(v.get("content"), str):
        return v["content"]
    return None


def special_ids(hf_dir, cfg, fam, vocab_size, tok_info):
    """bos_id (-1 if none), eos ids (list), add_bos, chat_template (str or None).
    generation_config.json, then config.json, then tokenizer_config.json's token strings, then
    what rhw_tok.py found in the tokenizer files (tok_info)."""
    gpath = os.path.join(hf_dir, "generation_config.json")
    tpath = os.path.join(hf_dir, "tokenizer_config.json")
    gen = read_json(gpath, required=False) or {}
    tcfg = read_json(tpath, required=False) or {}
    if not isinstance(gen, dict):
        fail("%s: not a JSON object" % gpath)
    if not isinstance(tcfg, dict):
        fail("%s: not a JSON object" % tpath)
    by_content = None

    def resolve(key):
        nonlocal by_content
        for src, where in ((gen, gpath), (cfg, os.path.join(hf_dir, "config.json"))):
            if src.get(key + "_token_id") is not None:
                return src[key + "_token_id"], where
        s = token_content(tcfg.get(key + "_token"))
        if s is not None:
            if by_content is None:
                by_content = token_ids_by_content(hf_dir)
            if s in by_content:
                return by_content[s], tpath
            fail("%s: %s_token %r is not in the vocabulary" % (tpath, key, s))
        return None, None

    bos, where = resolve("bos")
    if bos is None and isinstance(tok_info.get("bos_id"), int) and tok_info["bos_id"] >= 0:
        bos, where = tok_info["bos_id"], "tokenizer"
    if bos is None:
        bos_id = -1
    else:
        if isinstance(bos, list) and len(bos) == 1:
            bos = bos[0]
        if isinstance(bos, bool) or not isinstance(bos, int) or not 0 <= bos < vocab_size:
            fail("%s: bos_token_id %r is not a token id below vocab_size %d"
                 % (where, bos, vocab_size))
        bos_id = bos
    eos, where = resolve("eos")
    if eos is None and tok_info.get("eos_ids"):
        eos, where = list(tok_info["eos_ids"]), "tokenizer"
    if eos is None:
        eos_ids = []
    else:
        eos_ids = eos if isinstance(eos, list) else [eos]
        for e in eos_ids:
            if isinstance(e, bool) or not isinstance(e, int) or not 0 <= e < vocab_size:
                fail("%s: eos_token_id %r is not a token id below vocab_size %d"
                     % (where, e, vocab_size))
        eos_ids = list(dict.fromkeys(eos_ids))  # drop repeats, keep order
        if len(eos_ids) > MAX_EOS:
            fail("%s: eos_token_id lists %d ids (at most %d)" % (where, len(eos_ids), MAX_EOS))

    # add_bos: tokenizer_config's add_bos_token; else a fast tokenizer's post-processor
    # (TemplateProcessing that starts with the BOS token); else the slow tokenizer's default
    # (LlamaTokenizer adds BOS; Qwen2's tokenizer has no BOS).
    ab = tcfg.get("add_bos_token")
    if isinstance(ab, bool):
        add_bos = ab
    elif ab is not None:
        fail("%s: add_bos_token must be true or false, got %r" % (tpath, ab))
    else:
        add_bos = None
        tj = read_json(os.path.join(hf_dir, "tokenizer.json"), required=False)
        if isinstance(tj, dict) and "post_processor" in tj:
            add_bos = post_processor_adds_bos(tj.get("post_processor"), bos_id)
        if add_bos is None:
            add_bos = fam in ("llama", "mistral") and bos_id >= 0
    if add_bos and bos_id < 0:
        fail("%s: add_bos_token is true but no BOS token id is known" % tpath)

    ct = tcfg.get("chat_template")
    if isinstance(ct, list):  # [{name, template}, ...]: the one named "default"
        ct = next((e.get("template") for e in ct
                   if isinstance(e, dict) and e.get("name") == "default"), None)
    if ct is None:
        jp = os.path.join(hf_dir, "chat_template.jinja")
        if os.path.exists(jp):
            with open(jp, "rb") as f:
                ct = f.read().decode("utf-8", "replace")
    if ct is not None and not isinstance(ct, str):
        fail("%s: chat_template must be a string" % tpath)
    return bos_id, eos_ids, add_bos, ct


def post_processor_adds_bos(pp, bos_id):
    """True/False when the tokenizer.json post-processor decides, None when it says nothing."""
    if not isinstance(pp, dict):
        return None
    if pp.get("type") == "Sequence":
        for p in pp.get("processors") or []:
            r = post_processor_adds_bos(p, bos_id)
            if r is not None:
                return r
        return None
    if pp.get("type") != "TemplateProcessing":
        return None
    single = pp.get("single")
    if not isinstance(single, list) or not single:
        return None
    first = single[0]
    if isinstance(first, dict) and "SpecialToken" in first:
        name = first["SpecialToken"].get("id")
        ids = (pp.get("special_tokens") or {}).get(name, {}).get("ids")
        return bool(ids) and ids[0] == bos_id
    return False


# ------------------------------------------------------------------------------------------
# the tensor plan: which HF tensors, in which order, with which shapes

def expected_tensors(c):
    D, H, L = c["dim"], c["hidden_dim"], c["n_layers"]
    q, kv = c["n_heads"] * c["head_dim"], c["n_kv_heads"] * c["head_dim"]
    out = [("model.embed_tokens.weight", (c["vocab_size"], D))]
    for i in range(L):
        p = "model.layers.%d." % i
        out.append((p + "input_layernorm.weight", (D,)))
        out.append((p + "self_attn.q_proj.weight", (q, D)))
        out.append((p + "self_attn.k_proj.weight", (kv, D)))
        out.append((p + "self_attn.v_proj.weight", (kv, D)))
        if c["qkv_bias"]:
            out.append((p + "self_attn.q_proj.bias", (q,)))
            out.append((p + "self_attn.k_proj.bias", (kv,)))
            out.append((p + "self_attn.v_proj.bias", (kv,)))
        out.append((p + "self_attn.o_proj.weight", (D, q)))
        out.append((p + "post_attention_layernorm.weight", (D,)))
        if c["n_experts"]:
            out.append((p + "block_sparse_moe.gate.weight", (c["n_experts"], D)))
            for e in range(c["n_experts"]):
                q_ = p + "block_sparse_moe.experts.%d." % e
                out.append((q_ + "w1.weight", (H, D)))
                out.append((q_ + "w3.weight", (H, D)))
                out.append((q_ + "w2.weight", (D, H)))
            continue
        out.append((p + "mlp.gate_proj.weight", (H, D)))
        out.append((p + "mlp.up_proj.weight", (H, D)))
        out.append((p + "mlp.down_proj.weight", (D, H)))
    out.append(("model.norm.weight", (D,)))
    if not c["tied"]:
        out.append(("lm_head.weight", (c["vocab_size"], D)))
    if c["rope_scaling"] == ROPE_LONGROPE:
        R = (c["rope_dim"] or c["head_dim"]) // 2
        out.append(("rope.short_factor", (R,)))
        out.append(("rope.long_factor", (R,)))
    return out


def row_slice(t, name, r0, r1):
    """Rows r0..r1-1 of a row-major 2-D tensor, as a tensor of its own (a byte range of it)."""
    s = copy.copy(t)
    cols = t.shape[1]
    item = ST_ITEMSIZE[t.st_dtype]
    s.name, s.shape = name, (r1 - r0, cols)
    s.offset, s.nbytes = t.offset + r0 * cols * item, (r1 - r0) * cols * item
    return s


def phi3_split(c, tensors, used):
    """Phi-3's fused projections, cut by rows into the tensors the format lists: qkv_proj
    [q + 2 kv, D] into q_proj, k_proj, v_proj (HF Phi3Attention slices the output that way),
    gate_up_proj [2 H, D] into gate_proj (the first half: HF Phi3MLP's chunk(2) gives gate
    first) and up_proj.  Adds them to tensors; the fused names go into used."""
    D, H = c["dim"], c["hidden_dim"]
    q, kv = c["n_heads"] * c["head_dim"], c["n_kv_heads"] * c["head_dim"]
    for i in range(c["n_layers"]):
        p = "model.layers.%d." % i
        for fused, want, parts in (
                (p + "self_attn.qkv_proj.weight", (q + 2 * kv, D),
                 [("self_attn.q_proj.weight", 0, q), ("self_attn.k_proj.weight", q, q + kv),
                  ("self_attn.v_proj.weight", q + kv, q + 2 * kv)]),
                (p + "mlp.gate_up_proj.weight", (2 * H, D),
                 [("mlp.gate_proj.weight", 0, H), ("mlp.up_proj.weight", H, 2 * H)])):
            t = tensors.get(fused)
            if t is None:
                fail("%s: tensor %s is missing (Phi3ForCausalLM)" % (c["hf_dir"], fused))
            if t.shape != want:
                fail("%s: tensor %s: shape %s, expected %s from config.json"
                     % (t.path, fused, list(t.shape), list(want)))
            for name, r0, r1 in parts:
                if p + name in tensors:
                    fail("%s: tensor %s beside the fused %s" % (tensors[p + name].path,
                                                               p + name, fused))
                tensors[p + name] = row_slice(t, p + name, r0, r1)
            used.add(fused)


def synthetic(name, values):
    """An f32 tensor that export.py makes (longrope's factor lists), not read from a file."""
    t = StTensor()
    t.name, t.path, t.st_dtype, t.dtype = name, None, "F32", DT_F32
    t.shape, t.offset = (len(values),), 0
    t.data = struct.pack("<%df" % len(values), *values)
    t.nbytes = len(t.data)
    return t


def plan_tensors(c, tensors, hf_dir):
    plan = []
    exp = expected_tensors(c)
    names = set(n for n, _ in exp)
    used = set()
    tensors = dict(tensors)
    if c["family"] == "phi3":
        c["hf_dir"] = hf_dir
        phi3_split(c, tensors, used)
    if c["rope_scaling"] == ROPE_LONGROPE:
        tensors["rope.short_factor"] = synthetic("rope.short_factor", c["rope_short"])
        tensors["rope.long_factor"] = synthetic("rope.long_factor", c["rope_long"])
    for name, shape in exp:
        t = tensors.get(name)
        if t is None and c["arch"] == "YiForCausalLM":
            for llama_name, yi_name in YI_ALIASES.items():
                if name.endswith("." + llama_name):
                    alias = name[:-len(llama_name)] + yi_name
                    if alias in tensors:
                        t = copy.copy(tensors[alias])
                        t.name = name
                        used.add(alias)
        if t is None:
            hint = ""
            if name.endswith("_proj.bias"):
                hint = " (Qwen2 has q/k/v biases)"
            elif name == "lm_head.weight":
                hint = " (tie_word_embeddings is false)"
            fail("%s: tensor %s is missing%s" % (hf_dir, name, hint))
        if t.dtype is None:
            fail("%s: tensor %s: dtype %s is not supported (f32, f16, bf16)"
                 % (t.path, name, t.st_dtype))
        if t.shape != shape:
            fail("%s: tensor %s: shape %s, expected %s from config.json"
                 % (t.path, name, list(t.shape), list(shape)))
        plan.append(t)
    for name in sorted(tensors):
        if name in names or name in used:
            continue
        if name.endswith(".rotary_emb.inv_freq"):
            continue  # a cache HF recomputes from rope_theta
        if name == "lm_head.weight" and c["tied"]:
            continue  # tied: HF uses the embedding, so do we
        fail("%s: unexpected tensor %s (not part of %s as configured)"
             % (tensors[name].path, name, c["arch"]))
    return plan


# ------------------------------------------------------------------------------------------
# dtype conversion (numpy only here), chunked, round-to-nearest-even

def converter(src, dst, name):
    """A function bytes -> bytes converting a chunk of src-dtype values to dst."""
    try:
        import numpy as np
    except ImportError:
        fail("--dtype %s: converting tensor %s from %s needs numpy, which this python3 "
             "lacks (keep the source dtype, or run with a python3 that has numpy)"
             % (DT_NAMES[dst], name, DT_NAMES[src]))

    def to_f32(b):
        if src == DT_F32:
            return np.frombuffer(b, dtype="<f4")
        if src == DT_F16:
            return np.frombuffer(b, dtype="<f2").astype(np.float32)
        u = np.frombuffer(b, dtype="<u2").astype(np.uint32) << np.uint32(16)
        return u.view(np.float32)

    def from_f32(x):
        if dst == DT_F32:
            return x.astype("<f4").tobytes()
        if dst == DT_F16:
            with np.errstate(over="ignore"):
                h = x.astype("<f2")  # IEEE round-to-nearest-even, subnormals included
            bad = np.isinf(h) & np.isfinite(x)
            if bad.any():
                v = x[np.argmax(bad)]
                fail("--dtype f16: tensor %s: value %r overflows f16" % (name, float(v)))
            return h.tobytes()
        u = x.view(np.uint32)
        nan = np.isnan(x)
        # RNE: add 0x7fff plus the lowest kept bit, then truncate; NaN stays a quiet NaN.
        r = ((u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1)))
             >> np.uint32(16)).astype(np.uint16)
        if nan.any():
            r[nan] = ((u[nan] >> np.uint32(16)) | np.uint32(0x40)).astype(np.uint16)
        bad = ((r & np.uint16(0x7FFF)) == np.uint16(0x7F80)) & np.isfinite(x)
        if bad.any():
            v = x[np.argmax(bad)]
            fail("--dtype bf16: tensor %s: value %r overflows bf16" % (name, float(v)))
        return r.astype("<u2").tobytes()

    return lambda b: from_f32(to_f32(b))


# ------------------------------------------------------------------------------------------
# .rhw writer

def pad_to(n, a=ALIGN):
    return (n + a - 1) // a * a


def meta_section(entries):
    out = [struct.pack("<I", len(entries))]
    for k, v in entries:
        kb, vb = k.encode("ascii"), v.encode("utf-8")
        out.append(struct.pack("<I", len(kb)) + kb + struct.pack("<I", len(vb)) + vb)
    return b"".join(out)


def dir_entry(name, dtype, shape, offset, nbytes):
    nb = name.encode("ascii")
    return (struct.pack("<I", len(nb)) + nb + struct.pack("<II", dtype, len(shape)) +
            b"".join(struct.pack("<Q", d) for d in shape) + struct.pack("<QQ", offset, nbytes))


def header_bytes(c, bos_id, eos_ids, add_bos, sections, n_tensors, data_off, data_size, fsize):
    flags = ((FLAG_QKV_BIAS if c["qkv_bias"] else 0) | (FLAG_TIED if c["tied"] else 0) |
             (FLAG_ADD_BOS if add_bos else 0))
    eos8 = list(eos_ids) + [0] * (MAX_EOS - len(eos_ids))
    v2 = (c["sliding_window"] or c["window_first_layer"] or c["rope_dim"] or
          c["rope_scaling"] == ROPE_LONGROPE)
    version = VERSION_3 if c["n_experts"] else VERSION_2 if v2 else VERSION
    h = struct.pack("<4sIII", MAGIC, version, HEADER_BYTES, 0)
    h += struct.pack("<8I", c["dim"], c["hidden_dim"], c["n_layers"], c["n_heads"],
                     c["n_kv_heads"], c["head_dim"], c["vocab_size"], c["max_ctx"])
    h += struct.pack("<fIfffIfI", c["rope_theta"], c["rope_scaling"], c["rope_factor"],
                     c["rope_low"], c["rope_high"], c["rope_orig"], c["norm_eps"], flags)
    h += struct.pack("<iI8i", bos_id, len(eos_ids), *eos8)
    (mo, ms), (to, ts), (do, ds) = sections
    h += struct.pack("<6Q", mo, ms, to, ts, do, ds)
    h += struct.pack("<II", n_tensors, 0)
    h += struct.pack("<3Q", data_off, data_size, fsize)
    assert len(h) == 200, len(h)
    h += struct.pack("<IIIf", c["sliding_window"], c["window_first_layer"], c["rope_dim"],
                     c["rope_attn"])
    h += struct.pack("<II", c["n_experts"], c["n_experts_used"])
    return h + b"\0" * (HEADER_BYTES - len(h))


def load_tokenizer(hf_dir, vocab_size):
    """(section bytes, info) from rhw_tok.py (owned by the tokenizer; beside this script)."""
    sys.path.insert(0, HERE)
    try:
        import rhw_tok
    except ImportError as e:
        fail("%s: cannot import rhw_tok.py (the tokenizer section builder): %s"
             % (os.path.join(HERE, "rhw_tok.py"), e))
    finally:
        sys.path.pop(0)
    try:
        sec, info = rhw_tok.tokenizer_section(hf_dir)
    except ValueError as e:  # rhw_tok's documented refusal: one line naming the problem
        fail(str(e).splitlines()[0] if str(e) else "%s: tokenizer refused" % hf_dir)
    except (KeyError, TypeError, AttributeError, IndexError, UnicodeDecodeError) as e:
        fail("%s: tokenizer files malformed (%s: %s)" % (hf_dir, type(e).__name__, e))
    n_tok = info.get("n_tokens") if isinstance(info, dict) else None
    if not isinstance(n_tok, int) or n_tok > vocab_size:
        fail("%s: the tokenizer has %r tokens, more than vocab_size %d in config.json"
             % (hf_dir, n_tok, vocab_size))
    return bytes(sec), info


def export(hf_dir, out_path, dtype_arg, max_ctx_arg, name_arg):
    if not os.path.isdir(hf_dir):
        fail("%s: not a directory" % hf_dir)
    c, cfg = parse_config(hf_dir, max_ctx_arg)
    tensors = load_tensor_index(hf_dir)
    plan = plan_tensors(c, tensors, hf_dir)
    tok, tok_info = load_tokenizer(hf_dir, c["vocab_size"])
    bos_id, eos_ids, add_bos, chat_template = special_ids(hf_dir, cfg, c["family"],
                                                          c["vocab_size"], tok_info)

    # --dtype converts every tensor but longrope's factor lists (f32: they set the frequencies)
    out_dt = {t.name: (DT_F32 if dtype_arg == "f32" or t.name.startswith("rope.") else
                       DT_F16 if dtype_arg == "f16" else
                       DT_BF16 if dtype_arg == "bf16" else t.dtype) for t in plan}
    mat_dts = sorted(set(DT_NAMES[out_dt[t.name]] for t in plan if len(t.shape) == 2))
    name = name_arg if name_arg is not None else os.path.basename(os.path.normpath(hf_dir))
    meta = [("name", name), ("source", os.path.basename(os.path.normpath(hf_dir))),
            ("architecture", c["arch"]), ("dtype", "/".join(mat_dts))]
    if chat_template is not None:
        meta.append(("chat_template", chat_template))
    meta_b = meta_section(meta)

    # Layout: header | meta | tok | dir | pad | data (each tensor at a multiple of 64).
    meta_off = HEADER_BYTES
    tok_off = meta_off + len(meta_b)
    dir_off = tok_off + len(tok)
    dir_size = sum(len(dir_entry(t.name, 0, t.shape, 0, 0)) for t in plan)
    data_off = pad_to(dir_off + dir_size)
    offsets, pos = [], data_off
    for t in plan:
        n = 1
        for d in t.shape:
            n *= d
        nb = n * DT_SIZE[out_dt[t.name]]
        offsets.append((pos, nb))
        pos = pad_to(pos + nb)
    fsize = pos if plan else data_off
    data_size = fsize - data_off
    dir_b = b"".join(dir_entry(t.name, out_dt[t.name], t.shape, o, nb)
                     for t, (o, nb) in zip(plan, offsets))
    assert len(dir_b) == dir_size
    hdr = header_bytes(c, bos_id, eos_ids, add_bos,
                       [(meta_off, len(meta_b)), (tok_off, len(tok)), (dir_off, dir_size)],
                       len(plan), data_off, data_size, fsize)

    tmp = out_path + ".tmp"
    handles = {}
    try:
        with open(tmp, "wb") as out:
            out.write(hdr + meta_b + tok + dir_b)
            for t, (o, nb) in zip(plan, offsets):
                out.write(b"\0" * (o - out.tell()))
                if getattr(t, "data", None) is not None:  # made here (f32, kept as is)
                    out.write(t.data)
                    continue
                f = handles.get(t.path)
                if f is None:
                    f = handles[t.path] = open(t.path, "rb")
                f.seek(t.offset)
                conv = None if out_dt[t.name] == t.dtype else converter(t.dtype,
                                                                        out_dt[t.name], t.name)
                left = t.nbytes
                step = CHUNK_BYTES - CHUNK_BYTES % 4
                while left:
                    b = f.read(min(step, left))
                    if not b:
                        fail("%s: tensor %s: file ended early (truncated?)" % (t.path, t.name))
                    left -= len(b)
                    out.write(b if conv is None else conv(b))
                if out.tell() != o + nb:
                    fail("%s: tensor %s: wrote %d bytes, expected %d"
                         % (out_path, t.name, out.tell() - o, nb))
            out.write(b"\0" * (fsize - out.tell()))
        os.replace(tmp, out_path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
    finally:
        for f in handles.values():
            f.close()

    n_params = sum(nb // DT_SIZE[out_dt[t.name]] for t, (o, nb) in zip(plan, offsets))
    rope = {ROPE_NONE: "", ROPE_LINEAR: " rope=linear(%g)" % c["rope_factor"],
            ROPE_LLAMA3: " rope=llama3(%g)" % c["rope_factor"],
            ROPE_LONGROPE: " rope=longrope(orig %d)" % c["rope_orig"]}[c["rope_scaling"]]
    if c["rope_dim"]:
        rope += " rope_dim=%d" % c["rope_dim"]
    if c["sliding_window"]:
        rope += " window=%d" % c["sliding_window"]
    if c["n_experts"]:
        rope += " experts=%d/%d" % (c["n_experts_used"], c["n_experts"])
    print("%s: %s %s, %d layers, dim %d, heads %d/%d x %d, vocab %d, ctx %d%s, %s params, "
          "%s, %d tensors, %d bytes" % (out_path, c["arch"], name, c["n_layers"], c["dim"],
                                         c["n_heads"], c["n_kv_heads"], c["head_dim"],
                                         c["vocab_size"], c["max_ctx"], rope,
                                         ("%.2fB" % (n_params / 1e9) if n_params >= 1e9 else
                                          "%.1fM" % (n_params / 1e6) if n_params >= 1e6 else
                                          "%d" % n_params),
                                         "/".join(mat_dts), len(plan), fsize))


def main(argv):
    ap = argparse.ArgumentParser(
        prog="export.py",
        description="Convert a Hugging Face checkpoint directory to a .rhw file.")
    ap.add_argument("hf_dir", metavar="HF_DIR")
    ap.add_argument("out", metavar="OUT.rhw")
    ap.add_argument("--dtype", choices=["f32", "f16", "bf16"],
                    help="convert every tensor to this dtype (default: keep the source's)")
    ap.add_argument("--max-ctx", type=int, metavar="N",
                    help="context length to record (default max_position_embeddings)")
    ap.add_argument("--name", help="model name stored in the metadata (default: HF_DIR's name)")
    a = ap.parse_args(argv)
    if a.max_ctx is not None and a.max_ctx <= 0:
        ap.error("--max-ctx must be a positive integer")
    if a.name is not None and not a.name:
        ap.error("--name must not be empty")
    try:
        export(a.hf_dir, a.out, a.dtype, a.max_ctx, a.name)
    except ExportError as e:
        print("export.py: %s" % e, file=sys.stderr)
        return 1
    except OSError as e:
        print("export.py: %s: %s" % (e.filename or a.out, e.strerror), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
