#!/usr/bin/env python3
"""rhw_check.py -- an independent reader and validator of .rhw files (format: retrieval_heads.h).

    python3 test/rhw_check.py FILE.rhw [...]     validate, print a summary; exit 1 on a problem

Written from the header's comments, not from export.py or the C loader, so that it checks
both.  As a module: read_rhw(path) -> dict with "config", "meta", "tok", "tensors"
({name: (dtype, shape, offset, nbytes)}) and tensor(path_or_info, name) (needs numpy) ->
the tensor as float64.
"""

import struct
import sys

HDR = 256
DT_SIZE = {0: 4, 1: 2, 2: 2}
DT_NAME = {0: "f32", 1: "f16", 2: "bf16"}


class RhwError(Exception):
    pass


def _need(cond, msg):
    if not cond:
        raise RhwError(msg)


def read_rhw(path):
    with open(path, "rb") as f:
        b = f.read()
    n = len(b)
    _need(n >= HDR, "file shorter than the 256-byte header")
    _need(b[0:4] == b"RHWF", "bad magic %r" % b[0:4])
    ver, hb, r0 = struct.unpack_from("<III", b, 4)
    _need(ver == 1, "version %d" % ver)
    _need(hb == 256 and r0 == 0, "header_bytes %d / reserved %d" % (hb, r0))
    names = ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "head_dim", "vocab_size",
             "max_ctx"]
    cfg = dict(zip(names, struct.unpack_from("<8I", b, 16)))
    (cfg["rope_theta"], cfg["rope_scaling"], cfg["rope_factor"], cfg["rope_low_freq_factor"],
     cfg["rope_high_freq_factor"], cfg["rope_original_max_ctx"], cfg["norm_eps"],
     flags) = struct.unpack_from("<fIfffIfI", b, 48)
    cfg["qkv_bias"], cfg["tied_embeddings"], cfg["add_bos"] = flags & 1, (flags >> 1) & 1, \
        (flags >> 2) & 1
    _need(flags >> 3 == 0, "unknown flags 0x%x" % flags)
    cfg["bos_id"], n_eos = struct.unpack_from("<iI", b, 80)
    _need(n_eos <= 8, "n_eos %d" % n_eos)
    eos = struct.unpack_from("<8i", b, 88)
    cfg["eos_ids"] = list(eos[:n_eos])
    _need(all(e == 0 for e in eos[n_eos:]), "unused eos slots not zero")
    mo, ms, to, ts, do, ds = struct.unpack_from("<6Q", b, 120)
    nt, r1 = struct.unpack_from("<II", b, 168)
    dao, das, fs = struct.unpack_from("<3Q", b, 176)
    _need(r1 == 0 and b[200:256] == b"\0" * 56, "reserved header bytes not zero")
    _need(fs == n, "file_size %d != actual %d" % (fs, n))
    c = cfg
    for k in names:
        _need(c[k] > 0, "%s is 0" % k)
    _need(c["n_heads"] % c["n_kv_heads"] == 0, "n_heads % n_kv_heads")
    _need(c["head_dim"] % 2 == 0, "odd head_dim")
    _need(c["rope_scaling"] in (0, 1, 2), "rope_scaling %d" % c["rope_scaling"])
    _need(c["rope_theta"] > 0 and c["norm_eps"] > 0, "rope_theta / norm_eps not positive")
    if c["rope_scaling"] == 0:
        _need(c["rope_factor"] == 1, "rope_factor must be 1 without scaling")
    else:
        _need(c["rope_factor"] > 0, "rope_factor")
    if c["rope_scaling"] == 2:
        _need(c["rope_high_freq_factor"] > c["rope_low_freq_factor"], "llama3 factors")
        _need(c["rope_original_max_ctx"] > 0, "llama3 original_max_ctx")
    _need(-1 <= c["bos_id"] < c["vocab_size"], "bos_id %d" % c["bos_id"])
    _need(all(0 <= e < c["vocab_size"] for e in c["eos_ids"]), "eos ids")
    if c["add_bos"]:
        _need(c["bos_id"] >= 0, "add_bos without bos")
    secs = [("meta", mo, ms), ("tok", to, ts), ("dir", do, ds), ("data", dao, das)]
    for nm, o, s in secs:
        _need(o >= HDR and o + s <= n, "%s section [%d,+%d) outside the file" % (nm, o, s))
    ss = sorted(secs, key=lambda x: x[1])
    for a, bb in zip(ss, ss[1:]):
        _need(a[1] + a[2] <= bb[1], "sections %s and %s overlap" % (a[0], bb[0]))
    _need(dao % 64 == 0, "data_offset not a multiple of 64")

    # metadata
    meta = {}
    p, end = mo, mo + ms
    _need(ms >= 4, "meta too small")
    (ne,) = struct.unpack_from("<I", b, p)
    p += 4
    for _ in range(ne):
        _need(p + 4 <= end, "meta truncated")
        (kl,) = struct.unpack_from("<I", b, p)
        p += 4
        _need(1 <= kl <= 64 and p + kl <= end, "meta key length %d" % kl)
        k = b[p:p + kl].decode("ascii")
        _need(all(ch in "abcdefghijklmnopqrstuvwxyz0123456789_." for ch in k), "meta key %r" % k)
        p += kl
        _need(p + 4 <= end, "meta truncated")
        (vl,) = struct.unpack_from("<I", b, p)
        p += 4
        _need(p + vl <= end, "meta value truncated")
        meta[k] = b[p:p + vl].decode("utf-8")
        p += vl
    _need(p == end, "meta section has %d trailing bytes" % (end - p))

    # tokenizer
    tok = {}
    p, end = to, to + ts
    _need(ts >= 28, "tok too small")
    (tok["kind"], tok["flags"], tok["pretokenizer"], tok["unk_id"], tok["n_tokens"],
     tok["n_merges"], pl) = struct.unpack_from("<IIIiIII", b, p)
    p += 28
    _need(tok["kind"] in (1, 2), "tok kind %d" % tok["kind"])
    _need(tok["flags"] >> 11 == 0, "tok flags")  # bits 7-10: rh_tokenizer.inc additions
    _need(tok["n_tokens"] <= c["vocab_size"], "n_tokens %d > vocab_size" % tok["n_tokens"])
    _need(-1 <= tok["unk_id"] < tok["n_tokens"], "unk_id")
    _need(p + pl <= end, "pattern truncated")
    tok["pattern"] = b[p:p + pl].decode("utf-8")
    p += pl
    pieces = []
    for i in range(tok["n_tokens"]):
        _need(p + 4 <= end, "token %d truncated" % i)
        (ln,) = struct.unpack_from("<I", b, p)
        p += 4
        _need(p + ln + 6 <= end, "token %d truncated" % i)
        piece = b[p:p + ln]
        p += ln
        score, ty, fl = struct.unpack_from("<fBB", b, p)
        p += 6
        _need(1 <= ty <= 6, "token %d type %d" % (i, ty))
        pieces.append((piece, score, ty, fl))
    tok["pieces"] = pieces
    merges = []
    for i in range(tok["n_merges"]):
        _need(p + 12 <= end, "merge %d truncated" % i)
        l, r, res = struct.unpack_from("<III", b, p)
        p += 12
        nt_ = tok["n_tokens"]
        _need(l < nt_ and r < nt_ and res < nt_, "merge %d ids" % i)
        _need(pieces[res][0] == pieces[l][0] + pieces[r][0], "merge %d pieces" % i)
        merges.append((l, r, res))
    tok["merges"] = merges
    _need(p == end, "tok section has %d trailing bytes" % (end - p))

    # tensor directory
    tensors = {}
    p, end = do, do + ds
    for i in range(nt):
        _need(p + 4 <= end, "dir entry %d truncated" % i)
        (nl,) = struct.unpack_from("<I", b, p)
        p += 4
        _need(1 <= nl <= 255 and p + nl + 8 <= end, "dir entry %d name" % i)
        name = b[p:p + nl].decode("ascii")
        p += nl
        dt, nd = struct.unpack_from("<II", b, p)
        p += 8
        _need(dt in DT_SIZE and 1 <= nd <= 4 and p + 8 * nd + 16 <= end, "%s dtype/ndim" % name)
        shape = struct.unpack_from("<%dQ" % nd, b, p)
        p += 8 * nd
        off, nb = struct.unpack_from("<QQ", b, p)
        p += 16
        cnt = 1
        for d in shape:
            cnt *= d
        _need(nb == cnt * DT_SIZE[dt], "%s nbytes" % name)
        _need(off % 64 == 0 and off >= dao and off + nb <= dao + das, "%s offset" % name)
        _need(name not in tensors, "duplicate tensor %s" % name)
        tensors[name] = (dt, tuple(shape), off, nb)
    _need(p == end, "dir section has %d trailing bytes" % (end - p))
    iv = sorted((o, o + nb, nm) for nm, (_, _, o, nb) in tensors.items())
    for a, bb in zip(iv, iv[1:]):
        _need(a[1] <= bb[0], "tensors %s and %s overlap" % (a[2], bb[2]))

    # the expected set of tensors with their shapes
    D, H, V = c["dim"], c["hidden_dim"], c["vocab_size"]
    q, kv = c["n_heads"] * c["head_dim"], c["n_kv_heads"] * c["head_dim"]
    exp = {"model.embed_tokens.weight": (V, D), "model.norm.weight": (D,)}
    if not c["tied_embeddings"]:
        exp["lm_head.weight"] = (V, D)
    for i in range(c["n_layers"]):
        pre = "model.layers.%d." % i
        exp.update({pre + "input_layernorm.weight": (D,), pre + "self_attn.q_proj.weight": (q, D),
                    pre + "self_attn.k_proj.weight": (kv, D),
                    pre + "self_attn.v_proj.weight": (kv, D),
                    pre + "self_attn.o_proj.weight": (D, q),
                    pre + "post_attention_layernorm.weight": (D,),
                    pre + "mlp.gate_proj.weight": (H, D), pre + "mlp.up_proj.weight": (H, D),
                    pre + "mlp.down_proj.weight": (D, H)})
        if c["qkv_bias"]:
            exp.update({pre + "self_attn.q_proj.bias": (q,), pre + "self_attn.k_proj.bias": (kv,),
                        pre + "self_attn.v_proj.bias": (kv,)})
    _need(set(exp) == set(tensors), "tensor set differs: missing %s, unexpected %s"
          % (sorted(set(exp) - set(tensors))[:3], sorted(set(tensors) - set(exp))[:3]))
    for nm, sh in exp.items():
        _need(tensors[nm][1] == sh, "%s shape %s, expected %s" % (nm, tensors[nm][1], sh))
    return {"path": path, "config": cfg, "meta": meta, "tok": tok, "tensors": tensors,
            "size": n}


