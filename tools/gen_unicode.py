#!/usr/bin/env python3
"""Generate the Unicode tables of the tokenizer section of retrieval_heads.c.

Source: Python's unicodedata module (the Unicode version it reports is written into the output;
Debian's Python 3.11 gives Unicode 14.0.0), adjusted to what Hugging Face tokenizers 0.22 does:
its regex classes follow Unicode 16.0 (ONIG_DELTA below adds the letters and numbers of 15.0-16.0)
and its NFC follows Unicode 9.0 (NFC_AFTER_9 below removes what 10.0-14.0 added).
Standard library only.

Tables written (all sorted by code point, searched by binary search in C):
  tok_uni_cls    {first, last, class} ranges: class 1 = letter (general category L*),
                 2 = number (N*), as the \\p{L} / \\p{N} classes of the pre-split regexes.
                 White space (\\s, the White_Space property) is a short fixed list in the C.
  tok_uni_ccc    {first, last, ccc} ranges of non-zero canonical combining classes.
  tok_uni_nfcqc  {first, last} ranges of code points that may change under NFC: those whose
                 NFC alone differs from themselves, non-starters, and second members of a
                 primary composition (NFC quick check No/Maybe, approximately; a text with none of
                 them is already NFC and is left as it is).
  tok_uni_decomp {cp, offset, length} full canonical decompositions into tok_uni_dpool
                 (Hangul syllables are algorithmic in the C).
  tok_uni_comp   {first, second, composite} primary composites (composition exclusions,
                 singletons and non-starter decompositions left out), sorted by (first, second).

Usage: python3 tools/gen_unicode.py [path/to/retrieval_heads.c]
Rewrites the region between the BEGIN/END GENERATED UNICODE TABLES markers of the file
(default: retrieval_heads.c in this script's parent directory), or prints it with '-'.
"""
import os
import sys
import unicodedata as ud

MAXCP = 0x110000

# Hugging Face tokenizers matches its pre-split regexes with Oniguruma, whose \p{L} / \p{N}
# follow Unicode 16.0.  These are the code points where that differs from Python's unicodedata
# (all assigned in Unicode 15.0-16.0): (first, last, class) with class 1 = L, 2 = N.  Measured
# from tokenizers 0.22 itself with test/tok/probe_unicode.js (npm @anush008/tokenizers).
ONIG_DELTA = [
    (0x1C89, 0x1C8A, 1), (0xA7CB, 0xA7CD, 1), (0xA7DA, 0xA7DC, 1), (0x105C0, 0x105F3, 1),
    (0x10D40, 0x10D49, 2), (0x10D4A, 0x10D65, 1), (0x10D6F, 0x10D85, 1), (0x10EC2, 0x10EC4, 1),
    (0x1123F, 0x11240, 1), (0x11380, 0x11389, 1), (0x1138B, 0x1138B, 1), (0x1138E, 0x1138E, 1),
    (0x11390, 0x113B5, 1), (0x113B7, 0x113B7, 1), (0x113D1, 0x113D1, 1), (0x113D3, 0x113D3, 1),
    (0x116D0, 0x116E3, 2), (0x11BC0, 0x11BE0, 1), (0x11BF0, 0x11BF9, 2), (0x11F02, 0x11F02, 1),
    (0x11F04, 0x11F10, 1), (0x11F12, 0x11F33, 1), (0x11F50, 0x11F59, 2), (0x1342F, 0x1342F, 1),
    (0x13441, 0x13446, 1), (0x13460, 0x143FA, 1), (0x16100, 0x1611D, 1), (0x16130, 0x16139, 2),
    (0x16D40, 0x16D6C, 1), (0x16D70, 0x16D79, 2), (0x18CFF, 0x18CFF, 1), (0x1B132, 0x1B132, 1),
    (0x1B155, 0x1B155, 1), (0x1CCF0, 0x1CCF9, 2), (0x1D2C0, 0x1D2D3, 2), (0x1DF25, 0x1DF2A, 1),
    (0x1E030, 0x1E06D, 1), (0x1E4D0, 0x1E4EB, 1), (0x1E4F0, 0x1E4F9, 2), (0x1E5D0, 0x1E5ED, 1),
    (0x1E5F0, 0x1E5F0, 1), (0x1E5F1, 0x1E5FA, 2), (0x2B739, 0x2B739, 1), (0x2EBF0, 0x2EE5D, 1),
    (0x31350, 0x323AF, 1),
]

# HF's NFC normalizer (crate unicode-normalization-alignments 0.1.12) uses Unicode 9.0 data:
# code points assigned later have no decomposition, combining class 0 and compose with nothing
# there.  These are the ones, among those with normalization behaviour in Python's data,
# assigned in Unicode 10.0-14.0 (DerivedAge, read with perl's Unicode::UCD charprop(cp, "Age")).
NFC_AFTER_9 = [
    (0x7FD, 0x7FD), (0x898, 0x89F), (0x8CA, 0x8D3), (0x9FE, 0x9FE), (0xC3C, 0xC3C),
    (0xD3B, 0xD3C), (0xEBA, 0xEBA), (0x1715, 0x1715), (0x1ABF, 0x1ACE), (0x1DF6, 0x1DFA),
    (0xA82C, 0xA82C), (0x10D24, 0x10D27), (0x10EAB, 0x10EAC), (0x10F46, 0x10F50),
    (0x10F82, 0x10F85), (0x11070, 0x11070), (0x1133B, 0x1133B), (0x1145E, 0x1145E),
    (0x11839, 0x1183A), (0x11930, 0x11930), (0x11935, 0x11935), (0x11938, 0x11938),
    (0x1193D, 0x1193E), (0x11943, 0x11943), (0x119E0, 0x119E0), (0x11A34, 0x11A34),
    (0x11A47, 0x11A47), (0x11A99, 0x11A99), (0x11D42, 0x11D42), (0x11D44, 0x11D45),
    (0x11D97, 0x11D97), (0x16FF0, 0x16FF1), (0x1E130, 0x1E136), (0x1E2AE, 0x1E2AE),
    (0x1E2EC, 0x1E2EF),
]
_AFTER_9 = set(cp for a, b in NFC_AFTER_9 for cp in range(a, b + 1))
_ONIG = {cp: c for a, b, c in ONIG_DELTA for cp in range(a, b + 1)}


