#!/usr/bin/python3
"""gen_fixtures.py -- regenerate test/eval/squad.jsonl and test/eval/filters.jsonl, the expected
values of eval's text metrics (test/test_eval.c), from the definitions they port.  Standard
library only:

    python3 test/eval/gen_fixtures.py

squad.jsonl: SQuAD v1.1's evaluate-v1.1.py (normalize_answer, exact_match_score, f1_score),
written out below as that script defines them.

filters.jsonl: lm-evaluation-harness's GSM8K answer filters (lm_eval/tasks/gsm8k/gsm8k.yaml,
version 3.0; lm_eval/filters/extraction.py RegexFilter: findall, group_select, the first
non-empty group of a tuple, .strip(), fallback "[invalid]") and its exact_match
(lm_eval/api/metrics.py exact_match_hf_evaluate with regexes_to_ignore ",", "\\$",
"(?s).*#### ", "\\.$" and ignore_case), with Python's re: the C scanners must agree on every
hand-made response (commas, "$", trailing periods, negative and decimal numbers, ...).
"""

import collections
import json
import os
import re
import string

HERE = os.path.dirname(os.path.abspath(__file__))


# ---- SQuAD v1.1 (evaluate-v1.1.py) ----

def normalize_answer(s):
    def remove_articles(text):
        return re.sub(r'\b(a|an|the)\b', ' ', text)

    def white_space_fix(text):
        return ' '.join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return ''.join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def f1_score(prediction, ground_truth):
    prediction_tokens = normalize_answer(prediction).split()
    ground_truth_tokens = normalize_answer(ground_truth).split()
    common = collections.Counter(prediction_tokens) & collections.Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    f1 = (2 * precision * recall) / (precision + recall)
    return f1


def exact_match_score(prediction, ground_truth):
    return normalize_answer(prediction) == normalize_answer(ground_truth)


SQUAD = [
    ("The Eiffel Tower", "eiffel tower"),
    ("an apple a day", "apple day"),
    ("  Denver   Broncos! ", "Denver Broncos"),
    ("the the the", ""),
    ("", ""),
    ("Theatre", "theatre"),
    ("A.B.C.", "abc"),
    ("Santa Clara, California", "Santa Clara"),
    ("1,000 people", "1000 people"),
    ("the cat and the hat", "a cat, a hat"),
    ("cat cat dog", "cat dog dog"),
    ("an_an a-b the'the", "anan ab thethe"),
    ("tab\tnew\nline\x0bvt\x0cff\x1cfs\x1fus", "tab new line vt ff fs us"),
    ("\u00c9cole the caf\u00e9", "\u00c9cole caf\u00e9"),
    ("the\u00e9 a", "the\u00e9"),
    ("Isaac Newton's law", "isaac newtons law"),
    ("$5.00 (five dollars)", "500 five dollars"),
    ("in 1879", "1879"),
    ("An", "an"),
    ("x", "y"),
    ("The quick brown fox jumps over the lazy dog", "quick fox"),
    ("\x01the\x01", "\x01 \x01"),
]

# ---- lm-evaluation-harness, GSM8K ----

STRICT = re.compile(r"#### (\-?[0-9\.\,]+)")
FLEXIBLE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
IGNORE = [",", "\\$", "(?s).*#### ", "\\.$"]


def regex_filter(regex, group_select, resp):
    match = regex.findall(resp)
    if match:
        match = match[group_select]
        if isinstance(match, tuple):
            match = [m for m in match if m]
            if match:
                match = match[0]
            else:
                match = "[invalid]"
        match = match.strip()
    else:
        match = "[invalid]"
    return match


def em_norm(x):
    for s in IGNORE:
        x = re.sub(s, "", x)
    return x.lower()


def exact_match(pred, ref):
    return em_norm(pred) == em_norm(ref)


RESPONSES = [
    "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\nShe makes 9 * 2 = $<<9*2=18>>18 every day.\n#### 18",
    "The answer is 18.",
    "The answer is $18.",
    "The answer is $18.00.",
    "It costs $1,234.",
    "So she has 1,000,000 apples.",
    "The temperature dropped to -5 degrees.",
    "The change is -$3.",
    "He ran 2.5 miles, then 3.75 more.",
    "Total: 7",
    "#### 42",
    "#### -7",
    "#### 1,000",
    "#### -",
    "#### abc then #### 12",
    "##### 99",
    "#### 5.",
    "First 3, then 4, so #### 7\n#### 8",
    "no number here",
    "",
    "a 7 b",
    "a -7 b",
    "a - 7",
    "..",
    "a .. b 5",
    "The answer is 5...",
    "x = 3.14159",
    "version 1.2.3",
    "costs $ 5",
    "12,",
    ",12",
    "-1,2",
    "x-12y",
    "the year 2024. ",
    "18\n",
    "Answer: 18 apples and 3 pears",
    "#### 18\n\nQuestion: next",
    "$$",
    "-$",
    "1-2",
    "3 5 -",
]

GOLDS = ["18", "1234", "1000000", "-5", "-3", "3.75", "7", "42", "-7", "1000", "12", "5", "8",
         "2024", "3", "0"]


def main():
    with open(os.path.join(HERE, "squad.jsonl"), "w", encoding="utf-8") as f:
        for pred, gold in SQUAD:
            f.write(json.dumps({"pred": pred, "gold": gold, "norm_pred": normalize_answer(pred),
                                "norm_gold": normalize_answer(gold),
                                "em": bool(exact_match_score(pred, gold)),
                                "f1": float(f1_score(pred, gold))}) + "\n")
    with open(os.path.join(HERE, "filters.jsonl"), "w", encoding="utf-8") as f:
        for resp in RESPONSES:
            strict = regex_filter(STRICT, 0, resp)
            flexible = regex_filter(FLEXIBLE, -1, resp)
            gold = next((g for g in GOLDS if exact_match(flexible, g)), GOLDS[0])
            f.write(json.dumps({"response": resp, "strict": strict, "flexible": flexible,
                                "gold": gold, "em_norm": em_norm(resp),
                                "strict_ok": exact_match(strict, gold),
                                "flexible_ok": exact_match(flexible, gold)}) + "\n")
    print("wrote %d SQuAD cases, %d GSM8K filter cases" % (len(SQUAD), len(RESPONSES)))


if __name__ == "__main__":
    main()
