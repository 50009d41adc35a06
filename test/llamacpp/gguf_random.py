#!/usr/bin/env python3
"""Write a GGUF v3 file of a Llama-architecture model with random weights.

Standard library only (no numpy).  The file is streamed: a 4.4 GB f32
TinyLlama-shape model is written chunk by chunk, never held in memory.

    python3 gguf_random.py /tmp/tinyllama_f16.gguf --dtype f16
    python3 gguf_random.py /tmp/small.gguf --dim 256 --layers 2 --heads 8 \
        --kv-heads 4 --ffn 768 --vocab 1024 --dtype f32

Defaults are the TinyLlama-1.1B shape (dim 2048, 22 layers, 32 heads, 4 KV
heads, FFN 5632, vocab 32000), the same as `retrieval_heads bench --shape
tinyllama-1.1b`.

Weights: every 2-D tensor (embedding, attention, FFN, output) is stored in the
chosen dtype (f32, f16 or bf16); norm weights are f32 ones (llama.cpp keeps
1-D tensors in f32).  Values are seeded pseudo-random with a random sign and a
magnitude in [2^-9, 2^-5) = [0.002, 0.031), roughly log-uniform (random
bytes; the sign and exponent bits are then set through a byte table, the
mantissa bits stay random).  They are finite, small, never denormal, so the arithmetic
runs at full speed; the numbers mean nothing, only the shapes and bytes count.

Tokenizer: a dummy SentencePiece ("llama") vocab: <unk>, <s>, </s>, the 256
byte tokens <0x00>..<0xFF>, then unique filler pieces "▁t<N>".

GGUF layout (ggml/docs/gguf.md): magic "GGUF", u32 version 3, u64 tensor
count, u64 KV count, the KVs, the tensor infos (name, n_dims, dims listed
fastest-first, i.e. ne0 = columns = the input dimension of a matmul weight,
ggml type, offset), padding to general.alignment (32), then the tensor data,
each tensor starting at a multiple of 32 bytes.

GGML type ids (ggml/include/ggml.h, enum ggml_type): F32 = 0, F16 = 1,
BF16 = 30.  general.file_type (llama.h, enum llama_ftype): ALL_F32 = 0,
MOSTLY_F16 = 1, MOSTLY_BF16 = 32.
"""

import argparse
import os
import random
import struct
import sys
import time

GGUF_MAGIC = b"GGUF"
GGUF_VERSION = 3
ALIGN = 32

# GGUF metadata value types
T_UINT8, T_INT8, T_UINT16, T_INT16, T_UINT32, T_INT32, T_FLOAT32, T_BOOL, \
    T_STRING, T_ARRAY, T_UINT64, T_INT64, T_FLOAT64 = range(13)

# dtype name -> (ggml type id, bytes per element, llama_ftype)
DTYPES = {
    "f32": (0, 4, 0),
    "f16": (1, 2, 1),
    "bf16": (30, 2, 32),
}
GGML_F32 = 0

# llama_token_type
TOK_NORMAL, TOK_UNKNOWN, TOK_CONTROL, TOK_BYTE = 1, 2, 3, 6


def _table_f16():
    # high byte of an IEEE half: s eeeee mm.  Keep the sign and the two
    # mantissa bits, force the biased exponent into 6..9 (|x| in 2^-9 .. 2^-5).
    return bytes((b & 0x80) | ((6 + ((b >> 2) & 3)) << 2) | (b & 3) for b in range(256))


def _table_f32_bf16():
    # high byte of an f32 / bf16: s eeeeeee (top 7 of 8 exponent bits); the
    # 8th exponent bit is random in the next byte.  Top bits 59 or 60 give a
    # biased exponent 118..121, i.e. 2^-9 .. 2^-5; 59 (2^-9..2^-7) is used on
    # 1/4 of the values so the magnitudes are mostly >= 2^-8.
    return bytes((b & 0x80) | (59 if (b & 0x60) == 0 else 60) for b in range(256))


class Writer:
    def __init__(self, f):
        self.f = f
        self.n = 0

    def raw(self, b):
        self.f.write(b)
        self.n += len(b)

    def u32(self, v):
        self.raw(struct.pack("<I", v))

    def u64(self, v):
        self.raw(struct.pack("<Q", v))

    def string(self, s):
        b = s.encode("utf-8")
        self.u64(len(b))
        self.raw(b)

    def pad(self):
        r = (-self.n) % ALIGN
        if r:
            self.raw(b"\0" * r)