def tensor(info, name):
    """The tensor as a float64 numpy array (decoded independently of export.py)."""
    import numpy as np
    dt, shape, off, nb = info["tensors"][name]
    with open(info["path"], "rb") as f:
        f.seek(off)
        raw = f.read(nb)
    if dt == 0:
        a = np.frombuffer(raw, dtype="<f4").astype(np.float64)
    elif dt == 1:
        a = np.frombuffer(raw, dtype="<f2").astype(np.float64)
    else:
        u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        a = u.view(np.float32).astype(np.float64)
    return a.reshape(shape)


def main(argv):
    bad = 0
    for path in argv:
        try:
            r = read_rhw(path)
        except (RhwError, OSError, UnicodeDecodeError, struct.error) as e:
            print("%s: %s" % (path, e), file=sys.stderr)
            bad = 1
            continue
        c = r["config"]
        dts = sorted(set(DT_NAME[t[0]] for t in r["tensors"].values()))
        print("%s: ok, %d bytes, dim %d, %d layers, heads %d/%d x %d, vocab %d, rope %d, "
              "tok kind %d (%d tokens, %d merges), %d tensors %s, meta %s"
              % (path, r["size"], c["dim"], c["n_layers"], c["n_heads"], c["n_kv_heads"],
                 c["head_dim"], c["vocab_size"], c["rope_scaling"], r["tok"]["kind"],
                 r["tok"]["n_tokens"], r["tok"]["n_merges"], len(r["tensors"]), "/".join(dts),
                 sorted(r["meta"])))
    return bad


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
