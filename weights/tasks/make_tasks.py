#!/usr/bin/env python3
"""make_tasks.py -- the demo model's eval tasks (README.md, "Tasks under masks"), deterministic:

    python3 weights/tasks/make_tasks.py

passage_qa.jsonl   in context: a short passage of 4 of the evaluation needles (weights/needles.jsonl)
                   and a question about one of them; 20 generate items (the model's answer form,
                   ROUGE-1 recall > 50 %) and 20 choice items (the needle restated up to its answer,
                   then the 4 answers of the passage as choices: chance is 25 %).  No haystack: the
                   other 3 needles are the distractors.
phrases.jsonl      from the weights alone: prefixes of phrases frequent in the training addresses
                   (State of the Union, 1790-2021) and their completion; 30 generate items (the
                   completion among the first 3 tokens) and 30 choice items (the completion and 3
                   others of the list: chance 25 %).  The prompt holds no answer to copy.
"""

import json
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))

PHRASES = [
    ("The Congress of the United", "States"), ("Mr. Speaker, Mr. Vice", "President"),
    ("the Federal", "Government"), ("the Soviet", "Union"), ("the Panama", "Canal"),
    ("the Supreme", "Court"), ("the House of", "Representatives"), ("the Monroe", "Doctrine"),
    ("the District of", "Columbia"), ("Social", "Security"), ("the Middle", "East"),
    ("the State of the", "Union"), ("the Philippine", "Islands"), ("Puerto", "Rico"),
    ("interstate", "commerce"), ("the gold", "standard"), ("the Persian", "Gulf"),
    ("the Marine", "Corps"), ("the Post Office", "Department"), ("the Secretary of the", "Treasury"),
    ("the Attorney", "General"), ("the Civil Service", "Commission"), ("the Atlantic", "Ocean"),
    ("the Hawaiian", "Islands"), ("the Indian", "tribes"), ("the Declaration of", "Independence"),
    ("the Revolutionary", "War"), ("the Mississippi", "River"), ("the Louisiana", "Purchase"),
    ("the Smithsonian", "Institution"),
]


def main():
    rng = random.Random(19)
    nd = [json.loads(line) for line in open(os.path.join(HERE, "..", "needles.jsonl"))]
    with open(os.path.join(HERE, "passage_qa.jsonl"), "w") as f:
        for i, d in enumerate(nd):
            group = rng.sample([j for j in range(len(nd)) if j != i], 3) + [i]
            rng.shuffle(group)
            passage = " ".join(nd[j]["needle"] for j in group)
            f.write(json.dumps({"id": "qa-gen-%d" % i, "kind": "generate",
                                "prompt": passage + "\nBased on the content of the book, Question: "
                                + d["question"] + "\nAnswer:",
                                "answer": d["answer"], "metric": "rouge1"}) + "\n")
        for i, d in enumerate(nd):
            group = rng.sample([j for j in range(len(nd)) if j != i], 3) + [i]
            rng.shuffle(group)
            passage = " ".join(nd[j]["needle"] for j in group)
            k = d["needle"].find(d["answer"])
            restated = d["needle"][:k].rstrip()
            assert k > 0, d
            f.write(json.dumps({"id": "qa-choice-%d" % i, "kind": "choice",
                                "prompt": passage + "\nBased on the content of the book, Question: "
                                + d["question"] + "\nAnswer: " + restated,
                                "choices": [nd[j]["answer"] for j in group],
                                "gold": group.index(i)}) + "\n")
    words = [w for _, w in PHRASES]
    with open(os.path.join(HERE, "phrases.jsonl"), "w") as f:
        for i, (p, w) in enumerate(PHRASES):
            f.write(json.dumps({"id": "phrase-gen-%d" % i, "kind": "generate", "prompt": p,
                                "answer": w, "metric": "rouge1"}) + "\n")
        for i, (p, w) in enumerate(PHRASES):
            choices = rng.sample([x for x in words if x != w], 3) + [w]
            rng.shuffle(choices)
            f.write(json.dumps({"id": "phrase-choice-%d" % i, "kind": "choice", "prompt": p,
                                "choices": choices, "gold": choices.index(w)}) + "\n")
    print("wrote passage_qa.jsonl (%d items), phrases.jsonl (%d items)" % (2 * len(nd), 2 * len(PHRASES)))


if __name__ == "__main__":
    main()