def kv_bytes(key, vtype, value):
    """Serialize one metadata KV (key string, u32 type, value)."""
    out = []
    kb = key.encode("utf-8")
    out.append(struct.pack("<Q", len(kb)) + kb)
    out.append(struct.pack("<I", vtype))
    out.append(value_bytes(vtype, value))
    return b"".join(out)


_SCALAR = {T_UINT8: "<B", T_INT8: "<b", T_UINT16: "<H", T_INT16: "<h", T_UINT32: "<I",
           T_INT32: "<i", T_FLOAT32: "<f", T_BOOL: "<?", T_UINT64: "<Q", T_INT64: "<q",
           T_FLOAT64: "<d"}


def value_bytes(vtype, value):
    if vtype == T_STRING:
        b = value.encode("utf-8")
        return struct.pack("<Q", len(b)) + b
    if vtype == T_ARRAY:
        etype, items = value
        head = struct.pack("<IQ", etype, len(items))
        if etype == T_STRING:
            return head + b"".join(value_bytes(T_STRING, s) for s in items)
        fmt = _SCALAR[etype]
        return head + struct.pack("<%d%s" % (len(items), fmt[1]), *items)
    return struct.pack(_SCALAR[vtype], value)


def build_vocab(n_vocab):
    if n_vocab < 3 + 256 + 1:
        sys.exit("gguf_random: --vocab must be at least 260 (3 specials + 256 byte tokens + 1)")
    tokens = ["<unk>", "<s>", "</s>"]
    types = [TOK_UNKNOWN, TOK_CONTROL, TOK_CONTROL]
    for i in range(256):
        tokens.append("<0x%02X>" % i)
        types.append(TOK_BYTE)
    i = 0
    while len(tokens) < n_vocab:
        tokens.append("\u2581t%d" % i)
        types.append(TOK_NORMAL)
        i += 1
    scores = [0.0] * 3 + [0.0] * 256 + [-float(k) for k in range(n_vocab - 259)]
    return tokens, scores, types


def tensor_list(a, wtype):
    """(name, dims fastest-first, ggml type) in llama.cpp's convert order."""
    hd = a.dim // a.heads
    q = a.heads * hd
    kv = a.kv_heads * hd
    t = [("token_embd.weight", [a.dim, a.vocab], wtype)]
    for i in range(a.layers):
        p = "blk.%d." % i
        t += [
            (p + "attn_norm.weight", [a.dim], GGML_F32),
            (p + "attn_q.weight", [a.dim, q], wtype),
            (p + "attn_k.weight", [a.dim, kv], wtype),
            (p + "attn_v.weight", [a.dim, kv], wtype),
            (p + "attn_output.weight", [q, a.dim], wtype),
            (p + "ffn_norm.weight", [a.dim], GGML_F32),
            (p + "ffn_gate.weight", [a.dim, a.ffn], wtype),
            (p + "ffn_up.weight", [a.dim, a.ffn], wtype),
            (p + "ffn_down.weight", [a.ffn, a.dim], wtype),
        ]
    t.append(("output_norm.weight", [a.dim], GGML_F32))
    if not a.tied:
        t.append(("output.weight", [a.dim, a.vocab], wtype))
    return t


