#!/usr/bin/env python3
"""rhw_check.py -- an independent reader and validator of .rhw files (format: retrieval_heads.h).

    python3 test/rhw_check.py FILE.rhw [...]     validate, print a summary; exit 1 on a problem
    python3 test/rhw_check.py --agree LIST OUT   the verdicts of test/test_rhwspec.c's mutated
                                                 images (LIST, see agree()) into OUT

Written from the header's comment ("THE .rhw WEIGHT FORMAT") alone, not from export.py or the
C loader, so that it checks both: every rule of that comment is one _need() below, in the
comment's order, and a file is valid when all of them hold.  test/test_rhwspec.c holds this
reader and the C loader to the same verdict on thousands of mutated files.

As a module: check_bytes(data) / read_rhw(path) -> dict with "config", "meta" ({key: value
bytes}), "tok", "tensors" ({name: (dtype, shape, offset, nbytes)}), or RhwError naming the
field and the problem; tensor(info, name) (needs numpy) -> the tensor as float64.
"""

import functools
import struct
import sys
import zlib

HDR = 256
DT_SIZE = {0: 4, 1: 2, 2: 2}
DT_NAME = {0: "f32", 1: "f16", 2: "bf16"}

# the header's limits
MAX_DIM, MAX_HIDDEN, MAX_LAYERS = 1 << 16, 1 << 20, 1024
MAX_HEADS, MAX_HEAD_DIM, MAX_VOCAB, MAX_CTX = 1024, 1024, 1 << 24, 1 << 24
MAX_EOS = 8
# the tokenizer section's limits
MAX_PIECE, MAX_PIECE_TOTAL = 65536, (1 << 30) - 1
SCORE_MAX = struct.unpack("<f", bytes.fromhex("e6b1617f"))[0]  # f32 0x7F61B1E6, 3.0e38
META_KEY_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789_.")
HEX_UPPER = frozenset(b"0123456789ABCDEF")

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_KV = struct.Struct("<II")
_TOKHDR = struct.Struct("<IIIiIII")
_SCORE = struct.Struct("<fBB")
_MERGE = struct.Struct("<III")
_ENTRY = struct.Struct("<QQ")


class RhwError(Exception):
    pass


def _need(cond, msg, *args):
    """A rule: msg % args names the field and the problem (formatted only when it fails)."""
    if not cond:
        raise RhwError(msg % args if args else msg)


def _finite(x):
    return x == x and x not in (float("inf"), float("-inf"))


def _byte_level_alphabet():
    """The 256 pieces of the kind 2 alphabet, as the spec gives it: bytes 0x21-0x7E, 0xA1-0xAC,
    0xAE-0xFF are their own code point, the other 68 in increasing order U+0100..U+0143."""
    out, k = [], 0
    for b in range(256):
        if 0x21 <= b <= 0x7E or 0xA1 <= b <= 0xAC or 0xAE <= b <= 0xFF:
            out.append(chr(b).encode("utf-8"))
        else:
            out.append(chr(0x100 + k).encode("utf-8"))
            k += 1
    return out


BYTE_LEVEL = _byte_level_alphabet()
BYTE_PIECES = [b"<0x%02X>" % i for i in range(256)]


