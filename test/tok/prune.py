#!/usr/bin/env python3
"""Shrink a tokenizer section to what a given corpus can touch, so real tokenizers (Qwen3,
Llama-3: 5-6 MB sections) fit in the repository as test fixtures.

Kept: every token whose text (the bytes it stands for; for SentencePiece-style pieces the
piece with U+2581) occurs as a substring of the corpus as the tokenizer sees it (raw, NFC,
spaces as U+2581, a prefix at the start and after every added token), plus all byte tokens (and single-byte pieces), unknown, control and added tokens; every merge whose result
is kept.  A BPE candidate pair is always a substring of the text, so the pruned tokenizer gives
the same ids on that corpus as the full one (the regen script checks this).  Ids are renumbered
densely in order; OUT.map (u32 little-endian, one per new id) gives each new id's original id.
Merge order (rank) is kept.

usage: prune.py FULL.sec corpus.txt OUT.sec OUT.map
"""
import os
import re
import struct
import sys
import unicodedata


def read_corpus(path):
    b = open(path, 'rb').read()
    cases, i = [], 0
    while i < len(b):
        nl = b.index(b'\n', i)
        n = int(b[i + 3:nl])
        cases.append(b[nl + 1:nl + 1 + n])
        i = nl + 1 + n + 1
    return cases


def byte_decoder():
    bs = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def parse(sec):
    kind, flags, pretok, unk, n_tok, n_merges, plen = struct.unpack_from('<IIIiIII', sec, 0)
    pos = 28
    pattern = sec[pos:pos + plen]
    pos += plen
    toks = []
    for _ in range(n_tok):
        (ln,) = struct.unpack_from('<I', sec, pos)
        piece = sec[pos + 4:pos + 4 + ln]
        score, typ, fl = struct.unpack_from('<fBB', sec, pos + 4 + ln)
        toks.append((piece, score, typ, fl))
        pos += 4 + ln + 6
    merges = [struct.unpack_from('<III', sec, pos + 12 * k) for k in range(n_merges)]
    return kind, flags, pretok, unk, pattern, toks, merges


def main():
    full, corpus, out_sec, out_map = sys.argv[1:5]
    kind, flags, pretok, unk, pattern, toks, merges = parse(open(full, 'rb').read())
    cases = read_corpus(corpus)
    added = sorted((p.decode('utf-8') for p, _, _, fl in toks if fl & 1), key=len, reverse=True)
    prefix = '\u2581' if kind == 1 else ' '
    views = []
    for c in cases:
        s = c.decode('utf-8', 'replace')
        for v in {s, unicodedata.normalize('NFC', s)}:
            # as is, and cut at added tokens with a prefix on every segment (HF gives each
            # segment between added tokens its own prefix)
            cut, cut_ws = v, v
            for a in added:
                cut = cut.replace(a, '\x00' + prefix)
                # lstrip / rstrip tokens take the whitespace beside them
                cut_ws = re.sub(r'\s*' + re.escape(a) + r'\s*', '\x00' + prefix, cut_ws)
            for x in (v, cut, cut_ws):
                if kind == 1:
                    views.append(('\u2581' + x.replace(' ', '\u2581')).encode('utf-8'))
                else:
                    views.append((' ' + x).encode('utf-8'))
    hay = b'\x00'.join(views)
    dec = byte_decoder()
    keep = []
    for i, (piece, score, typ, fl) in enumerate(toks):
        if typ != 1 or fl & 1 or i == unk:
            keep.append(True)
            continue
        if kind == 2:
            text = piece.decode('utf-8')
            if all(ch in dec for ch in text):
                b = bytes(dec[ch] for ch in text)
            else:
                b = piece
        else:
            b = piece
        keep.append(len(b) == 1 or b in hay)
    for l, r, res in merges:
        if keep[res]:
            keep[l] = keep[r] = True
    new_id = {}
    order = []
    for i, k in enumerate(keep):
        if k:
            new_id[i] = len(order)
            order.append(i)
    out = bytearray(struct.pack('<IIIiIII', kind, flags, pretok, new_id.get(unk, -1), len(order), 0, len(pattern)))
    out += pattern
    for i in order:
        piece, score, typ, fl = toks[i]
        out += struct.pack('<I', len(piece)) + piece + struct.pack('<fBB', score, typ, fl)
    km = [(new_id[l], new_id[r], new_id[res]) for l, r, res in merges if keep[res]]
    struct.pack_into('<I', out, 20, len(km))
    for m in km:
        out += struct.pack('<III', *m)
    for path, data in ((out_sec, bytes(out)), (out_map, struct.pack('<%dI' % len(order), *order))):
        with open(path + '.tmp', 'wb') as f:
            f.write(data)
        os.replace(path + '.tmp', path)
    print('%s: %d of %d tokens, %d of %d merges, %d bytes' % (out_sec, len(order), len(toks), len(km),
                                                           len(merges), len(out)))


if __name__ == '__main__':
    main()
