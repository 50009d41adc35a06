#!/usr/bin/env python3
"""Tests of weights/rhw_tok.py (standard library only): what it accepts and the flags it sets,
and that it refuses, naming the thing, what retrieval_heads.c does not implement.
usage: python3 test/tok/test_rhw_tok.py   (prints "N passed, N failed")"""
import json
import os
import struct
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', '..', 'weights'))
import rhw_tok  # noqa: E402

passed = failed = 0


def check(name, cond, detail=''):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print('FAIL %s %s' % (name, detail))


def write_dir(files):
    d = tempfile.mkdtemp(prefix='rhw_tok_test.')
    for name, data in files.items():
        mode = 'wb' if isinstance(data, bytes) else 'w'
        with open(os.path.join(d, name), mode) as f:
            f.write(data)
    return d


def header(sec):
    return struct.unpack_from('<IIIiIII', sec, 0)


# ---- tokenizer.json ----

def base_json(**over):
    vocab = {'<unk>': 0, '<s>': 1, '</s>': 2, '\u2581': 3, 'a': 4, 'b': 5, 'ab': 6, '\u2581ab': 7}
    for b in range(256):
        vocab['<0x%02X>' % b] = 8 + b
    d = {
        'added_tokens': [{'id': i, 'content': c, 'special': True, 'normalized': False, 'lstrip': False,
                          'rstrip': False, 'single_word': False} for i, c in ((0, '<unk>'), (1, '<s>'), (2, '</s>'))],
        'normalizer': {'type': 'Sequence', 'normalizers': [{'type': 'Prepend', 'prepend': '\u2581'},
                                                            {'type': 'Replace', 'pattern': {'String': ' '}, 'content': '\u2581'}]},
        'pre_tokenizer': None,
        'post_processor': {'type': 'TemplateProcessing', 'single': [{'SpecialToken': {'id': '<s>', 'type_id': 0}},
                                                                    {'Sequence': {'id': 'A', 'type_id': 0}}]},
        'model': {'type': 'BPE', 'unk_token': '<unk>', 'byte_fallback': True, 'fuse_unk': True,
                  'vocab': vocab, 'merges': ['a b', '\u2581 ab']},
    }
    d.update(over)
    return d


def section_of(d):
    return rhw_tok.tokenizer_section(write_dir({'tokenizer.json': json.dumps(d)}))


def refused(name, d, words):
    try:
        section_of(d)
    except ValueError as e:
        check(name, all(w in str(e) for w in words), '(message: %s)' % e)
        return
    check(name, False, '(accepted)')


sec, info = section_of(base_json())
kind, flags, pretok, unk, n_tok, n_merges, plen = header(sec)
check('llama2-style kind/flags', kind == 1 and flags == (rhw_tok.F_HF | rhw_tok.F_DUMMY_PREFIX |
      rhw_tok.F_BYTE_FALLBACK | rhw_tok.F_FUSE_UNK) and n_tok == 264 and n_merges == 2 and unk == 0,
      str(header(sec)))
check('llama2-style info', info['bos_id'] == 1 and info['add_bos'] and info['unk_id'] == 0, str(info))

ms = base_json(normalizer=None, pre_tokenizer={'type': 'Metaspace', 'replacement': '\u2581',
                                               'prepend_scheme': 'first', 'split': False})
check('metaspace first flags', header(section_of(ms)[0])[1] == (rhw_tok.F_HF | rhw_tok.F_DUMMY_PREFIX |
      rhw_tok.F_PREFIX_UNLESS_SPACE | rhw_tok.F_PREFIX_FIRST | rhw_tok.F_BYTE_FALLBACK | rhw_tok.F_FUSE_UNK))
# merges given as pairs, a repeated pair keeps its last rank (HF's HashMap)
sec2, _ = section_of(base_json(model=dict(base_json()['model'], merges=[['a', 'b'], ['\u2581', 'ab'], ['a', 'b']])))
m = [struct.unpack_from('<III', sec2, len(sec2) - 24 + 12 * k) for k in range(2)]
check('repeated merge keeps last rank', header(sec2)[5] == 2 and m == [(3, 6, 7), (4, 5, 6)], str(m))

refused('unigram json', base_json(model={'type': 'Unigram', 'vocab': []}), ['Unigram'])
refused('wordpiece json', base_json(model={'type': 'WordPiece', 'vocab': {}}), ['WordPiece'])
refused('lowercase normalizer', base_json(normalizer={'type': 'Lowercase'}), ['Lowercase'])
refused('nfkc normalizer', base_json(normalizer={'type': 'NFKC'}), ['NFKC'])
refused('metaspace replacement', base_json(normalizer=None, pre_tokenizer={'type': 'Metaspace', 'replacement': '_'}), ['replacement'])
refused('whitespace pre-tokenizer', base_json(normalizer=None, pre_tokenizer={'type': 'Whitespace'}), ['Whitespace'])
refused('unknown regex', base_json(normalizer=None, pre_tokenizer={'type': 'Sequence', 'pretokenizers': [
    {'type': 'Split', 'pattern': {'Regex': '\\w+'}, 'behavior': 'Isolated', 'invert': False},
    {'type': 'ByteLevel', 'add_prefix_space': False, 'use_regex': False}]}), ['\\\\w+'])