def _check_header(b, n):
    _need(n >= HDR, "file of %d bytes is shorter than the 256-byte header", n)
    _need(b[0:4] == b"RHWF", "magic %r, expected 'RHWF'", bytes(b[0:4]))
    ver, hb, r0 = struct.unpack_from("<III", b, 4)
    _need(ver in (1, 2, 3), "version %d, expected 1, 2 or 3", ver)
    _need(hb == HDR, "header_bytes %d, expected 256", hb)
    _need(r0 == 0, "reserved u32 at 12 is %d, expected 0", r0)
    names = ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "head_dim", "vocab_size",
             "max_ctx"]
    c = dict(zip(names, struct.unpack_from("<8I", b, 16)))
    (c["rope_theta"], c["rope_scaling"], c["rope_factor"], c["rope_low_freq_factor"],
     c["rope_high_freq_factor"], c["rope_original_max_ctx"], c["norm_eps"],
     flags) = struct.unpack_from("<fIfffIfI", b, 48)
    c["bos_id"], n_eos = struct.unpack_from("<iI", b, 80)
    eos = struct.unpack_from("<8i", b, 88)
    mo, ms, to, ts, do, ds = struct.unpack_from("<6Q", b, 120)
    nt, r1 = struct.unpack_from("<II", b, 168)
    dao, das, fs = struct.unpack_from("<3Q", b, 176)

    for k, hi in (("dim", MAX_DIM), ("hidden_dim", MAX_HIDDEN), ("n_layers", MAX_LAYERS),
                  ("n_heads", MAX_HEADS)):
        _need(1 <= c[k] <= hi, "%s %d out of range 1..%d", k, c[k], hi)
    _need(1 <= c["n_kv_heads"] <= c["n_heads"] and c["n_heads"] % c["n_kv_heads"] == 0,
          "n_kv_heads %d must divide n_heads %d", c["n_kv_heads"], c["n_heads"])
    _need(2 <= c["head_dim"] <= MAX_HEAD_DIM and c["head_dim"] % 2 == 0,
          "head_dim %d must be even and in 2..%d", c["head_dim"], MAX_HEAD_DIM)
    _need(1 <= c["vocab_size"] <= MAX_VOCAB, "vocab_size %d out of range", c["vocab_size"])
    _need(1 <= c["max_ctx"] <= MAX_CTX, "max_ctx %d out of range", c["max_ctx"])
    _need(_finite(c["rope_theta"]) and c["rope_theta"] > 0, "rope_theta must be finite, > 0")
    rs = c["rope_scaling"]
    _need(rs in ((0, 1, 2, 3) if ver >= 2 else (0, 1, 2)),
          "rope_scaling %d (0 none, 1 linear, 2 llama3, 3 longrope from version 2)", rs)
    if rs in (1, 2):  # longrope ignores rope_factor
        _need(_finite(c["rope_factor"]) and c["rope_factor"] > 0,
              "rope_factor must be finite, > 0")
    if rs == 3:
        _need(c["rope_original_max_ctx"] >= 1, "rope_original_max_ctx must be >= 1 (longrope)")
    if rs == 2:
        lo, hi = c["rope_low_freq_factor"], c["rope_high_freq_factor"]
        _need(lo > 0, "rope_low_freq_factor must be > 0")
        _need(_finite(hi) and hi > lo, "rope_high_freq_factor must be finite, > low")
        _need(c["rope_original_max_ctx"] >= 1, "rope_original_max_ctx must be >= 1")
    _need(c["rope_original_max_ctx"] <= 0x7FFFFFFF,
          "rope_original_max_ctx %d > 2^31 - 1", c["rope_original_max_ctx"])
    _need(0 < c["norm_eps"] < 1, "norm_eps %r not in (0, 1)", c["norm_eps"])
    _need(flags >> 3 == 0, "flags 0x%x: bits 3-31 must be 0", flags)
    c["qkv_bias"], c["tied_embeddings"], c["add_bos"] = flags & 1, (flags >> 1) & 1, \
        (flags >> 2) & 1
    _need(-1 <= c["bos_id"] < c["vocab_size"], "bos_id %d out of range", c["bos_id"])
    _need(n_eos <= MAX_EOS, "n_eos %d out of range 0..8", n_eos)
    c["eos_ids"] = list(eos[:n_eos])
    for i, e in enumerate(c["eos_ids"]):
        _need(0 <= e < c["vocab_size"], "eos_ids[%d] = %d out of range", i, e)
    _need(nt >= 1, "n_tensors is 0")
    _need(r1 == 0, "reserved u32 at 172 is %d, expected 0", r1)
    _need(dao % 64 == 0, "data_offset %d is not a multiple of 64", dao)
    _need(fs == n, "file_size %d, but the file has %d bytes", fs, n)
    # version 2: sliding_window (0 none, else 1..2^24) and window_first_layer at 200, 204
    c["sliding_window"], c["window_first_layer"], c["rope_dim"] = struct.unpack_from("<III", b, 200)
    (c["rope_attn_factor"],) = struct.unpack_from("<f", b, 212)
    # version 3: n_experts (0, or 1..256) and n_experts_used (1..n_experts; 0 without) at 216
    c["n_experts"], c["n_experts_used"] = struct.unpack_from("<II", b, 216)
    for i in range({1: 200, 2: 216, 3: 224}[ver], HDR):
        _need(b[i] == 0, "reserved header byte %d is not 0", i)
    ne, nu = c["n_experts"], c["n_experts_used"]
    _need(ne <= 256, "n_experts %d out of range 0..256", ne)
    if ne:
        _need(1 <= nu <= ne, "n_experts_used %d not in 1..n_experts %d", nu, ne)
    else:
        _need(nu == 0, "n_experts_used %d without n_experts", nu)
    rd = c["rope_dim"]
    _need(rd == 0 or (2 <= rd <= c["head_dim"] and rd % 2 == 0),
          "rope_dim %d must be 0 or even in 2..head_dim", rd)
    if rs == 3:
        af = c["rope_attn_factor"]
        _need(_finite(af) and af > 0, "rope_attn_factor %r must be finite, > 0 (longrope)", af)
    sw, wl = c["sliding_window"], c["window_first_layer"]
    _need(sw <= MAX_CTX, "sliding_window %d out of range 0..2^24", sw)
    if sw:
        _need(wl < c["n_layers"], "window_first_layer %d must be below n_layers", wl)
    else:
        _need(wl == 0, "window_first_layer %d without a sliding_window", wl)
    secs = {"meta": (mo, ms), "tok": (to, ts), "dir": (do, ds), "data": (dao, das)}
    return c, nt, secs


