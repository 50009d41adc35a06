#!/usr/bin/env python3
"""Train two small SentencePiece BPE models on State of the Union text with Debian's
python3-sentencepiece, export their tokenizer sections with weights/rhw_tok.py and write the
ids sentencepiece gives for every case of corpus.txt.

  sp_bf:  byte_fallback, split_digits, user_defined_symbols, identity normalization, defaults
          add_dummy_prefix and remove_extra_whitespaces (the Llama-2 recipe)
  sp_unk: no byte_fallback (unknown characters -> <unk>), remove_extra_whitespaces off

usage (Debian's Python): /usr/bin/python3 sp_ids.py SOTU_DATA_DIR corpus.txt OUT_DIR
writes OUT_DIR/{sp_bf,sp_unk}.{sec,ids} (and the .model files, not committed)
"""
import os
import sys

import sentencepiece as spm

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'weights'))
import rhw_tok  # noqa: E402


def read_corpus(path):
    b = open(path, 'rb').read()
    cases, i = [], 0
    while i < len(b):
        nl = b.index(b'\n', i)
        n = int(b[i + 3:nl])
        cases.append(b[nl + 1:nl + 1 + n].decode('utf-8'))
        i = nl + 1 + n + 1
    return cases


def main():
    sotu, corpus, out = sys.argv[1:4]
    names = sorted(f for f in os.listdir(sotu) if f.endswith('.txt'))
    train = os.path.join(out, 'sp_train.txt')
    with open(train, 'w', encoding='utf-8') as f:
        for n in names[::3]:
            f.write(open(os.path.join(sotu, n), encoding='utf-8').read())
            f.write('\n')
    cases = read_corpus(corpus)
    variants = {
        'sp_bf': dict(byte_fallback=True, split_digits=True,
                      user_defined_symbols=['<ud>', '<|user|>', '@@']),
        'sp_unk': dict(byte_fallback=False, remove_extra_whitespaces=False,
                       character_coverage=0.995),
    }
    for name, kw in variants.items():
        prefix = os.path.join(out, name)
        spm.SentencePieceTrainer.train(
            input=train, model_prefix=prefix, model_type='bpe', vocab_size=3000,
            normalization_rule_name='identity', num_threads=1, max_sentence_length=20000,
            input_sentence_size=0, minloglevel=2, **kw)
        d = os.path.join(out, name + '_dir')
        os.makedirs(d, exist_ok=True)
        os.replace(prefix + '.model', os.path.join(d, 'tokenizer.model'))
        sec, info = rhw_tok.tokenizer_section(d)
        with open(os.path.join(out, name + '.sec'), 'wb') as f:
            f.write(sec)
        sp = spm.SentencePieceProcessor(model_file=os.path.join(d, 'tokenizer.model'))
        with open(os.path.join(out, name + '.ids'), 'w') as f:
            for c in cases:
                f.write(' '.join(str(i) for i in sp.encode(c)) + '\n')
        print(name, info, len(sec), 'bytes')


if __name__ == '__main__':
    main()