def nbytes(dims, gtype):
    n = 1
    for d in dims:
        n *= d
    return n * (4 if gtype == GGML_F32 else 2)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Write a random-weight Llama GGUF (v3) file.")
    ap.add_argument("out", help="output .gguf path (put it under /tmp)")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="f16", help="weight dtype (default f16)")
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--layers", type=int, default=22)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=4)
    ap.add_argument("--ffn", type=int, default=5632)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--ctx", type=int, default=4096, help="llama.context_length (n_ctx_train)")
    ap.add_argument("--rope-theta", type=float, default=10000.0)
    ap.add_argument("--rms-eps", type=float, default=1e-5)
    ap.add_argument("--tied", action="store_true", help="omit output.weight (tied to token_embd)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--name", default=None, help="general.name (default: random-llama-<shape>-<dtype>)")
    ap.add_argument("-q", "--quiet", action="store_true")
    a = ap.parse_args(argv)

    if a.dim % a.heads or a.heads % a.kv_heads:
        sys.exit("gguf_random: dim must be a multiple of heads, heads a multiple of kv-heads")
    if min(a.dim, a.layers, a.heads, a.kv_heads, a.ffn, a.vocab, a.ctx) <= 0:
        sys.exit("gguf_random: shape values must be positive")
    wtype, esize, ftype = DTYPES[a.dtype]
    hd = a.dim // a.heads
    name = a.name or "random-llama-d%d-l%d-%s" % (a.dim, a.layers, a.dtype)

    tokens, scores, ttypes = build_vocab(a.vocab)
    kvs = [
        ("general.architecture", T_STRING, "llama"),
        ("general.name", T_STRING, name),
        ("general.file_type", T_UINT32, ftype),
        ("general.alignment", T_UINT32, ALIGN),
        ("llama.vocab_size", T_UINT32, a.vocab),
        ("llama.context_length", T_UINT32, a.ctx),
        ("llama.embedding_length", T_UINT32, a.dim),
        ("llama.block_count", T_UINT32, a.layers),
        ("llama.feed_forward_length", T_UINT32, a.ffn),
        ("llama.rope.dimension_count", T_UINT32, hd),
        ("llama.attention.head_count", T_UINT32, a.heads),
        ("llama.attention.head_count_kv", T_UINT32, a.kv_heads),
        ("llama.attention.layer_norm_rms_epsilon", T_FLOAT32, a.rms_eps),
        ("llama.rope.freq_base", T_FLOAT32, a.rope_theta),
        ("tokenizer.ggml.model", T_STRING, "llama"),
        ("tokenizer.ggml.tokens", T_ARRAY, (T_STRING, tokens)),
        ("tokenizer.ggml.scores", T_ARRAY, (T_FLOAT32, scores)),
        ("tokenizer.ggml.token_type", T_ARRAY, (T_INT32, ttypes)),
        ("tokenizer.ggml.unknown_token_id", T_UINT32, 0),
        ("tokenizer.ggml.bos_token_id", T_UINT32, 1),
        ("tokenizer.ggml.eos_token_id", T_UINT32, 2),
        ("tokenizer.ggml.add_bos_token", T_BOOL, True),
        ("tokenizer.ggml.add_eos_token", T_BOOL, False),
    ]
    tensors = tensor_list(a, wtype)

    # offsets of each tensor's data, relative to the start of the data section
    offs = []
    off = 0
    for _, dims, gt in tensors:
        offs.append(off)
        off += nbytes(dims, gt)
        off += (-off) % ALIGN
    total_data = off

    if a.dtype == "f16":
        table, stride, hi = _table_f16(), 2, 1
    elif a.dtype == "bf16":
        table, stride, hi = _table_f32_bf16(), 2, 1
    else:
        table, stride, hi = _table_f32_bf16(), 4, 3
    one_f32 = struct.pack("<f", 1.0)
    rng = random.Random(a.seed)
    chunk = 16 << 20  # bytes per write; a multiple of 4
    t0 = time.time()

    tmp = a.out + ".part"
    with open(tmp, "wb") as f:
        w = Writer(f)
        w.raw(GGUF_MAGIC)
        w.u32(GGUF_VERSION)
        w.u64(len(tensors))
        w.u64(len(kvs))
        for k, t, v in kvs:
            w.raw(kv_bytes(k, t, v))
        for (tname, dims, gt), o in zip(tensors, offs):
            w.string(tname)
            w.u32(len(dims))
            for d in dims:
                w.u64(d)
            w.u32(gt)
            w.u64(o)
        w.pad()
        data_start = w.n
        for (tname, dims, gt), o in zip(tensors, offs):
            assert w.n - data_start == o, tname
            n = nbytes(dims, gt)
            if gt == GGML_F32 and len(dims) == 1:
                w.raw(one_f32 * (n // 4))  # RMS-norm weights: ones
            else:
                left = n
                while left:
                    m = min(chunk, left)
                    buf = bytearray(rng.randbytes(m))
                    buf[hi::stride] = buf[hi::stride].translate(table)
                    w.raw(buf)
                    left -= m
            w.pad()
            if not a.quiet and n >= (64 << 20):
                done = w.n - data_start
                sys.stderr.write("\r%s: %.0f / %.0f MB " % (a.out, done / 1e6, total_data / 1e6))
        assert w.n - data_start == total_data
    os.replace(tmp, a.out)
    if not a.quiet:
        nparams = sum(nbytes(d, g) // (4 if g == GGML_F32 else 2) for _, d, g in tensors)
        sys.stderr.write("\n")
        print("%s: %s, %d tensors, %.1fM params, %d bytes, %.1f s" % (
            a.out, a.dtype, len(tensors), nparams / 1e6, os.path.getsize(a.out), time.time() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