def _check_sections(secs, n):
    for nm in ("tok", "dir", "data"):
        _need(secs[nm][1] >= 1, "%s section is empty", nm)
    present = [(nm, o, s) for nm, (o, s) in secs.items() if s >= 1]
    for nm, o, s in present:
        _need(o >= HDR and o + s <= n, "%s section [%d, +%d) outside [256, %d)", nm, o, s, n)
    for i, (na, oa, sa) in enumerate(present):
        for nb, ob, sb in present[i + 1:]:
            _need(not (oa < ob + sb and ob < oa + sa), "sections %s and %s overlap", na, nb)


def _check_meta(b, o, s):
    meta = {}
    if s == 0:
        return meta
    p, end = o, o + s
    _need(end - p >= 4, "metadata section shorter than n_entries")
    (ne,) = _U32.unpack_from(b, p)
    p += 4
    for i in range(ne):
        _need(end - p >= 4, "metadata entry %d: key_len past the section", i)
        (kl,) = _U32.unpack_from(b, p)
        p += 4
        _need(1 <= kl <= 64, "metadata entry %d: key_len %d not in 1..64", i, kl)
        _need(end - p >= kl, "metadata entry %d: key past the section", i)
        k = bytes(b[p:p + kl])
        _need(all(ch in META_KEY_BYTES for ch in k), "metadata key %r: bytes not [a-z0-9_.]", k)
        _need(k.decode("ascii") not in meta, "metadata key %r appears twice", k)
        p += kl
        _need(end - p >= 4, "metadata entry %d: value_len past the section", i)
        (vl,) = _U32.unpack_from(b, p)
        p += 4
        _need(end - p >= vl, "metadata entry %d: value past the section", i)
        meta[k.decode("ascii")] = bytes(b[p:p + vl])
        p += vl
    _need(p == end, "metadata section has %d bytes after the entries", end - p)
    return meta


