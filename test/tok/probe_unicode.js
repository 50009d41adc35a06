#!/usr/bin/env node
// Measure the Unicode classes that Hugging Face tokenizers' regex engine (Oniguruma, inside
// npm @anush008/tokenizers) gives every code point, through the Llama-3 pre-split regex:
//   "a"+X  is one piece       <=> X is \p{L}
//   "1"+X  is one piece       <=> X is \p{N}      (\p{N}{1,3})
//   "."+X+"." has X alone     <=> X is \s or \p{N}
// Prints one line per code point class run: "first last class" (class L, N, S (\s), O other).
// tools/gen_unicode.py embeds the difference between this and Python's unicodedata.
// usage: NODE_PATH=/tmp/npmw/node_modules node probe_unicode.js llama3/tokenizer.json > classes.txt
'use strict';
const { Tokenizer } = require('@anush008/tokenizers');
const pre = Tokenizer.fromFile(process.argv[2]).getPreTokenizer();
const out = [];
let run = null;
function emit(cp, c) {
  if (run && run[2] === c && run[1] === cp - 1) run[1] = cp;
  else { if (run) out.push(run); run = [cp, cp, c]; }
}
const CHUNK = 4096;
for (let base = 0; base < 0x110000; base += CHUNK) {
  const cps = [];
  for (let cp = base; cp < Math.min(base + CHUNK, 0x110000); cp++) if (cp < 0xD800 || cp > 0xDFFF) cps.push(cp);
  let s = '';
  const pos = [];
  let n = 0; // position in code points
  for (const cp of cps) {
    const X = String.fromCodePoint(cp);
    pos.push(n);
    s += 'a' + X + '\n1' + X + '\n.' + X + '.\n';
    n += 10;
  }
  const pieces = pre.preTokenizeString(s);
  const startEnd = new Map();
  for (const [, [a, b]] of pieces) startEnd.set(a, b);
  cps.forEach((cp, i) => {
    const p = pos[i];
    const isL = startEnd.get(p) > p + 1;
    const isN = startEnd.get(p + 3) > p + 4;
    const alone = startEnd.get(p + 7) === p + 8;
    emit(cp, isL ? 'L' : isN ? 'N' : alone ? 'S' : 'O');
  });
}
out.push(run);
for (const [a, b, c] of out) console.log(a.toString(16) + ' ' + b.toString(16) + ' ' + c);
