#!/usr/bin/env python3
"""Build the tokenizer section of a .rhw file (see retrieval_heads.h) from a Hugging Face model
directory.  Standard library only.

    section, info = tokenizer_section(hf_dir)

Sources, in order: tokenizer.json (Hugging Face `tokenizers`: BPE model; Metaspace, ByteLevel
and Split pre-tokenizers; Prepend/Replace/NFC normalizers; added_tokens), else tokenizer.model
(a SentencePiece ModelProto, read here from the protobuf wire format; model_type must be BPE).
Anything whose semantics retrieval_heads.c does not implement is refused with a ValueError
naming it (a Unigram model, another regex, another normalizer, ...).

info: {'source', 'kind', 'n_tokens', 'unk_id', 'bos_id', 'bos_token', 'eos_ids', 'eos_tokens',
       'add_bos', 'flags', 'pretokenizer'}  (ids -1 / lists empty when absent)

Section flag bits 7..10 are additions to the version-1 spec (the C reads them; see the
tokenizer part of retrieval_heads.c): 7 HF pipeline (added tokens split from the raw text,
prefix per segment), 8 no prefix when the segment starts with a space, 9 prefix only at text
start ("first"), 10 fuse_unk.
"""
import json
import os
import struct
import unicodedata

KIND_SP, KIND_BYTELEVEL = 1, 2
F_DUMMY_PREFIX, F_REMOVE_WS, F_BYTE_FALLBACK, F_SPLIT_DIGITS = 1, 2, 4, 8
F_NFC, F_IGNORE_MERGES, F_METASPACE_SPLIT = 16, 32, 64
F_HF, F_PREFIX_UNLESS_SPACE, F_PREFIX_FIRST, F_FUSE_UNK = 128, 256, 512, 1024
T_NORMAL, T_UNKNOWN, T_CONTROL, T_USER, T_UNUSED, T_BYTE = 1, 2, 3, 4, 5, 6
TF_ADDED, TF_LSTRIP, TF_RSTRIP, TF_SINGLE_WORD, TF_NORMALIZED, TF_SPECIAL = 1, 2, 4, 8, 16, 32

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
                 r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
PRETOK_IDS = {LLAMA3_PATTERN: 2, QWEN2_PATTERN: 3}
SPACE = '\u2581'


def _bytes_to_unicode():
    bs = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def _pack(kind, flags, pretok, unk_id, pieces, merges, pattern):
    """pieces: list of (piece str, score, type, tflags), index = id; merges: (l, r, res)."""
    out = bytearray()
    pat = pattern.encode('utf-8')
    out += struct.pack('<IIIiIII', kind, flags, pretok, unk_id, len(pieces), len(merges), len(pat))
    out += pat
    seen = {}
    for i, (p, score, typ, tfl) in enumerate(pieces):
        b = p.encode('utf-8')
        if not b:
            raise ValueError('token %d has an empty piece' % i)
        if p in seen:
            raise ValueError('tokens %d and %d have the same piece %r' % (seen[p], i, p))
        seen[p] = i
        out += struct.pack('<I', len(b)) + b + struct.pack('<fBB', score, typ, tfl)
    for l, r, res in merges:
        out += struct.pack('<III', l, r, res)
    return bytes(out)


# ---------------------------------------------------------------- protobuf (SentencePiece)

def _varint(b, i):
    r = s = 0
    while True:
        if i >= len(b):
            raise ValueError('tokenizer.model: truncated varint')
        c = b[i]
        i += 1
        r |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return r, i


def _fields(b):
    """[(field number, wire type, value)] of one protobuf message."""
    i, out = 0, []
    while i < len(b):
        key, i = _varint(b, i)
        f, w = key >> 3, key & 7
        if w == 0:
            v, i = _varint(b, i)
        elif w == 1:
            v, i = b[i:i + 8], i + 8
        elif w == 2:
            n, i = _varint(b, i)
            v, i = b[i:i + n], i + n
        elif w == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise ValueError('tokenizer.model: unsupported wire type %d' % w)
        if i > len(b):
            raise ValueError('tokenizer.model: truncated field %d' % f)
        out.append((f, w, v))
    return out