def _check_tok(b, o, s, vocab_size):
    tok = {}
    p, end = o, o + s
    _need(s >= 28, "tokenizer section of %d bytes, its fields need 28", s)
    (kind, flags, pretok, unk, n_tok, n_merges, pl) = _TOKHDR.unpack_from(b, p)
    p += 28
    _need(kind in (1, 2), "tokenizer kind %d (1 or 2)", kind)
    _need(flags >> 11 == 0, "tokenizer flags 0x%x: bits 11-31 must be 0", flags)
    if kind == 2:
        _need(flags & 0x4E == 0, "tokenizer flags 0x%x: bits 1, 2, 3, 6 are kind 1's", flags)
        _need(not (flags & 1) or flags & 0x80, "kind 2 tokenizer flag bit 0 needs bit 7")
    _need(not (flags & 0x300) or flags & 0x80, "tokenizer flag bits 8, 9 need bit 7")
    _need(not (flags & 0x80 and flags & 0x2), "tokenizer flag bit 7 excludes bit 1")
    if kind == 1:
        _need(pretok == 0, "tokenizer pretokenizer %d for kind 1 (must be 0)", pretok)
    else:
        _need(1 <= pretok <= 3, "tokenizer pretokenizer %d (1..3)", pretok)
    _need(1 <= n_tok <= vocab_size, "tokenizer n_tokens %d not in 1..vocab_size", n_tok)
    _need(-1 <= unk < n_tok, "tokenizer unk_id %d out of range", unk)
    _need(end - p >= pl, "tokenizer pattern of %d bytes runs past the section", pl)
    tok.update(kind=kind, flags=flags, pretokenizer=pretok, unk_id=unk, n_tokens=n_tok,
               n_merges=n_merges, pattern=bytes(b[p:p + pl]))
    p += pl
    pieces, seen, total = [], {}, 0
    u32, rec = _U32.unpack_from, _SCORE.unpack_from
    for i in range(n_tok):  # the rules as plain ifs: this loop is the reader's hot spot
        if end - p < 4:
            raise RhwError("token %d: len past the section" % i)
        (ln,) = u32(b, p)
        p += 4
        if not 1 <= ln <= MAX_PIECE:
            raise RhwError("token %d: piece length %d not in 1..65536" % (i, ln))
        if end - p < ln + 6:
            raise RhwError("token %d runs past the section" % i)
        piece = bytes(b[p:p + ln])
        p += ln
        score, ty, fl = rec(b, p)
        p += 6
        if not piece.isascii():
            try:
                piece.decode("utf-8")  # strict: well-formed UTF-8 as Unicode defines it
            except UnicodeDecodeError:
                raise RhwError("token %d: piece is not well-formed UTF-8" % i)
        if piece in seen:
            raise RhwError("tokens %d and %d have the same piece" % (seen[piece], i))
        seen[piece] = i
        total += ln
        if total > MAX_PIECE_TOTAL:
            raise RhwError("pieces add up to more than 2^30 - 1 bytes")
        if not -SCORE_MAX <= score <= SCORE_MAX:
            raise RhwError("token %d: score %r outside [-3.0e38, 3.0e38]" % (i, score))
        if not 1 <= ty <= 6:
            raise RhwError("token %d: type %d" % (i, ty))
        if ty == 6:
            _need(kind == 1, "token %d: byte type in a kind 2 vocabulary", i)
            _need(len(piece) == 6 and piece[:3] == b"<0x" and piece[5:] == b">" and
                  piece[3] in HEX_UPPER and piece[4] in HEX_UPPER,
                  "token %d: byte piece %r is not <0xHH>", i, piece)
        if fl & 0xC8:
            raise RhwError("token %d: flags 0x%x (bits 3, 6, 7 must be 0)" % (i, fl))
        pieces.append((piece, score, ty, fl))
    if kind == 1 and flags & 4:
        for bp in BYTE_PIECES:
            _need(bp in seen and pieces[seen[bp]][2] == 6,
                  "byte_fallback set but byte token %s is missing", bp.decode())
    if kind == 2:
        for bv, ch in enumerate(BYTE_LEVEL):
            _need(ch in seen, "byte-level vocabulary lacks the piece of byte 0x%02X", bv)
    _need(end - p == 12 * n_merges, "%d merges need %d bytes after the tokens, %d remain",
          n_merges, 12 * n_merges, end - p)
    merges, pairs = [], set()
    for i in range(n_merges):
        l, r, res = _MERGE.unpack_from(b, p)
        p += 12
        if not (l < n_tok and r < n_tok and res < n_tok):
            raise RhwError("merge %d: token id out of range" % i)
        if pieces[res][0] != pieces[l][0] + pieces[r][0]:
            raise RhwError("merge %d: piece(result) != piece(left) + piece(right)" % i)
        if (l, r) in pairs:
            raise RhwError("merge %d repeats the pair (%d, %d)" % (i, l, r))
        pairs.add((l, r))
        merges.append((l, r, res))
    tok["pieces"] = pieces
    tok["merges"] = merges
    return tok


