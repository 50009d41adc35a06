#!/bin/bash
# The measurements of README.md's "Measured on the demo model" (eval, issue 19): detect, then for
# no mask, the top-3 retrieval heads and 3 random other heads: NIAH, passage QA, phrases and the
# perplexity of the held-out haystack.  Outputs in demo/eval/; about 4 minutes on 2 Zen 5 cores.
#   make && bash weights/tasks/measure.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
B=./retrieval_heads M=weights/demo.rhw D=demo/eval T=${T:-2}
G="--lengths 256:1024:3 --depths 0:100:3"
mkdir -p $D
$B detect $M $G -t $T --quiet --fresh -o $D/scores.json > $D/detect.txt
for c in none top random; do
  case $c in
    none) MK=() ;;
    top) MK=(--mask-top 3 --scores $D/scores.json) ;;
    random) MK=(--mask-random 3 --scores $D/scores.json --seed 1) ;;
  esac
  $B niah $M $G -t $T --quiet --fresh "${MK[@]}" -o $D/niah_$c > $D/niah_$c.txt
  $B eval $M --task weights/tasks/passage_qa.jsonl --stop '\n' --max-new 48 -t $T -q --fresh "${MK[@]}" -o $D/qa_$c > $D/qa_$c.txt 2>/dev/null
  $B eval $M --task weights/tasks/phrases.jsonl --max-new 3 -t $T -q --fresh "${MK[@]}" -o $D/ph_$c > $D/ph_$c.txt
  $B eval $M --perplexity weights/haystack --window 1024 --stride 512 -t $T -q --fresh "${MK[@]}" -o $D/ppl_$c > $D/ppl_$c.txt
  echo "== mask $c"
  grep -h -E "^(mean score|labels|choice|accuracy|perplexity)" $D/niah_$c.txt $D/qa_$c.txt $D/ph_$c.txt $D/ppl_$c.txt
done