def ranges(pred_val):
    """Collapse cp -> value (None = absent) into (first, last, value) runs."""
    out = []
    for cp in range(MAXCP):
        v = pred_val(cp)
        if v is None:
            continue
        if out and out[-1][1] == cp - 1 and out[-1][2] == v:
            out[-1][1] = cp
        else:
            out.append([cp, cp, v])
    return out


def is_surrogate(cp):
    return 0xD800 <= cp <= 0xDFFF


def cls(cp):
    if is_surrogate(cp):
        return None
    if cp in _ONIG:
        return _ONIG[cp]
    c = ud.category(chr(cp))
    if c[0] == 'L':
        return 1
    if c[0] == 'N':
        return 2
    return None


def ccc(cp):
    if is_surrogate(cp) or cp in _AFTER_9:
        return None
    v = ud.combining(chr(cp))
    return v if v else None


def full_decomp(cp):
    if cp in _AFTER_9:
        return None
    d = ud.decomposition(chr(cp))
    if not d or d.startswith('<'):
        return None
    out = []
    for h in d.split():
        sub = full_decomp(int(h, 16))
        out.extend(sub if sub else [int(h, 16)])
    return out


def main():
    decomp = {}
    comp = []
    second = set()
    for cp in range(MAXCP):
        if is_surrogate(cp) or cp in _AFTER_9:
            continue
        d = full_decomp(cp)
        if d:
            decomp[cp] = d
        raw = ud.decomposition(chr(cp))
        if raw and not raw.startswith('<'):
            parts = [int(h, 16) for h in raw.split()]
            if len(parts) == 2 and not (set(parts) & _AFTER_9) and ud.normalize('NFC', chr(parts[0]) + chr(parts[1])) == chr(cp):
                comp.append((parts[0], parts[1], cp))
                second.add(parts[1])
    comp.sort()

    def unsafe(cp):
        if is_surrogate(cp) or cp in _AFTER_9:
            return None
        c = chr(cp)
        if ud.combining(c) or cp in second or ud.normalize('NFC', c) != c:
            return 1
        if 0x1100 <= cp <= 0x11FF:  # Hangul jamo compose algorithmically
            return 1
        return None

    L = []
    w = L.append
    w('/* BEGIN GENERATED UNICODE TABLES (tools/gen_unicode.py from Python unicodedata %s; classes '
      'as Oniguruma\'s Unicode 16.0, NFC as Unicode 9.0: what HF tokenizers uses) */' % ud.unidata_version)
    w('#define TOK_UNICODE_VERSION "%s"' % ud.unidata_version)

    def emit3(name, rows):
        w('static const uint32_t %s[%d][3] = {' % (name, len(rows)))
        line = ''
        for r in rows:
            item = '{0x%X,0x%X,%d},' % tuple(r)
            if len(line) + len(item) > 96:
                w(line)
                line = ''
            line += item
        if line:
            w(line)
        w('};')

    emit3('tok_uni_cls', ranges(cls))
    emit3('tok_uni_ccc', ranges(ccc))
    qc = ranges(unsafe)
    w('static const uint32_t tok_uni_nfcqc[%d][2] = {' % len(qc))
    line = ''
    for r in qc:
        item = '{0x%X,0x%X},' % (r[0], r[1])
        if len(line) + len(item) > 96:
            w(line)
            line = ''
        line += item
    w(line)
    w('};')
    pool = []
    rows = []
    for cp in sorted(decomp):
        rows.append((cp, len(pool), len(decomp[cp])))
        pool.extend(decomp[cp])
    w('static const uint32_t tok_uni_dpool[%d] = {' % len(pool))
    line = ''
    for v in pool:
        item = '0x%X,' % v
        if len(line) + len(item) > 96:
            w(line)
            line = ''
        line += item
    w(line)
    w('};')
    emit3('tok_uni_decomp', rows)
    emit3('tok_uni_comp', comp)
    w('/* END GENERATED UNICODE TABLES */')
    text = '\n'.join(L) + '\n'

    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), '..', 'retrieval_heads.c')
    if path == '-':
        sys.stdout.write(text)
        return
    src = open(path, encoding='utf-8').read()
    a = src.index('/* BEGIN GENERATED UNICODE TABLES')
    b = src.index('/* END GENERATED UNICODE TABLES */') + len('/* END GENERATED UNICODE TABLES */\n')
    tmp = path + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        f.write(src[:a] + text + src[b:])
    os.replace(tmp, path)


if __name__ == '__main__':
    main()