def _listed_tensors(c):
    """name -> (shape, required); required is False for a listed tensor that must be absent."""
    R = (c["rope_dim"] or c["head_dim"]) // 2
    return _listed(c["dim"], c["hidden_dim"], c["vocab_size"], c["n_heads"] * c["head_dim"],
                   c["n_kv_heads"] * c["head_dim"], c["n_layers"], bool(c["qkv_bias"]),
                   bool(c["tied_embeddings"]), R, c["rope_scaling"] == 3, c["n_experts"])


@functools.lru_cache(maxsize=64)
def _listed(D, H, V, q, kv, n_layers, bias, tied, R, longrope, n_experts=0):
    exp = {"model.embed_tokens.weight": ((V, D), True), "model.norm.weight": ((D,), True),
           "lm_head.weight": ((V, D), not tied),
           "rope.short_factor": ((R,), longrope), "rope.long_factor": ((R,), longrope)}
    for i in range(n_layers):
        pre = "model.layers.%d." % i  # %d: decimal without leading zeros
        exp.update({pre + "input_layernorm.weight": ((D,), True),
                    pre + "self_attn.q_proj.weight": ((q, D), True),
                    pre + "self_attn.k_proj.weight": ((kv, D), True),
                    pre + "self_attn.v_proj.weight": ((kv, D), True),
                    pre + "self_attn.q_proj.bias": ((q,), bias),
                    pre + "self_attn.k_proj.bias": ((kv,), bias),
                    pre + "self_attn.v_proj.bias": ((kv,), bias),
                    pre + "self_attn.o_proj.weight": ((D, q), True),
                    pre + "post_attention_layernorm.weight": ((D,), True),
                    pre + "mlp.gate_proj.weight": ((H, D), not n_experts),
                    pre + "mlp.up_proj.weight": ((H, D), not n_experts),
                    pre + "mlp.down_proj.weight": ((D, H), not n_experts)})
        if n_experts:  # a mixture: the router, and each expert's w1 (gate), w3 (up), w2 (down)
            exp[pre + "block_sparse_moe.gate.weight"] = ((n_experts, D), True)
            for e in range(n_experts):
                ex = pre + "block_sparse_moe.experts.%d." % e
                exp[ex + "w1.weight"] = ((H, D), True)
                exp[ex + "w3.weight"] = ((H, D), True)
                exp[ex + "w2.weight"] = ((D, H), True)
    return exp


def _check_dir(b, o, s, nt, c, data):
    listed = _listed_tensors(c)
    dao, das = data
    tensors = {}
    p, end = o, o + s
    for i in range(nt):
        _need(end - p >= 4, "directory entry %d: name_len past the directory", i)
        (nl,) = _U32.unpack_from(b, p)
        p += 4
        _need(1 <= nl <= 255, "directory entry %d: name_len %d not in 1..255", i, nl)
        _need(end - p >= nl + 8, "directory entry %d runs past the directory", i)
        raw = bytes(b[p:p + nl])
        p += nl
        name = raw.decode("latin-1")
        _need(name in listed, "directory entry %d: unknown tensor %r", i, raw)
        _need(name not in tensors, "tensor %s appears twice", name)
        dt, nd = _KV.unpack_from(b, p)
        p += 8
        _need(dt in DT_SIZE, "tensor %s: dtype %d", name, dt)
        _need(1 <= nd <= 4, "tensor %s: ndim %d not in 1..4", name, nd)
        _need(end - p >= 8 * nd + 16, "tensor %s runs past the directory", name)
        shape = struct.unpack_from("<%dQ" % nd, b, p)
        p += 8 * nd
        off, nb = _ENTRY.unpack_from(b, p)
        p += 16
        _need(all(d >= 1 for d in shape), "tensor %s: a dimension is 0", name)
        want, required = listed[name]
        _need(required, "tensor %s must be absent (qkv_bias / tied_embeddings / n_experts)",
              name)
        _need(shape == want, "tensor %s: shape %s, expected %s", name, shape, want)
        cnt = 1
        for d in shape:
            cnt *= d
        _need(nb == cnt * DT_SIZE[dt], "tensor %s: nbytes %d", name, nb)
        _need(off % 64 == 0, "tensor %s: offset %d not a multiple of 64", name, off)
        _need(off >= dao and off + nb <= dao + das, "tensor %s outside the data region", name)
        tensors[name] = (dt, shape, off, nb)
    _need(p == end, "tensor directory has %d bytes after the entries", end - p)
    for name, (_, required) in listed.items():
        _need(not required or name in tensors, "missing tensor %s", name)
    iv = sorted((o_, o_ + nb_, nm) for nm, (_, _, o_, nb_) in tensors.items())
    for a, bb in zip(iv, iv[1:]):
        _need(a[1] <= bb[0], "tensors %s and %s overlap", a[2], bb[2])
    return tensors