refused('split behavior', base_json(normalizer=None, pre_tokenizer={'type': 'Sequence', 'pretokenizers': [
    {'type': 'Split', 'pattern': {'Regex': rhw_tok.QWEN2_PATTERN}, 'behavior': 'Removed', 'invert': False},
    {'type': 'ByteLevel', 'add_prefix_space': False, 'use_regex': False}]}), ['Removed'])
refused('dropout', base_json(model=dict(base_json()['model'], dropout=0.1)), ['dropout'])
refused('subword prefix', base_json(model=dict(base_json()['model'], continuing_subword_prefix='##')), ['##'])
refused('merge outside vocab', base_json(model=dict(base_json()['model'], merges=['a zz'])), ['zz'])
d = base_json()
d['added_tokens'][1]['single_word'] = True
refused('single_word', d, ['single_word'])
try:
    rhw_tok.tokenizer_section(write_dir({}))
    check('empty dir', False)
except ValueError as e:
    check('empty dir', 'neither tokenizer.json nor tokenizer.model' in str(e), str(e))

# ---- tokenizer.model (protobuf written by hand) ----


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def field(num, wire, payload):
    key = varint(num << 3 | wire)
    if wire == 2:
        return key + varint(len(payload)) + payload
    if wire == 0:
        return key + varint(payload)
    return key + payload


def sp_model(model_type=2, norm_name=b'identity', byte_fallback=True, remove_ws=None):
    pieces = [('<unk>', 0.0, 2), ('<s>', 0.0, 3), ('</s>', 0.0, 3), ('<ud>', 0.0, 4), ('\u2581', -1.0, 1), ('a', -2.0, 1)]
    pieces += [('<0x%02X>' % b, 0.0, 6) for b in range(256)]
    data = b''
    for p, s, t in pieces:
        data += field(1, 2, field(1, 2, p.encode()) + field(2, 5, struct.pack('<f', s)) + field(3, 0, t))
    tr = field(3, 0, model_type) + field(35, 0, 1 if byte_fallback else 0) + field(41, 0, 1) + field(42, 0, 2)
    nm = field(1, 2, norm_name)
    if remove_ws is not None:
        nm += field(4, 0, remove_ws)
    return data + field(2, 2, tr) + field(3, 2, nm)


sec, info = rhw_tok.tokenizer_section(write_dir({'tokenizer.model': sp_model()}))
kind, flags, pretok, unk, n_tok, n_merges, plen = header(sec)
check('sp kind/flags', kind == 1 and n_tok == 262 and n_merges == 0 and unk == 0 and flags == (
      rhw_tok.F_DUMMY_PREFIX | rhw_tok.F_REMOVE_WS | rhw_tok.F_BYTE_FALLBACK | rhw_tok.F_FUSE_UNK), str(header(sec)))
check('sp info', info['bos_id'] == 1 and info['eos_ids'] == [2] and info['add_bos'], str(info))
# the user_defined piece is an added token, the control pieces are not
off = 28
types = []
for i in range(4):
    (ln,) = struct.unpack_from('<I', sec, off)
    types.append(sec[off + 4 + ln + 4:off + 4 + ln + 6])
    off += 4 + ln + 6
check('sp types', types == [bytes([2, 0]), bytes([3, 0]), bytes([3, 0]), bytes([4, 1])], str(types))
flags_off = header(rhw_tok.tokenizer_section(write_dir({'tokenizer.model': sp_model(remove_ws=0)}))[0])[1]
check('sp remove_extra_whitespaces off', not flags_off & rhw_tok.F_REMOVE_WS)
for name, kw, words in (('sp unigram', dict(model_type=1), ['unigram']),
                        ('sp nfkc', dict(norm_name=b'nmt_nfkc'), ['nmt_nfkc'])):
    try:
        rhw_tok.tokenizer_section(write_dir({'tokenizer.model': sp_model(**kw)}))
        check(name, False, '(accepted)')
    except ValueError as e:
        check(name, all(w in str(e) for w in words), str(e))
try:
    rhw_tok.tokenizer_section(write_dir({'tokenizer.model': sp_model()[:-7]}))
    check('sp truncated', False, '(accepted)')
except ValueError as e:
    check('sp truncated', 'truncated' in str(e), str(e))

print('%d passed, %d failed' % (passed, failed))
sys.exit(1 if failed else 0)
