#!/usr/bin/env python3
"""check_gsm8k.py -- the GSM8K extractor on the real test set (opt-in; not in make test, which
needs neither GSM8K nor Python).  Standard library only:

    make && python3 test/eval/check_gsm8k.py [GSM8K_TEST.jsonl] [./retrieval_heads]

GSM8K is not in this repository (MIT, bring your own copy; the default path is the shared one,
../shared/data/gsm8k/test.jsonl from the repository root).  Every reference solution is given to
`retrieval_heads eval --rescore` as the response of a number item whose answer is that solution;
the run must score 100.0 over all items, each item's extracted answer (strict-match: the number
after "#### ") must be the gold number, and both filters must return what lm-evaluation-harness's
regexes return on the same text (re.findall, first / last match, .strip(), "[invalid]").
"""

import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STRICT = re.compile(r"#### (\-?[0-9\.\,]+)")
FLEXIBLE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")


def lm_eval_filter(regex, group_select, resp):
    match = regex.findall(resp)
    if not match:
        return "[invalid]"
    match = match[group_select]
    if isinstance(match, tuple):
        match = [m for m in match if m]
        match = match[0] if match else "[invalid]"
    return match.strip()


def main():
    data = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared", "data", "gsm8k", "test.jsonl")
    binary = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "retrieval_heads")
    if not os.path.exists(data):
        sys.exit("check_gsm8k: %s not found (give the path of GSM8K's test.jsonl)" % data)
    docs = [json.loads(line) for line in open(data, encoding="utf-8") if line.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "solutions.jsonl")
        with open(src, "w", encoding="utf-8") as f:
            for i, d in enumerate(docs):
                f.write(json.dumps({"id": "gsm8k-%d" % i, "kind": "generate", "metric": "number",
                                    "prompt": "Question: %s\nAnswer:" % d["question"],
                                    "answer": d["answer"], "response": d["answer"]}) + "\n")
        out = subprocess.run([binary, "eval", "--rescore", src, "-o", os.path.join(tmp, "out")],
                             capture_output=True, text=True)
        print(out.stdout, end="")
        if out.returncode != 0:
            sys.exit("check_gsm8k: eval --rescore exited %d: %s" % (out.returncode, out.stderr))
        recs = [json.loads(line) for line in open(os.path.join(tmp, "out.jsonl"), encoding="utf-8")]
    bad = 0
    for d, r in zip(docs, recs):
        gold = d["answer"].split("#### ")[-1].strip().replace(",", "")
        want_s = lm_eval_filter(STRICT, 0, d["answer"])
        want_f = lm_eval_filter(FLEXIBLE, -1, d["answer"])
        if (r["extracted"].replace(",", "") != gold or r["strict"]["extracted"] != want_s or
                r["flexible"]["extracted"] != want_f or not r["correct"]):
            bad += 1
            if bad <= 10:
                print("  %s: extracted %r (strict %r, flexible %r), gold %r, lm-eval %r / %r"
                      % (r["id"], r["extracted"], r["strict"]["extracted"], r["flexible"]["extracted"], gold,
                         want_s, want_f))
    last = out.stdout.strip().splitlines()[-1]
    ok = bad == 0 and len(recs) == len(docs) and last == "accuracy: 100.0 over %d items" % len(docs)
    print("check_gsm8k: %d reference solutions: %s" % (len(docs), "every extracted answer is the gold number, "
          "both filters as lm-evaluation-harness's regexes" if ok else "%d differ" % bad))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