def _memo(cache, fn, key, *args):
    """fn(*args), remembered under key (the bytes and numbers fn reads) when cache is a dict:
    the mutated images of agree() share most of their sections."""
    if cache is None:
        return fn(*args)
    if key not in cache:
        try:
            cache[key] = (True, fn(*args))
        except RhwError as e:
            cache[key] = (False, str(e))
    ok, r = cache[key]
    if not ok:
        raise RhwError(r)
    return r


def check_bytes(b, cache=None):
    """Validate a whole .rhw image (bytes); returns its parts or raises RhwError."""
    n = len(b)
    c, nt, secs = _check_header(b, n)
    _check_sections(secs, n)
    (mo, ms), (to, ts) = secs["meta"], secs["tok"]
    meta = _memo(cache, _check_meta, ("meta", bytes(b[mo:mo + ms])), b, mo, ms)
    tok = _memo(cache, _check_tok, ("tok", c["vocab_size"], bytes(b[to:to + ts])), b, to, ts,
                c["vocab_size"])
    tensors = _check_dir(b, *secs["dir"], nt, c, secs["data"])
    return {"config": c, "meta": meta, "tok": tok, "tensors": tensors, "size": n}


def read_rhw(path):
    with open(path, "rb") as f:
        b = f.read()
    info = check_bytes(b)
    info["path"] = path
    return info


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


def agree(list_path, out_path):
    """The verdict on each image of a list written by test/test_rhwspec.c.  Lines of LIST:
        B <TAB> path                                  a base image (numbered from 0)
        M <TAB> base <TAB> length <TAB> crc32 <TAB> writes
    an image: the base's first `length` bytes (zero-extended to `length`), then each write
    "offset:hexbytes" (space-separated) applied in order; crc32 (hex, zlib's) of the result
    proves it is the image the C side built.  OUT gets one line per M: "ok", "refused <TAB>
    reason", or "error <TAB> what" (a crash of this reader or an image mismatch)."""
    bases, work, out, cache = [], [], [], {}
    with open(list_path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if parts[0] == "B":
                with open(parts[1], "rb") as g:
                    bases.append(g.read())
                work.append(bytearray(bases[-1]))
                continue
            k, length, crc = int(parts[1]), int(parts[2]), int(parts[3], 16)
            base, writes = bases[k], []
            for w in parts[4].split():
                off, hx = w.split(":")
                writes.append((int(off), bytes.fromhex(hx)))
            if length >= len(base):
                img = work[k]  # patched (and grown) in place, then restored from the base
                img.extend(bytes(length - len(base)))
            else:
                img = bytearray(base[:length])
                img.extend(bytes(length - len(img)))
            for off, data in writes:
                img[off:off + len(data)] = data
            if len(img) != length or zlib.crc32(img) != crc:
                out.append("error\timage differs from the C side's (length %d, crc %08x)"
                           % (len(img), zlib.crc32(img)))
            else:
                try:
                    check_bytes(img, cache)
                    out.append("ok")
                except RhwError as e:
                    out.append("refused\t%s" % str(e).replace("\t", " ").replace("\n", " "))
                except Exception as e:  # a reader bug: every refusal must be a RhwError
                    out.append("error\t%s: %s" % (type(e).__name__, e))
            if img is work[k]:
                del img[len(base):]
                for off, data in writes:
                    end = min(off + len(data), len(base))
                    if off < end:
                        img[off:end] = base[off:end]
    with open(out_path, "w") as f:
        f.write("\n".join(out) + "\n")
    return 0


def main(argv):
    if len(argv) == 3 and argv[0] == "--agree":
        return agree(argv[1], argv[2])
    bad = 0
    for path in argv:
        try:
            r = read_rhw(path)
        except (RhwError, OSError) as e:
            print("%s: %s", (path, e), file=sys.stderr)
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
