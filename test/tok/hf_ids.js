#!/usr/bin/env node
// Expected ids from Hugging Face tokenizers (npm @anush008/tokenizers: Node bindings of the
// Rust library) for every case of corpus.txt, one line of space-separated ids per case.
// No special tokens are added (addSpecialTokens false); special tokens written in the text are
// matched as HF matches them.  Cases are valid UTF-8 (a JS string cannot hold invalid bytes).
// usage: NODE_PATH=/tmp/npmw/node_modules node hf_ids.js tokenizer.json corpus.txt out.ids
'use strict';
const fs = require('fs');
const { Tokenizer } = require('@anush008/tokenizers');

function readCorpus(path) {
  const b = fs.readFileSync(path);
  const cases = [];
  let i = 0;
  while (i < b.length) {
    const nl = b.indexOf(10, i);
    const head = b.slice(i, nl).toString('latin1');
    if (!head.startsWith('@@ ')) throw new Error('bad corpus header at byte ' + i);
    const n = parseInt(head.slice(3), 10);
    cases.push(b.slice(nl + 1, nl + 1 + n));
    i = nl + 1 + n + 1;
  }
  return cases;
}

async function main() {
  const [tokPath, corpusPath, outPath] = process.argv.slice(2);
  const tok = Tokenizer.fromFile(tokPath);
  const cases = readCorpus(corpusPath);
  const lines = [];
  for (const c of cases) {
    const s = c.toString('utf8');
    if (!Buffer.from(s, 'utf8').equals(c)) throw new Error('case is not valid UTF-8');
    const e = await tok.encode(s, null, { addSpecialTokens: false });
    lines.push(Array.from(e.getIds()).join(' '));
  }
  fs.writeFileSync(outPath + '.tmp', lines.join('\n') + '\n');
  fs.renameSync(outPath + '.tmp', outPath);
  console.log(outPath + ': ' + cases.length + ' cases');
}
main().catch((e) => { console.error(e); process.exit(1); });