def _signed(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def parse_sentencepiece(data):
    """ModelProto -> (pieces [(piece, score, type)], trainer dict, normalizer dict)."""
    pieces, trainer, norm = [], {}, {}
    for f, w, v in _fields(data):
        if f == 1 and w == 2:
            piece, score, typ = None, 0.0, T_NORMAL
            for ff, ww, vv in _fields(v):
                if ff == 1:
                    piece = vv.decode('utf-8')
                elif ff == 2 and ww == 5:
                    score = struct.unpack('<f', vv)[0]
                elif ff == 3:
                    typ = vv
            if piece is None:
                raise ValueError('tokenizer.model: piece %d has no text' % len(pieces))
            pieces.append((piece, score, typ))
        elif f == 2 and w == 2:
            for ff, ww, vv in _fields(v):
                trainer[ff] = vv
        elif f == 3 and w == 2:
            for ff, ww, vv in _fields(v):
                norm[ff] = vv
    return pieces, trainer, norm


def _section_from_sentencepiece(path):
    data = open(path, 'rb').read()
    pieces, tr, nm = parse_sentencepiece(data)
    model_type = tr.get(3, 1)
    names = {1: 'unigram', 2: 'bpe', 3: 'word', 4: 'char'}
    if model_type != 2:
        raise ValueError('%s: SentencePiece model_type %s is not supported (only BPE; '
                         'a Unigram model needs the Viterbi segmentation, not implemented)'
                         % (path, names.get(model_type, model_type)))
    if tr.get(24, 0):
        raise ValueError('%s: treat_whitespace_as_suffix is not supported' % path)
    name = nm.get(1, b'').decode('utf-8', 'replace')
    charsmap = nm.get(2, b'')
    if charsmap or name not in ('', 'identity'):
        raise ValueError('%s: normalizer %r (precompiled charsmap of %d bytes) is not supported; '
                         'only "identity"' % (path, name, len(charsmap)))
    if not nm.get(5, 1):
        raise ValueError('%s: escape_whitespaces=false is not supported' % path)
    flags = 0
    if nm.get(3, 1):
        flags |= F_DUMMY_PREFIX
    if nm.get(4, 1):
        flags |= F_REMOVE_WS
    if tr.get(35, 0):
        flags |= F_BYTE_FALLBACK
    if tr.get(25, 0):
        flags |= F_SPLIT_DIGITS
    flags |= F_FUSE_UNK
    out = []
    unk = -1
    for i, (p, s, t) in enumerate(pieces):
        if t not in (1, 2, 3, 4, 5, 6):
            raise ValueError('%s: piece %d has unknown type %d' % (path, i, t))
        if t == T_UNKNOWN and unk < 0:
            unk = i
        out.append((p, s, t, TF_ADDED if t == T_USER else 0))
    sec = _pack(KIND_SP, flags, 0, unk, out, [], '')

    def sid(field, default):
        v = _signed(tr.get(field, default))
        return v if 0 <= v < len(pieces) else -1
    bos, eos = sid(41, 1), sid(42, 2)
    info = {'source': 'tokenizer.model', 'kind': KIND_SP, 'n_tokens': len(pieces), 'unk_id': unk,
            'bos_id': bos, 'bos_token': pieces[bos][0] if bos >= 0 else None,
            'eos_ids': [eos] if eos >= 0 else [],
            'eos_tokens': [pieces[eos][0]] if eos >= 0 else [],
            'add_bos': bos >= 0, 'flags': flags, 'pretokenizer': 0}
    return sec, info


# ---------------------------------------------------------------- tokenizer.json

def _flatten(node, key):
    if node is None:
        return []
    if node.get('type') == 'Sequence':
        out = []
        for n in node.get(key, []):
            out.extend(_flatten(n, key))
        return out
    return [node]


def _content(tok):
    if isinstance(tok, dict):
        return tok.get('content')
    return tok


def _section_from_tokenizer_json(d, path, hf_dir):
    model = d.get('model') or {}
    if model.get('type', 'BPE') != 'BPE':
        raise ValueError('%s: model type %r is not supported (only BPE)' % (path, model.get('type')))
    if model.get('dropout') not in (None, 0, 0.0):
        raise ValueError('%s: BPE dropout is not supported' % path)
    for k in ('continuing_subword_prefix', 'end_of_word_suffix'):
        if model.get(k):
            raise ValueError('%s: BPE %s %r is not supported' % (path, k, model.get(k)))
    vocab = model.get('vocab') or {}
    added = d.get('added_tokens') or []
    norms = _flatten(d.get('normalizer'), 'normalizers')
    pretoks = _flatten(d.get('pre_tokenizer'), 'pretokenizers')
    flags = 0
    kind = None
    pretok = 0
    pattern = ''
    prepend = None      # 'normalizer' | 'always' | 'first' | None
    replace_space = False
    for n in norms:
        t = n.get('type')
        if t == 'NFC':
            flags |= F_NFC
        elif t == 'Prepend' and n.get('prepend') == SPACE:
            prepend = 'normalizer'
        elif t == 'Replace' and (n.get('pattern') or {}).get('String') == ' ' and n.get('content') == SPACE:
            replace_space = True
        else:
            raise ValueError('%s: normalizer %s is not supported (only NFC, Prepend("\u2581"), '
                             'Replace(" ", "\u2581"))' % (path, json.dumps(n)))
    types = [p.get('type') for p in pretoks]
    if 'ByteLevel' in types:
        kind = KIND_BYTELEVEL
        bl = pretoks[types.index('ByteLevel')]
        rest = [p for p in pretoks if p is not bl]
        if bl.get('use_regex', True):
            if rest:
                raise ValueError('%s: ByteLevel(use_regex=true) with other pre-tokenizers %s is not '
                                 'supported' % (path, json.dumps(rest)))
            pretok, pattern = 1, GPT2_PATTERN
        else:
            if len(rest) != 1 or rest[0].get('type') != 'Split' or pretoks.index(rest[0]) != 0:
                raise ValueError('%s: pre-tokenizers %s are not supported (expected Split(regex) then '
                                 'ByteLevel)' % (path, json.dumps(pretoks)))
            sp = rest[0]
            pattern = (sp.get('pattern') or {}).get('Regex')
            if sp.get('behavior') != 'Isolated' or sp.get('invert'):
                raise ValueError('%s: Split behavior %r invert %r is not supported (only Isolated)'
                                 % (path, sp.get('behavior'), sp.get('invert')))
            if pattern not in PRETOK_IDS:
                raise ValueError('%s: pre-split regex %r is not one of the implemented ones '
                                 '(GPT-2, Llama-3, Qwen2)' % (path, pattern))
            pretok = PRETOK_IDS[pattern]
        if bl.get('add_prefix_space'):
            flags |= F_DUMMY_PREFIX | F_PREFIX_UNLESS_SPACE
        if prepend or replace_space:
            raise ValueError('%s: Prepend/Replace normalizers with ByteLevel are not supported' % path)
    else:
        kind = KIND_SP
        if len(pretoks) > 1 or (pretoks and pretoks[0].get('type') != 'Metaspace'):
            raise ValueError('%s: pre-tokenizer %s is not supported (only Metaspace, ByteLevel, '
                             'Split(regex)+ByteLevel)' % (path, json.dumps(pretoks)))
        if pretoks:
            ms = pretoks[0]
            if ms.get('replacement', SPACE) != SPACE:
                raise ValueError('%s: Metaspace replacement %r is not supported' % (path, ms.get('replacement')))
            if prepend:
                raise ValueError('%s: both a Prepend normalizer and Metaspace' % path)
            scheme = ms.get('prepend_scheme')
            if scheme is None:
                scheme = 'always' if ms.get('add_prefix_space', True) else 'never'
            if scheme not in ('always', 'first', 'never'):
                raise ValueError('%s: Metaspace prepend_scheme %r is not supported' % (path, scheme))
            if scheme != 'never':
                flags |= F_DUMMY_PREFIX | F_PREFIX_UNLESS_SPACE
                if scheme == 'first':
                    flags |= F_PREFIX_FIRST
            if ms.get('split', True):
                flags |= F_METASPACE_SPLIT
        else:
            if not replace_space:
                raise ValueError('%s: no ByteLevel or Metaspace pre-tokenizer and no Replace(" ", '
                                 '"\u2581") normalizer: not a SentencePiece-style or byte-level BPE'
                                 % path)
            if prepend:
                flags |= F_DUMMY_PREFIX
        if model.get('byte_fallback'):
            flags |= F_BYTE_FALLBACK
    flags |= F_HF
    if model.get('fuse_unk'):
        flags |= F_FUSE_UNK
    if model.get('ignore_merges'):
        flags |= F_IGNORE_MERGES

    # id -> piece, type, flags
    n_tokens = 0
    for p, i in vocab.items():
        n_tokens = max(n_tokens, i + 1)
    for a in added:
        n_tokens = max(n_tokens, a['id'] + 1)
    pieces = [None] * n_tokens
    for p, i in vocab.items():
        if pieces[i] is not None:
            raise ValueError('%s: id %d used twice in the vocabulary' % (path, i))
        typ = T_NORMAL
        if kind == KIND_SP and len(p) == 6 and p.startswith('<0x') and p.endswith('>') and \
                all(c in '0123456789ABCDEF' for c in p[3:5]):
            typ = T_BYTE
        pieces[i] = [p, 0.0, typ, 0]
    unk_tok = model.get('unk_token')
    unk = vocab.get(unk_tok, -1) if unk_tok is not None else -1
    if unk_tok is not None and unk < 0:
        raise ValueError('%s: unk_token %r is not in the vocabulary' % (path, unk_tok))
    if unk >= 0:
        pieces[unk][2] = T_UNKNOWN
    for a in added:
        c = a['content']
        i = a['id']
        if a.get('single_word'):
            raise ValueError('%s: added token %r has single_word=true (not implemented)' % (path, c))
        fl = TF_ADDED
        if a.get('lstrip'):
            fl |= TF_LSTRIP
        if a.get('rstrip'):
            fl |= TF_RSTRIP
        if a.get('normalized', not a.get('special', False)):
            if kind == KIND_SP:
                raise ValueError('%s: added token %r has normalized=true with a Metaspace tokenizer '
                                 '(not implemented)' % (path, c))
            if unicodedata.normalize('NFC', c) != c:
                raise ValueError('%s: normalized added token %r is not NFC' % (path, c))
            fl |= TF_NORMALIZED
        if a.get('special'):
            fl |= TF_SPECIAL
        if pieces[i] is not None and pieces[i][0] != c:
            raise ValueError('%s: added token %d %r differs from vocabulary piece %r' % (path, i, c, pieces[i][0]))
        typ = T_CONTROL if a.get('special') else T_USER
        if pieces[i] is not None and pieces[i][2] == T_UNKNOWN:
            typ = T_UNKNOWN
        pieces[i] = [c, 0.0, typ, fl]
    holes = [i for i, p in enumerate(pieces) if p is None]
    for i in holes:
        pieces[i] = ['<rh_unused_%d>' % i, 0.0, T_UNUSED, 0]
    # merges: "a b" strings or [a, b]; HF keeps the last rank of a repeated pair
    raw = model.get('merges') or []
    pairs = {}
    order = []
    for k, m in enumerate(raw):
        if isinstance(m, str):
            parts = m.split(' ')
            if len(parts) != 2:
                raise ValueError('%s: merge %d %r is not "left right"' % (path, k, m))
            a, b = parts
        else:
            a, b = m
        if a not in vocab or b not in vocab or (a + b) not in vocab:
            raise ValueError('%s: merge %d (%r, %r) uses a piece outside the vocabulary' % (path, k, a, b))
        key = (vocab[a], vocab[b])
        if key in pairs:
            order[pairs[key]] = None
        pairs[key] = len(order)
        order.append((vocab[a], vocab[b], vocab[a + b]))
    merges = [m for m in order if m is not None]
    if kind == KIND_SP and not merges:
        raise ValueError('%s: a Metaspace BPE without merges (the C would merge by score)' % path)
    # scores: SentencePiece-converted vocabularies have none; use minus the merge rank of
    # the piece (informational: kind 1 with merges uses the ranks)
    sec = _pack(kind, flags, pretok, unk, [tuple(p) for p in pieces], merges, pattern or '')

    # bos / eos / add_bos from tokenizer_config.json, generation_config.json, post_processor
    cfg = {}
    cp = os.path.join(hf_dir, 'tokenizer_config.json')
    if os.path.exists(cp):
        cfg = json.load(open(cp, encoding='utf-8'))
    by_content = {p[0]: i for i, p in enumerate(pieces)}
    bos_tok = _content(cfg.get('bos_token'))
    eos_tok = _content(cfg.get('eos_token'))
    bos = by_content.get(bos_tok, -1) if bos_tok else -1
    eos_ids = [by_content[eos_tok]] if eos_tok in by_content else []
    gp = os.path.join(hf_dir, 'generation_config.json')
    if os.path.exists(gp):
        g = json.load(open(gp, encoding='utf-8'))
        e = g.get('eos_token_id')
        for x in (e if isinstance(e, list) else [e] if e is not None else []):
            if isinstance(x, int) and 0 <= x < n_tokens and x not in eos_ids:
                eos_ids.append(x)
        if bos < 0 and isinstance(g.get('bos_token_id'), int) and 0 <= g['bos_token_id'] < n_tokens:
            bos = g['bos_token_id']
    add_bos = cfg.get('add_bos_token')
    if add_bos is None:
        add_bos = False
        pp = d.get('post_processor') or {}
        for p in _flatten(pp, 'processors'):
            if p.get('type') == 'TemplateProcessing':
                single = p.get('single') or []
                if single and 'SpecialToken' in single[0]:
                    add_bos = True
                    sid = single[0]['SpecialToken'].get('id')
                    if bos < 0 and sid in by_content:
                        bos = by_content[sid]
    info = {'source': 'tokenizer.json', 'kind': kind, 'n_tokens': n_tokens, 'unk_id': unk,
            'bos_id': bos, 'bos_token': pieces[bos][0] if bos >= 0 else None,
            'eos_ids': eos_ids, 'eos_tokens': [pieces[i][0] for i in eos_ids],
            'add_bos': bool(add_bos and bos >= 0), 'flags': flags, 'pretokenizer': pretok}
    return sec, info


def tokenizer_section(hf_dir):
    """(section bytes, info dict) for the model directory hf_dir (ValueError if unsupported)."""
    tj = os.path.join(hf_dir, 'tokenizer.json')
    tm = os.path.join(hf_dir, 'tokenizer.model')
    if os.path.exists(tj):
        with open(tj, encoding='utf-8') as f:
            d = json.load(f)
        return _section_from_tokenizer_json(d, tj, hf_dir)
    if os.path.exists(tm):
        return _section_from_sentencepiece(tm)
    raise ValueError('%s: neither tokenizer.json nor tokenizer.model found' % hf_dir)


if __name__ == '__main__':
    import sys
    if len(sys.argv) not in (2, 3):
        sys.exit('usage: rhw_tok.py HF_DIR [OUT_SECTION]')
    sec, info = tokenizer_section(sys.argv[1])
    if len(sys.argv) == 3:
        with open(sys.argv[2], 'wb') as f:
            f.write(sec)
    print(json.dumps(info))
