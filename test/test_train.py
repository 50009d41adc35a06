#!/usr/bin/env python3
"""test_train.py -- bad-flag tests of weights/train.py (Python standard library only).

    python3 test/test_train.py        prints one line per failure and "train: N passed, N failed"

train.py checks its flags before it loads numpy and torch, so these run on any python3: each case
must exit non-zero with a last stderr line that names the flag and the problem, and no traceback.
Run by test/test_reference.c (make test) when a python3 is on PATH.
"""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True
TRAIN = os.path.join(ROOT, "weights", "train.py")

STAGE = '{"name":"x","T":256,"B":2,"steps":10,"lr":1e-4,"mix":%s}'
CASES = [
    (["--workers", "-1"], "--workers: must be 0 or more, got -1"),
    (["--workers", "two"], "argument --workers: invalid int value: 'two'"),
    (["--fit-steps", "-3"], "--fit-steps: must be 0 (off) or a number of seconds, got -3"),
    (["--extra-stage", "{bad"], "--extra-stage: not JSON"),
    (["--extra-stage", "[1, 2]"], "--extra-stage: needs the keys B, T, lr, mix, name, steps"),
    (["--extra-stage", '{"name":"x"}'], "--extra-stage: needs the keys B, T, lr, mix, name, steps"),
    (["--extra-stage", STAGE % '{"lmx":1}'], "--extra-stage: unknown sequence kind 'lmx' in mix"),
    (["--extra-stage", STAGE % '[]'], "--extra-stage: mix must be an object"),
    (["--extra-stage", STAGE.replace('"T":256', '"T":0') % '{"lm":1}'], "--extra-stage: T must be a positive integer"),
    (["--extra-stage", STAGE.replace('"B":2', '"B":1.5') % '{"lm":1}'], "--extra-stage: B must be a positive integer"),
    (["--extra-stage", STAGE.replace('"B":2', '"B":2,"wide":1.5') % '{"needle":1}'],
     "--extra-stage: wide must be a share from 0 to 1"),
    (["--extra-stage", STAGE.replace('"B":2', '"B":2,"full":"all"') % '{"needle":1}'],
     "--extra-stage: full must be a share from 0 to 1"),
    (["--extra-stage", STAGE.replace('"B":2', '"B":2,"early":true') % '{"needle":1}'],
     "--extra-stage: early must be a share from 0 to 1"),
    (["--device", "cuda", "--ranks", "2"], "--ranks: only with --device cpu"),
    (["--ranks", "2", "--plot", "x.svg"], "--ranks: only for training"),
    (["--ranks", "0"], "--ranks: must be a positive integer, got 0"),
    (["--dim", "0"], "--dim: must be a positive integer, got 0"),
    (["--dim", "190"], "--dim 190 / --heads 8 / --kv-heads 4: the head dim must be an even integer"),
    (["--heads", "6", "--kv-heads", "4", "--dim", "192"], "the query heads a multiple of the key/value heads"),
    (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
]


def main():
    passed = failed = 0
    for argv, want in CASES:
        p = subprocess.run([sys.executable, TRAIN] + argv, capture_output=True, text=True, timeout=60)
        lines = p.stderr.strip().splitlines()
        last = lines[-1] if lines else ""
        ok = p.returncode != 0 and want in last and "Traceback" not in p.stderr
        if ok:
            passed += 1
        else:
            failed += 1
            print("FAIL train.py %s: exit %d, stderr %r (want %r)" % (" ".join(argv), p.returncode, p.stderr[-400:], want))
    print("train: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
