#!/usr/bin/env python3
"""Train the demo model of retrieval_heads: a small Qwen2/Llama-style transformer in which
retrieval (copy-from-context) heads emerge.  CPU, PyTorch, seeded, staged, resumable.

    /usr/bin/python3 weights/prepare_data.py            # data, tokenizer (once)
    /usr/bin/python3 weights/train.py                   # the whole recipe, all stages
    /usr/bin/python3 weights/train.py --resume          # continue from weights/work/ckpt.pt
    /usr/bin/python3 weights/train.py --resume /tmp/end.pt   # from a compact f16 file (weights/README.md)
    /usr/bin/python3 weights/train.py --eval-only CKPT  # report gaps and greedy NIAH accuracy

Recommended environment (speed only, results do not depend on it):
    OPENBLAS_CORETYPE=SKYLAKEX LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2

Architecture: Qwen2ForCausalLM (= Llama with q/k/v biases): RMSNorm, rotate-half RoPE,
grouped-query attention, SwiGLU MLP, tied embeddings.  Training scaffold (not shipped):
"smeared keys" - each attention head's key is mixed with the previous position's key,
k_t <- a k_t + (1-a) k_(t-1), with a learned a per kv head.  It gives the previous-token step
of an induction circuit for free, so copying starts in a few hundred steps on this CPU.  The
scaffold is multiplied by lam, and lam is annealed 1 -> 0 during training; checkpoints are
exported (Hugging Face layout) only when lam == 0, i.e. as the plain standard architecture.

Data: State of the Union addresses (training split), mixed with
  - copy practice: random token sequences with repeated spans;
  - retrieval practice: needle sentences built from templates with random fillers, inserted
    at random depths of corpus windows, followed by the prompt form of `retrieval_heads niah`:
    context + "Based on the content of the book, Question: {q}\nAnswer:" and the answer
    " {needle restated}\n".  Several needles (with distractors) and questions per window.
Evaluation needles (weights/needles.jsonl) and the dev set below use templates and words that
never occur in a training needle (prepare_data.py removes their words from the filler pool).
"""
import argparse, json, math, os, re, struct, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.path.join(HERE, "work")


def parse_args(argv=None):
    """The flags, checked with the standard library alone (before numpy and torch load, so that a
    bad flag fails at once, and test/test_train.py can check them on any python3)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--resume", nargs="?", const="", default=None, help="checkpoint (default: OUT/ckpt.pt)")
    ap.add_argument("--out", default=WORK, help="folder for checkpoints, log and exports (default weights/work)")
    ap.add_argument("--until", default=None, help="stop after this stage is done")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ranks", type=int, default=1,
                    help="processes that split each batch's rows (gloo, gradients summed); 2 on two cores")
    ap.add_argument("--ckpt-every", type=float, default=180.0, help="seconds between checkpoints")
    ap.add_argument("--eval-every", type=int, default=150)
    ap.add_argument("--stop-after", type=float, default=0, help="exit after this many seconds (0: never)")
    ap.add_argument("--speed-test", type=int, default=0, help="time N steps of each stage shape and exit")
    ap.add_argument("--eval-only", default=None, help="checkpoint (.pt) or HF folder to evaluate")
    ap.add_argument("--eval-needles", action="store_true", help="with --eval-only: the evaluation needles")
    ap.add_argument("--lengths", default="256,512")
    ap.add_argument("--export", default=None, help="with --eval-only CKPT: export HF folder here")
    ap.add_argument("--plot", default=None, help="write the loss curves of OUT/train_log.jsonl to this SVG and exit")
    ap.add_argument("--dim", type=int, default=192)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--heads", type=int, default=8, help="query heads (head dim = dim / heads)")
    ap.add_argument("--kv-heads", type=int, default=4)
    ap.add_argument("--ffn", type=int, default=512, help="SwiGLU hidden size")
    ap.add_argument("--device", default="cpu", help="torch device for training: cpu (default) or cuda")
    ap.add_argument("--workers", type=int, default=0,
                    help="processes that build batches ahead (0: the training process builds them); "
                         "the batches are the same either way")
    ap.add_argument("--extra-stage", action="append", default=[], metavar="JSON",
                    help="append a stage (a JSON object with STAGES' keys) to the recipe for this run")
    ap.add_argument("--fit-steps", type=float, default=0, metavar="SECONDS",
                    help="size the last stage to this many seconds from the time of its steps 5-20 "
                         "(the steps chosen are printed; put them in the stage to rerun it)")
    a = ap.parse_args(argv)
    a.stages = []
    for js in a.extra_stage:
        try:
            st = json.loads(js)
        except ValueError as e:
            sys.exit("--extra-stage: not JSON (%s): %s" % (e, js))
        need = {"name", "T", "B", "steps", "lr", "mix"}
        if not isinstance(st, dict) or not need <= set(st):
            sys.exit("--extra-stage: needs the keys %s: %s" % (", ".join(sorted(need)), js))
        if not isinstance(st["mix"], dict) or not st["mix"]:
            sys.exit("--extra-stage: mix must be an object of sequence kinds and shares: %s" % js)
        bad = [k for k in st["mix"] if k not in ("copy", "copysmall", "lm", "needle")]
        if bad:
            sys.exit("--extra-stage: unknown sequence kind %r in mix (copy, copysmall, lm, needle)" % bad[0])
        for k in ("T", "B", "steps"):
            if not isinstance(st[k], int) or st[k] <= 0:
                sys.exit("--extra-stage: %s must be a positive integer: %s" % (k, js))
        for k in ("full", "early", "wide"):
            if k in st and (isinstance(st[k], bool) or not isinstance(st[k], (int, float)) or not 0 <= st[k] <= 1):
                sys.exit("--extra-stage: %s must be a share from 0 to 1: %s" % (k, js))
        st.setdefault("lam", (0, 0)); st["lam"] = tuple(st["lam"])
        for k in ("prev_sup", "ind_sup"):
            if k in st:
                st[k] = tuple(st[k])
        a.stages.append(st)
    if a.workers < 0:
        sys.exit("--workers: must be 0 or more, got %d" % a.workers)
    if a.fit_steps < 0:
        sys.exit("--fit-steps: must be 0 (off) or a number of seconds, got %g" % a.fit_steps)
    if a.device != "cpu" and a.ranks > 1:
        sys.exit("--ranks: only with --device cpu")
    if a.ranks > 1 and (a.eval_only or a.plot or a.speed_test):
        sys.exit("--ranks: only for training, not with --eval-only, --plot or --speed-test")
    for f in ("dim", "layers", "heads", "kv_heads", "ffn", "ranks"):
        if getattr(a, f) <= 0:
            sys.exit("--%s: must be a positive integer, got %d" % (f.replace("_", "-"), getattr(a, f)))
    if a.dim % a.heads or (a.dim // a.heads) % 2 or a.heads % a.kv_heads:
        sys.exit("--dim %d / --heads %d / --kv-heads %d: the head dim must be an even integer and the "
                 "query heads a multiple of the key/value heads" % (a.dim, a.heads, a.kv_heads))
    return a


if __name__ == "__main__":
    ARGS = parse_args()

import numpy as np  # noqa: E402 (after the flags: see parse_args)
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


# Held-out-template dev set, for monitoring during training.  Distinct from the evaluation
# needles (weights/needles.jsonl), which are only used for the final report.
DEV_NEEDLES = [
    {"needle": "The beekeeper Anselm Thorvaldsen sells honey flavored with wild thyme and lemon.",
     "question": "What does the beekeeper Anselm Thorvaldsen sell?", "answer": "honey flavored with wild thyme and lemon"},
    {"needle": "The clocktower in Ravensmoor chimes a melody called the Crimson Sparrow.",
     "question": "What does the clocktower in Ravensmoor chime?", "answer": "a melody called the Crimson Sparrow"},
    {"needle": "The pilot Marguerite Ashdown carries a lucky acorn wrapped in green silk.",
     "question": "What does the pilot Marguerite Ashdown carry?", "answer": "a lucky acorn wrapped in green silk"},
    {"needle": "The fountain at Bellhaven Square spouts water shaped like a tulip.",
     "question": "What does the fountain at Bellhaven Square spout?", "answer": "water shaped like a tulip"},
    {"needle": "The scarecrow near Millbrook farm wears a yellow raincoat and a monocle.",
     "question": "What does the scarecrow near Millbrook farm wear?", "answer": "a yellow raincoat and a monocle"},
    {"needle": "The diary of Cornelius Fairweather mentions a hidden tunnel beneath the bakery.",
     "question": "What does the diary of Cornelius Fairweather mention?", "answer": "a hidden tunnel beneath the bakery"},
    {"needle": "The puppeteer Svetlana Korhonen performs with marionettes carved from cherry wood.",
     "question": "What does the puppeteer Svetlana Korhonen perform with?", "answer": "marionettes carved from cherry wood"},
    {"needle": "The toll for the Greywater bridge is 37 copper pennies.",
     "question": "What is the toll for the Greywater bridge?", "answer": "37 copper pennies"},
]

PROMPT_Q = "Based on the content of the book, Question: "


def needle_words(rows):
    """The lower-cased words of needle records' needle, question and answer: the words that a
    training needle must not use (prepare_data.py's banned filler words, the wide verb list)."""
    out = set()
    for r in rows:
        for k in ("needle", "question", "answer"):
            out.update(w.lower() for w in re.findall(r"[A-Za-z]+", r[k]))
    return out


# ----------------------------------------------------------------------------- model

class Cfg:
    def __init__(self, **kw):
        self.vocab = 2048; self.dim = 192; self.n_layers = 6; self.n_heads = 8; self.n_kv = 4
        self.ffn = 512; self.rope_theta = 10000.0; self.eps = 1e-6; self.max_pos = 2048; self.bias = True
        self.__dict__.update(kw)

    def d(self):
        return dict(self.__dict__)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__(); self.eps = eps; self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(hd, T, theta, start=0):
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    t = torch.arange(start, start + T, dtype=torch.float64)
    f = torch.outer(t, inv)
    emb = torch.cat([f, f], dim=-1)
    return emb.cos().float(), emb.sin().float()


def rot_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


class Attn(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c; self.hd = c.dim // c.n_heads
        self.q_proj = nn.Linear(c.dim, c.n_heads * self.hd, bias=c.bias)
        self.k_proj = nn.Linear(c.dim, c.n_kv * self.hd, bias=c.bias)
        self.v_proj = nn.Linear(c.dim, c.n_kv * self.hd, bias=c.bias)
        self.o_proj = nn.Linear(c.n_heads * self.hd, c.dim, bias=False)
        self.smear = nn.Parameter(torch.zeros(c.n_kv))  # scaffold: a = sigmoid(smear)
        self.prev_sup = False; self.prev_p = None; self.ind_sup = False; self.ind_p = None

    def forward(self, x, cos, sin, mask, lam, cache=None):
        # x: (B, T, dim); cos/sin: (T, hd); mask: (G*T, Tk) additive; cache: dict or None
        B, T, _ = x.shape
        c = self.c; hd = self.hd; G = c.n_heads // c.n_kv
        q = self.q_proj(x).view(B, T, c.n_heads, hd).transpose(1, 2)  # (B, H, T, hd)
        k = self.k_proj(x).view(B, T, c.n_kv, hd).transpose(1, 2)     # (B, KV, T, hd)
        v = self.v_proj(x).view(B, T, c.n_kv, hd).transpose(1, 2)
        if lam > 0:
            # k_t <- a k_t + (1-a) k_(t-1), a = 1 - lam (1 - sigmoid(smear)); before RoPE
            a = 1.0 - lam * (1.0 - torch.sigmoid(self.smear)).view(1, -1, 1, 1)
            if cache is not None and "kraw" in cache:
                prev = torch.cat([cache["kraw"], k[:, :, :-1]], dim=2)
            else:
                prev = F.pad(k[:, :, :-1], (0, 0, 1, 0))
            kraw_last = k[:, :, -1:]
            k = a * k + (1 - a) * prev
            if cache is not None:
                cache["kraw"] = kraw_last
        q = q * cos + rot_half(q) * sin
        k = k * cos + rot_half(k) * sin
        if cache is not None:
            if "k" in cache:
                k = torch.cat([cache["k"], k], dim=2); v = torch.cat([cache["v"], v], dim=2)
            cache["k"] = k; cache["v"] = v
        Tk = k.shape[2]
        q = (q * (1.0 / math.sqrt(hd))).reshape(B * c.n_kv, G * T, hd)
        kk = k.reshape(B * c.n_kv, Tk, hd); vv = v.reshape(B * c.n_kv, Tk, hd)
        if mask is not None and cache is None and T >= 512 and T % 256 == 0 and Tk == T:
            # Same function, less work: query blocks of 256 see only the keys up to their end, so
            # the masked upper triangle is mostly never computed (about 60 % of the full cost at 1024).
            # The supervised head's probabilities are cut from the blocks (masked ones are exactly 0).
            qg = q.view(B * c.n_kv, G, T, hd)
            outs, prev, ind = [], [], []
            for a0 in range(0, T, 256):
                b0 = a0 + 256
                qc = qg[:, :, a0:b0].reshape(B * c.n_kv, G * 256, hd)
                mc = mask.view(G, T, Tk)[:, a0:b0, :b0].reshape(G * 256, b0)
                pc = torch.softmax(torch.baddbmm(mc, qc, kk[:, :b0].transpose(1, 2)), dim=-1)
                outs.append(torch.bmm(pc, vv[:, :b0]).view(B * c.n_kv, G, 256, hd))
                if self.prev_sup or self.ind_sup:
                    ph = pc.view(B, c.n_kv, G, 256, b0)[:, 0, 0]          # (B, 256, b0): head 0
                    if self.prev_sup:  # p[t, t-1] for t in a0..b0-1 (from t = 1)
                        prev.append(torch.diagonal(ph, offset=a0 - 1, dim1=1, dim2=2))
                    if self.ind_sup:
                        ind.append(F.pad(ph, (0, Tk - b0)))
            if self.prev_sup:
                self.prev_p = torch.cat(prev, dim=1)                       # (B, T-1)
            if self.ind_sup:
                self.ind_p = torch.cat(ind, dim=1)                         # (B, T, Tk)
            o = torch.cat(outs, dim=2).view(B, c.n_heads, T, hd).transpose(1, 2).reshape(B, T, c.n_heads * hd)
            return self.o_proj(o)
        if mask is None:
            s = torch.bmm(q, kk.transpose(1, 2))
        else:
            s = torch.baddbmm(mask, q, kk.transpose(1, 2))          # (B*KV, G*T, Tk)
        p = torch.softmax(s, dim=-1)
        if self.prev_sup and mask is not None:
            # training aid (a loss, not a mechanism): head 0 of this layer is taught to attend to
            # the previous position, the first step of an induction circuit
            ph = p.view(B, c.n_kv, G, T, Tk)[:, 0, 0]                 # (B, T, Tk)
            self.prev_p = torch.diagonal(ph, offset=-1, dim1=1, dim2=2)  # (B, T-1): p[t, t-1]
        if self.ind_sup and mask is not None:
            self.ind_p = p.view(B, c.n_kv, G, T, Tk)[:, 0, 0]            # (B, T, Tk), head 0
        o = torch.bmm(p, vv).view(B, c.n_heads, T, hd).transpose(1, 2).reshape(B, T, c.n_heads * hd)
        return self.o_proj(o)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.input_layernorm = RMSNorm(c.dim, c.eps)
        self.self_attn = Attn(c)
        self.post_attention_layernorm = RMSNorm(c.dim, c.eps)
        self.gate_proj = nn.Linear(c.dim, c.ffn, bias=False)
        self.up_proj = nn.Linear(c.dim, c.ffn, bias=False)
        self.down_proj = nn.Linear(c.ffn, c.dim, bias=False)

    def forward(self, x, cos, sin, mask, lam, cache=None):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, lam, cache)
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class Model(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed_tokens = nn.Embedding(c.vocab, c.dim)
        self.layers = nn.ModuleList([Block(c) for _ in range(c.n_layers)])
        self.norm = RMSNorm(c.dim, c.eps)
        self.lam = 1.0
        self._masks = {}
        self._rope = {}
        for n, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02
                if n.endswith("o_proj.weight") or n.endswith("down_proj.weight"):
                    std = 0.02 / math.sqrt(2 * c.n_layers)
                nn.init.normal_(p, 0.0, std)
            elif n.endswith("bias"):
                nn.init.zeros_(p)

    def dev(self):
        return self.embed_tokens.weight.device

    def mask(self, T):
        G = self.c.n_heads // self.c.n_kv
        key = (T, str(self.dev()))
        if key not in self._masks:
            m = torch.full((T, T), float("-inf")).triu(1)
            self._masks[key] = m.repeat(G, 1).contiguous().to(self.dev())  # rows: g*T + t
        return self._masks[key]

    def rope(self, T, start=0):
        key = (T, start, str(self.dev()))
        if key not in self._rope:
            self._rope[key] = tuple(t.to(self.dev()) for t in
                                    rope_tables(self.c.dim // self.c.n_heads, T, self.c.rope_theta, start))
        return self._rope[key]

    def forward(self, idx, caches=None, start=0):
        B, T = idx.shape
        x = self.embed_tokens(idx)
        cos, sin = self.rope(T, start)
        if caches is None:
            mask = self.mask(T)
        elif T == 1:
            mask = None
        else:
            assert start == 0
            mask = self.mask(T)
        for i, l in enumerate(self.layers):
            x = l(x, cos, sin, mask, self.lam, None if caches is None else caches[i])
        x = self.norm(x)
        return F.linear(x, self.embed_tokens.weight)  # tied output


def n_params(m):
    return sum(p.numel() for n, p in m.named_parameters() if "smear" not in n)


# ----------------------------------------------------------------------------- data

class Data:
    def __init__(self):
        import sentencepiece as spm
        self.sp = spm.SentencePieceProcessor(model_file=os.path.join(HERE, "tokenizer.model"))
        self.ids = np.load(os.path.join(WORK, "train_ids.npy"))
        w = json.load(open(os.path.join(WORK, "words.json")))
        self.words = w["words"]; self.proper = w["proper"]; self.banned = set(w["banned"])
        self.NL = self.sp.piece_to_id("<0x0A>")
        _q = self.sp.encode("Question: Who?\nAnswer:")
        self.ans_pat = _q[len(_q) - 1 - _q[::-1].index(self.NL) + 1:]  # ids of "Answer:" after a newline
        self.V = self.sp.get_piece_size()
        self.first_normal = 3 + 256
        self.hay = load_haystack(self.sp)
        T = Templates(self)
        self.tpl = T

    def enc(self, s):
        return self.sp.encode(s)

    # --- copy practice: random tokens with repeated spans
    def copy_seq(self, rng, T, alphabet=None):
        """alphabet: None (all normal pieces) or an array of token ids to draw from"""
        pool = np.arange(self.first_normal, self.V) if alphabet is None else np.asarray(alphabet)
        seq = [1]; rep = [0]
        while len(seq) < T + 1:
            L = int(rng.integers(4, 31))
            if len(seq) > 40 and rng.random() < 0.55:
                s = int(rng.integers(1, len(seq) - L)) if len(seq) - L > 1 else 1
                span = seq[s:s + L]; seq += span; rep += [0] + [1] * (len(span) - 1)
            else:
                span = pool[rng.integers(0, len(pool), size=L)].tolist(); seq += span; rep += [0] * L
        seq = seq[:T + 1]; rep = rep[:T + 1]
        w = [0.3 + 0.7 * r for r in rep]
        return seq, w, rep

    def small_alphabet(self, rng):
        """8-48 distinct normal pieces: in a copy row drawn from so few, the last token before a
        copied span recurs many times with other successors, so only a longer matching prefix
        tells where to copy from (the failure of session 5's error analysis: `tunnel` -> `...ius`)."""
        n = int(rng.integers(8, 49))
        return rng.choice(np.arange(self.first_normal, self.V), size=n, replace=False)

    # --- language modelling on the corpus
    def lm_seq(self, rng, T):
        s = int(rng.integers(0, len(self.ids) - T - 2))
        seq = [1] + self.ids[s:s + T].astype(np.int64).tolist()
        return seq, [1.0] * (T + 1), [0] * (T + 1)

    # --- retrieval practice
    def context_text(self, rng, ntok):
        s = int(rng.integers(0, len(self.ids) - ntok - 2))
        ids = [int(t) for t in self.ids[s:s + ntok] if t != 1]
        return self.sp.decode(ids)

    def episode(self, rng, budget, early=0.0, wide=0.0):
        """One retrieval episode of about `budget` tokens: (token ids incl. BOS, weights, copy mask)."""
        tp = self.tpl
        k = int(rng.choice([1, 1, 2, 2, 3, 4]))
        needles = tp.group(rng, k, wide)
        nq = 1 if rng.random() < 0.5 else int(rng.integers(1, k + 1))
        qidx = rng.permutation(k)[:nq]
        sep = ["", " ", "\n", "\n\n", " "][int(rng.integers(0, 5))]
        suffix = ""
        for qi in qidx:
            n, q, a = needles[qi]
            suffix += (sep if suffix == "" else "") + PROMPT_Q + q + "\nAnswer: " + a + "\n"
        fixed = len(self.enc(suffix)) + sum(len(self.enc(n[0])) + 1 for n in needles) + 3
        for attempt in range(4):
            nctx = max(0, budget - fixed - 2)
            text = self.context_text(rng, nctx) if nctx > 0 else ""
            text = insert_needles(rng, text, [n[0] for n in needles], early)
            ids = [1] + self.enc(text + suffix)
            if len(ids) <= budget + 1:
                break
            fixed += len(ids) - budget - 1
        return ids, self.answer_weights(ids), None

    def answer_weights(self, ids, w_ans=4.0):
        w = [1.0] * len(ids)
        pat = self.ans_pat; L = len(pat)
        i = 0
        n = len(ids)
        while i < n - L + 1:
            if ids[i] == pat[0] and ids[i:i + L] == pat:
                j = i + L
                while j < n:
                    w[j] = w_ans
                    if ids[j] == self.NL:
                        break
                    j += 1
                i = j
            i += 1
        return w

    def batch(self, rng, B, T, mix, full=None, early=0.0, wide=0.0):
        """mix: dict kind -> fraction (copy, lm, needle); full: share of needle rows that are one
        episode of the whole length (None: 40 %, with the draws of the stages before long1024c, so
        that a seeded rerun sees the same batches); early: see insert_needles; wide: see Templates.make.
        Returns x, y, w."""
        kinds = list(mix.keys()); pr = np.array([mix[k] for k in kinds], dtype=np.float64); pr /= pr.sum()
        X = np.zeros((B, T + 1), dtype=np.int64); W = np.zeros((B, T + 1), dtype=np.float32)
        for b in range(B):
            kind = kinds[int(rng.choice(len(kinds), p=pr))]
            if kind == "copy":
                seq, w, _ = self.copy_seq(rng, T)
            elif kind == "copysmall":
                seq, w, _ = self.copy_seq(rng, T, alphabet=self.small_alphabet(rng))
            elif kind == "lm":
                seq, w, _ = self.lm_seq(rng, T)
            else:
                seq, w = [], []
                while len(seq) < T + 1:
                    rem = T + 1 - len(seq)
                    if rem < 48:
                        s2, w2, _ = self.lm_seq(rng, rem); s2 = s2[1:] + [1]; w2 = w2[1:] + [1.0]
                        seq += s2[:rem]; w += w2[:rem]; break
                    lo = min(48, rem)
                    u = rng.random()
                    partial = u < 0.6 if full is None else u >= full
                    bud = int(rng.integers(lo, rem + 1)) if partial else rem
                    s2, w2, _ = self.episode(rng, bud - 1, early, wide)
                    seq += s2; w += w2
                seq = seq[:T + 1]; w = w[:T + 1]
            X[b] = seq; W[b] = w
        x = torch.from_numpy(X[:, :-1]); y = torch.from_numpy(X[:, 1:]); w = torch.from_numpy(W[:, 1:])
        self.last_ind = induction_targets(X)
        return x, y, w


_FEED_DATA = None


def _feed_init():
    global _FEED_DATA
    torch.set_num_threads(1)
    _FEED_DATA = Data()


def _make_batch(data, job):
    """job = (seed, si, step, B, T, mix, full, early, wide) -> x, y, w, induction targets"""
    seed, si, step, B, T, mix, full, early, wide = job
    x, y, w = data.batch(np.random.default_rng([seed, si, step]), B, T, mix, full, early, wide)
    return x, y, w, data.last_ind


def _feed_batch(job):
    return tuple(t.numpy() for t in _make_batch(_FEED_DATA, job))


class Feeder:
    """The batch of (stage si, step) - from numpy.random.default_rng([seed, si, step]) - built in
    this process, or ahead of time by `workers` processes; the same batches either way."""

    def __init__(self, data, seed, workers):
        self.data = data; self.seed = seed; self.pool = None; self.pending = {}
        self.ahead = 2 * workers
        if workers > 0:
            import multiprocessing as mp
            self.pool = mp.get_context("spawn").Pool(workers, initializer=_feed_init)

    def start(self, si, st, step):
        self.pending = {}
        self.si = si; self.st = st; self.next = step

    def _job(self, step):
        st = self.st
        return (self.seed, self.si, step, st["B"], st["T"], st["mix"], st.get("full"), st.get("early", 0.0),
                st.get("wide", 0.0))

    def get(self, step):
        if self.pool is None:
            return _make_batch(self.data, self._job(step))
        self.next = max(self.next, step)
        while self.next < min(step + self.ahead, self.st["steps"]) or self.next == step:
            self.pending[self.next] = self.pool.apply_async(_feed_batch, (self._job(self.next),))
            self.next += 1
        r = self.pending.pop(step, None)
        if r is None:
            r = self.pool.apply_async(_feed_batch, (self._job(step),))
        x, y, w, ind = r.get()
        return torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(w), torch.from_numpy(ind)


def induction_targets(X):
    """(B, T) int64: for input position s, the key position j = i + 1 of the most recent earlier
    occurrence i of the bigram (X[s-1], X[s]) whose next token equals X[s+1] (the token to predict),
    else -1.  Target of the induction-attention training loss."""
    B, T1 = X.shape; T = T1 - 1
    out = np.full((B, T), -1, dtype=np.int64)
    for b in range(B):
        row = X[b].tolist(); last = {}
        for s in range(1, T):
            k = (row[s - 1], row[s])
            i = last.get(k)
            if i is not None and row[i + 1] == row[s + 1]:
                out[b, s] = i + 1
            last[k] = s
    return torch.from_numpy(out)


def insert_needles(rng, text, needles, early=0.0):
    """Insert each needle at a random depth, moved back to the previous sentence end.
    early: extra share of needles placed in the first 30 % (0 keeps the original draws)."""
    for n in needles:
        r = rng.random()
        if early > 0 and r >= 0.16 and rng.random() < early:
            depth = 0.3 * rng.random()
        else:
            depth = 0.0 if r < 0.08 else (1.0 if r < 0.16 else rng.random())
        text = insert_at(text, n, depth, joiner=" " if rng.random() < 0.85 else "\n")
    return text


def insert_at(text, needle, depth, joiner=" "):
    pos = int(depth * len(text))
    if pos >= len(text):
        return (text.rstrip() + joiner if text else "") + needle + joiner
    cut = -1
    for m in re.finditer(r"[.!?]\"?\s", text[:pos + 1]):
        cut = m.end()
    if cut <= 0:
        return needle + joiner + text
    return text[:cut] + needle + joiner + text[cut:]


def load_haystack(sp):
    d = os.path.join(HERE, "haystack")
    out = ""
    for f in sorted(os.listdir(d)):
        if f.endswith(".txt"):
            out += open(os.path.join(d, f), encoding="utf-8").read().strip() + " "
    return sp.encode(out)


# ----------------------------------------------------------------------------- needle templates

TITLES = ["Doctor", "Mister", "Madam", "Sir", "Lady", "General", "Judge", "Mayor", "Colonel", "Reverend",
          "Uncle", "Aunt", "Father", "Sister", "Brother", "Chief", "Lord", "Master"]
ROLES = ["farmer", "teacher", "painter", "sailor", "miller", "doctor", "soldier", "poet", "merchant", "tailor",
         "fisherman", "weaver", "potter", "shepherd", "blacksmith", "carpenter", "jeweler", "butcher", "hunter",
         "scholar", "priest", "nurse", "clerk", "banker", "lawyer", "singer", "dancer", "cook", "driver",
         "miner", "printer", "barber", "mason", "brewer", "merchant", "librarian", "engineer", "inventor"]
RELS = ["secret code", "secret word", "special word", "chosen title", "magic figure", "special color", "real surname",
        "middle initial", "motto", "nickname", "best dish", "old address", "house code", "pet title", "code word",
        "signal", "riddle answer", "prize", "greatest fear", "first job", "home town", "birthday gift",
        "plan", "goal", "dream", "wish", "treasure", "reward", "pet", "horse", "dog", "cat", "boat", "car",
        "recipe", "song", "book", "motto", "phone code", "room code", "signal word", "safe code"]
PLACE_FMT = ["Fort {N}", "{N} Hill", "{N} Valley", "Lake {N}", "Mount {N}", "{N}", "{N}", "New {N}",
             "{N} Bay", "{N} Springs", "{N} Creek", "{N} County", "the city of {N}", "{N} Road", "{N} Street"]
PLACE_NOUNS = ["house", "tower", "mill", "school", "church", "market", "chapel", "ranch", "hotel", "library",
               "garden", "shop", "hall", "factory", "museum", "store", "tavern", "office", "barn", "court"]
PREPS_AT = ["in", "at", "by", "beside", "outside", "north of", "south of", "east of", "west of", "close to"]
LOC_PREPS = ["in", "beside", "by", "below", "on top of", "next to", "within", "at the back of", "in front of",
             "far from", "beyond", "across from"]
# (present 3sg, base, past) ; verbs used with a direct-object value
VERBS = [("stores", "store", "stored"), ("trades", "trade", "traded"), ("buys", "buy", "bought"), ("enjoys", "enjoy", "enjoyed"),
         ("wants", "want", "wanted"), ("brings", "bring", "brought"), ("builds", "build", "built"),
         ("needs", "need", "needed"), ("hides", "hide", "hid"), ("fears", "fear", "feared"),
         ("writes", "write", "wrote"), ("reads", "read", "read"), ("sends", "send", "sent"),
         ("cooks", "cook", "cooked"), ("draws", "draw", "drew"), ("holds", "hold", "held"),
         ("studies", "study", "studied"), ("guards", "guard", "guarded"), ("loves", "love", "loved"),
         ("makes", "make", "made"), ("finds", "find", "found"), ("orders", "order", "ordered"),
         ("plants", "plant", "planted"), ("polishes", "polish", "polished"), ("teaches", "teach", "taught"),
         ("remembers", "remember", "remembered"), ("prefers", "prefer", "preferred"), ("eats", "eat", "ate"),
         ("drinks", "drink", "drank"), ("wins", "win", "won"), ("takes", "take", "took"), ("sees", "see", "saw"),
         ("chooses", "choose", "chose"), ("gives away", "give away", "gave away"), ("steals", "steal", "stole"),
         ("repairs", "repair", "repaired"), ("describes", "describe", "described"), ("offers", "offer", "offered")]
# More verbs, for the stages with `wide` > 0 (session 7): the shipped model answered
# "What did X juggle?" after "X juggled ..." with "X juggle", restating the question's form, on
# verbs it had not practised.  Irregular ones by hand; regular ones found in the filler pool (see
# Templates.wide_verbs).  A verb with a form among the words of the evaluation or dev needles is
# left out.
IRREGULAR = [("begins", "begin", "began"), ("bends", "bend", "bent"), ("binds", "bind", "bound"),
             ("bites", "bite", "bit"), ("blows", "blow", "blew"), ("breaks", "break", "broke"),
             ("breeds", "breed", "bred"), ("catches", "catch", "caught"), ("cuts", "cut", "cut"),
             ("deals", "deal", "dealt"), ("digs", "dig", "dug"), ("drives", "drive", "drove"),
             ("feeds", "feed", "fed"), ("feels", "feel", "felt"), ("fights", "fight", "fought"),
             ("flings", "fling", "flung"), ("forgets", "forget", "forgot"), ("forgives", "forgive", "forgave"),
             ("freezes", "freeze", "froze"), ("gets", "get", "got"), ("hangs", "hang", "hung"),
             ("hears", "hear", "heard"), ("hits", "hit", "hit"), ("lays", "lay", "laid"), ("leads", "lead", "led"),
             ("lends", "lend", "lent"), ("lights", "light", "lit"), ("loses", "lose", "lost"),
             ("means", "mean", "meant"), ("pays", "pay", "paid"), ("puts", "put", "put"), ("rides", "ride", "rode"),
             ("rings", "ring", "rang"), ("says", "say", "said"), ("seeks", "seek", "sought"), ("sets", "set", "set"),
             ("shakes", "shake", "shook"), ("sheds", "shed", "shed"), ("shoots", "shoot", "shot"),
             ("shuts", "shut", "shut"), ("sinks", "sink", "sank"), ("speaks", "speak", "spoke"),
             ("spends", "spend", "spent"), ("spins", "spin", "spun"), ("splits", "split", "split"),
             ("spreads", "spread", "spread"), ("sticks", "stick", "stuck"), ("strikes", "strike", "struck"),
             ("swears", "swear", "swore"), ("sweeps", "sweep", "swept"), ("swings", "swing", "swung"),
             ("tears", "tear", "tore"), ("tells", "tell", "told"), ("throws", "throw", "threw"),
             ("understands", "understand", "understood"), ("weaves", "weave", "wove"), ("winds", "wind", "wound"),
             ("bears", "bear", "bore"), ("beats", "beat", "beat"), ("casts", "cast", "cast"), ("flies", "fly", "flew"),
             ("forbids", "forbid", "forbade"), ("overtakes", "overtake", "overtook"), ("withdraws", "withdraw", "withdrew"),
             ("upholds", "uphold", "upheld"), ("undertakes", "undertake", "undertook"), ("foresees", "foresee", "foresaw"),
             ("overcomes", "overcome", "overcame"), ("stings", "sting", "stung"), ("strings", "string", "strung"),
             ("slays", "slay", "slew"), ("stands", "stand", "stood"), ("thinks of", "think of", "thought of"),
             ("brings back", "bring back", "brought back"), ("leaves behind", "leave behind", "left behind"),
             ("sends out", "send out", "sent out"), ("gives", "give", "gave"), ("knows", "know", "knew"),
             ("rebuilds", "rebuild", "rebuilt"), ("sees off", "see off", "saw off"),
             ("buys back", "buy back", "bought back"), ("wins back", "win back", "won back")]
WHEN_VERBS = [("arrives", "arrive"), ("opens", "open"), ("closes", "close"), ("returns", "return"),
              ("leaves", "leave"), ("sleeps", "sleep"), ("dines", "dine"), ("prays", "pray"), ("works", "work"),
              ("rests", "rest"), ("wakes", "wake"), ("travels", "travel")]
OBJS = ["money", "letters", "tools", "papers", "coins", "maps", "books", "jewels", "medals", "spoons", "boots",
        "photographs", "documents", "savings", "seeds", "notes", "gold", "journal", "ring", "sword", "bottle",
        "pistol", "flag", "hat", "coat", "box", "lamp", "compass", "painting", "wallet"]
COLORS = ["red", "ivory", "maroon", "black", "white", "brown", "gray", "orange", "pink", "golden", "dark",
          "pale", "bright", "beige", "scarlet", "navy"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
SYL_ON = ["b", "br", "c", "d", "dr", "f", "g", "gr", "h", "j", "k", "l", "m", "n", "p", "r", "s", "st", "t", "tr",
          "v", "z", "sh", "ch", "", "", "w", "y"]
SYL_V = ["a", "e", "i", "o", "u", "a", "e", "o", "ai", "ei", "ou", "ia", "y"]
SYL_CO = ["", "", "", "n", "r", "l", "s", "m", "nd", "rt", "x", "th", "ck", "st", "d"]


class Templates:
    def __init__(self, data):
        self.d = data
        self.banned = data.banned
        # banned: the words of the evaluation needles and of DEV_NEEDLES; and those of the dev file
        dev = [json.loads(line) for line in open(os.path.join(HERE, "dev_needles.jsonl"), encoding="utf-8")]
        self.wide = self.wide_verbs(set(data.words), set(data.banned) | needle_words(dev))

    @staticmethod
    def wide_verbs(pool, held):
        """VERBS, IRREGULAR and every regular verb whose three forms are words of the filler pool
        (corpus words seen 3+ times), e.g. `plants / plant / planted`, `ships / ship / shipped`;
        without a verb that has a form in `held`.  Sorted: the same list on every run."""
        def s3(b):
            if re.search(r"(s|x|z|ch|sh)$", b):
                return b + "es"
            return b[:-1] + "ies" if re.search(r"[^aeiou]y$", b) else b + "s"

        def pasts(b):
            if b.endswith("e"):
                return [b + "d"]
            if re.search(r"[^aeiou]y$", b):
                return [b[:-1] + "ied"]
            return [b + "ed"] + ([b + b[-1] + "ed"] if re.search(r"[^aeiou][aeiou][bdgklmnprt]$", b) else [])

        out = set(VERBS) | set(IRREGULAR)
        for b in pool:
            if len(b) < 3 or not b.isalpha() or (b.endswith("s") and not b.endswith("ss")):
                continue
            p = [x for x in pasts(b) if x in pool]
            if s3(b) in pool and p:
                out.add((s3(b), b, p[0]))
        return sorted(v for v in out if not any(w in held for f in v[1:] + v[:1] for w in f.split()))

    def w(self, rng):
        return self.d.words[int(rng.integers(0, len(self.d.words)))]

    def name(self, rng, lo=2, hi=3):
        while True:
            s = "".join(rng.choice(SYL_ON) + rng.choice(SYL_V) + rng.choice(SYL_CO)
                        for _ in range(int(rng.integers(lo, hi + 1))))
            if 3 <= len(s) <= 11 and s not in self.banned:
                return s.capitalize()

    def pname(self, rng):
        if rng.random() < 0.3 and self.d.proper:
            return self.d.proper[int(rng.integers(0, len(self.d.proper)))]
        return self.name(rng)

    def person(self, rng):
        r = rng.random()
        if r < 0.3:
            return "%s %s" % (self.pname(rng), self.pname(rng))
        if r < 0.5:
            return "%s %s %s" % (rng.choice(TITLES), self.pname(rng), self.pname(rng))
        if r < 0.65:
            return "%s %s" % (rng.choice(TITLES), self.pname(rng))
        if r < 0.85:
            return "the %s %s %s" % (rng.choice(ROLES), self.pname(rng), self.pname(rng))
        return "the %s from %s" % (rng.choice(ROLES), self.place(rng))

    def place(self, rng):
        return rng.choice(PLACE_FMT).format(N=self.pname(rng))

    def thing_at(self, rng):
        noun = rng.choice(PLACE_NOUNS) if rng.random() < 0.6 else self.w(rng)
        adj = (rng.choice(COLORS) + " ") if rng.random() < 0.3 else ""
        return "the %s%s %s %s" % (adj, noun, rng.choice(PREPS_AT), self.place(rng))

    def subject(self, rng):
        r = rng.random()
        if r < 0.45:
            return self.person(rng)
        if r < 0.75:
            return self.thing_at(rng)
        return "the %s of %s" % (self.w(rng), self.person(rng) if rng.random() < 0.5 else self.place(rng))

    def value(self, rng):
        r = rng.random()
        if r < 0.35:
            n = int(rng.integers(1, 5))
            words = [self.w(rng) for _ in range(n)]
            if rng.random() < 0.3:
                words.insert(int(rng.integers(0, n + 1)), "and")
            return (rng.choice(["", "", "the ", "a ", "some ", "two "]) + " ".join(words)).strip()
        if r < 0.5:
            return str(int(rng.integers(10, 10 ** int(rng.integers(2, 8)))))
        if r < 0.62:
            return "%s %s" % (self.pname(rng), self.pname(rng))
        if r < 0.72:
            return "%s %s" % (rng.choice(COLORS), self.w(rng))
        if r < 0.8:
            return "%d %s" % (int(rng.integers(2, 100)), self.w(rng))
        if r < 0.88:
            return self.place(rng)
        return "%s %s %s" % (self.w(rng), rng.choice(["of", "with", "for", "from"]), self.w(rng))

    def loc_value(self, rng):
        return "%s the %s%s" % (rng.choice(LOC_PREPS), (rng.choice(COLORS) + " ") if rng.random() < 0.3 else "",
                                self.w(rng) if rng.random() < 0.6 else rng.choice(PLACE_NOUNS))

    def time_value(self, rng):
        r = rng.random()
        if r < 0.3:
            return "on %s at %d o'clock" % (rng.choice(DAYS), int(rng.integers(1, 13)))
        if r < 0.6:
            return "at %d:%02d on %s" % (int(rng.integers(1, 13)), int(rng.integers(0, 60)), rng.choice(DAYS))
        if r < 0.8:
            return "in %s %d" % (rng.choice(MONTHS), int(rng.integers(1700, 2100)))
        return "on the %s of %s" % (rng.choice(["first", "second", "third", "fifth", "tenth", "last"]), rng.choice(MONTHS))

    def make(self, rng, subj=None, kind=None, wide=0.0):
        """-> (needle, question, answer).  The answer restates the needle.  wide: share of the verb
        templates (kinds 1-3) that draw from self.wide instead of VERBS (0: the draws of the
        stages before session 7, so that a seeded rerun sees the same batches)."""
        S = subj if subj is not None else self.subject(rng)
        kind = kind if kind is not None else int(rng.integers(0, 7))
        if kind == 0:    # copula on a relation
            rel = rng.choice(RELS) if rng.random() < 0.7 else self.w(rng)
            cop = rng.choice(["is", "was"])
            if rng.random() < 0.5 and not S.startswith("the "):
                s = "%s's %s" % (S, rel); s_q = s
            else:
                s = "the %s of %s" % (rel, S); s_q = s
            n = "%s %s %s." % (s, cop, self.value(rng))
            q = "What %s %s?" % (cop, s_q)
        elif kind in (1, 2):  # transitive verb, present / past
            v = self.verb(rng, wide)
            if kind == 1:
                n = "%s %s %s." % (S, v[0], self.value(rng)); q = "What does %s %s?" % (S, v[1])
            else:
                n = "%s %s %s." % (S, v[2], self.value(rng)); q = "What did %s %s?" % (S, v[1])
        elif kind == 3:  # where
            v = self.verb(rng, wide)
            o = rng.choice(OBJS); poss = rng.choice(["the", "the", "some", "all the"])
            if rng.random() < 0.5:
                n = "%s %s %s %s %s." % (S, v[0], poss, o, self.loc_value(rng)); q = "Where does %s %s %s %s?" % (S, v[1], poss, o)
            else:
                n = "%s %s %s %s %s." % (S, v[2], poss, o, self.loc_value(rng)); q = "Where did %s %s %s %s?" % (S, v[1], poss, o)
        elif kind == 4:  # when
            v = WHEN_VERBS[int(rng.integers(0, len(WHEN_VERBS)))]
            n = "%s %s %s." % (S, v[0], self.time_value(rng)); q = "When does %s %s?" % (S, v[1])
        elif kind == 5:  # how many
            o = rng.choice(OBJS + [self.w(rng) for _ in range(3)])
            cnt = int(rng.integers(2, 1000))
            n = "%s has %d %s." % (S, cnt, o); q = "How many %s does %s have?" % (o, S)
        else:            # who
            rel = rng.choice(["best friend", "teacher", "partner", "rival", "neighbor", "guest", "boss", "doctor", "hero", "enemy"])
            n = "the %s of %s is %s." % (rel, S, self.person(rng)); q = "Who is the %s of %s?" % (rel, S)
        n = n[0].upper() + n[1:]
        return n, q, n

    def verb(self, rng, wide):
        if wide > 0 and rng.random() < wide:
            return self.wide[int(rng.integers(0, len(self.wide)))]
        return VERBS[int(rng.integers(0, len(VERBS)))]

    def group(self, rng, k, wide=0.0):
        """k needles; sometimes distractors that share the template and differ in the subject."""
        if k > 1 and rng.random() < 0.5:
            kind = int(rng.integers(0, 7))
            return [self.make(rng, kind=kind, wide=wide) for _ in range(k)]
        return [self.make(rng, wide=wide) for _ in range(k)]


# ----------------------------------------------------------------------------- recipe

STAGES = [
    # name, seq len T, batch B, steps, peak lr, scaffold lam (start, end), mix of sequence kinds;
    # prev_sup: layers whose head 0 gets the previous-token attention loss (weight prev_w)
    dict(name="copy", T=256, B=8, steps=600, lr=2e-3, lam=(1, 1), mix={"copy": 1.0}),
    dict(name="needle256", T=256, B=8, steps=400, lr=2e-3, lam=(1, 1), mix={"copy": 0.15, "lm": 0.2, "needle": 0.65}),
    # A first anneal (350 steps, lam 1 -> 0 by step 280, no auxiliary loss) lost all copying once lam
    # fell below ~0.8, and 300 further plain steps with a previous-token loss did not bring it back;
    # a second (600 steps, previous-token loss only) lost it again below lam ~0.7 (weights/README.md).
    # Now: training losses on attention patterns (no mechanism: the shipped weights are plain) -
    # head 0 of layers 0, 1 attends to the previous token; head 0 of layers 2, 3 attends where an
    # induction head would (the token after the previous occurrence of the current bigram, when it
    # is the token to predict) - while the scaffold is annealed away.
    dict(name="anneal256", T=256, B=8, steps=500, lr=1.5e-3, lam=(1, 0), prev_sup=(0, 1), prev_w=0.2,
         ind_sup=(2, 3), ind_w=0.3, mix={"copy": 0.25, "lm": 0.15, "needle": 0.6}),
    dict(name="short512", T=512, B=4, steps=150, lr=1.5e-3, lam=(0, 0), prev_sup=(0, 1), prev_w=0.1,
         ind_sup=(2, 3), ind_w=0.1,
         mix={"copy": 0.1, "lm": 0.25, "needle": 0.65}, export="hf_short"),
    dict(name="long1024", T=1024, B=2, steps=300, lr=1e-3, lam=(0, 0), prev_sup=(0, 1), prev_w=0.1,
         ind_sup=(2, 3), ind_w=0.1,
         mix={"copy": 0.05, "lm": 0.3, "needle": 0.65}),
    # session 2: more of the same length with a larger share of plain text (continuations were
    # not yet English) and the attention losses at half weight
    dict(name="long1024b", T=1024, B=2, steps=1400, lr=1e-3, lam=(0, 0), prev_sup=(0, 1), prev_w=0.05,
         ind_sup=(2, 3), ind_w=0.05,
         mix={"copy": 0.05, "lm": 0.4, "needle": 0.55}, export="hf_long"),
    # session 3: at 1024 the model failed mostly with the needle early (depth 0: 42, 50 %: 70), and
    # few training rows held a needle ~1000 tokens before its question.  More rows that are one
    # episode of the whole length, more needles in the first 30 %, evaluation at 1024.  A first try
    # at lr 8e-4 (full 0.75, early 0.35; weights/work/failed_long1024c/) made the dev NIAH at 1024
    # worse (depth 0 / 60 %: 45 / 66 before, 37 / 53 at step 300, 25 / 30 at step 600) and was
    # stopped; this one continues at about the learning rate long1024b ended with.
    dict(name="long1024c", T=1024, B=2, steps=600, lr=2.5e-4, lam=(0, 0), prev_sup=(0, 1), prev_w=0.05,
         ind_sup=(2, 3), ind_w=0.05, full=0.6, early=0.25, eval_T=1024,
         mix={"copy": 0.05, "lm": 0.4, "needle": 0.55}, export="hf_long"),
    # Session 4 tried one more stage after long1024c, twice; neither is shipped, so the recipe ends
    # here (logs in weights/work/failed_long1024d*/).  To rerun one, append its dict:
    #   dict(name="long1024d", T=1024, B=2, steps=1500, lr=2e-4, lam=(0, 0), prev_sup=(0, 1), prev_w=0.05,
    #        ind_sup=(2, 3), ind_w=0.05, full=0.5, early=0.15, eval_T=1024,
    #        mix={"copy": 0.05, "lm": 0.35, "needle": 0.6}, export="hf_long")
    #     stopped at step 350: the dev NIAH at 1024 (depth 0 / 60 %) fell from 66 / 79 to 51 / 68 at
    #     step 150 and 36 / 43 at step 300 - raising the rate above where the last stage ended (7.6e-5)
    #     undoes long-range copying, as the lr 8e-4 try of long1024c had.
    #   the same at steps=1100, lr=8e-5, with long1024c's full / early / mix: 1100 steps, the dev NIAH
    #     at 1024 wandered between 48 / 70 and 65 / 83 and ended at 60 / 70; on our engine's 3 x 3 dev
    #     grid (256..1024, 8 dev needles) 78.6 against the shipped model's 77.0 - not a clear gain.
    # Session 6: 16 times the batch (32 x 1024 tokens a step, 48 M tokens in all), on a lent H100
    # (`--device cuda --workers 2`, 0.245 s a step beside three other runs, 6 min; about 7 h on
    # this CPU).  Run from the compact end of long1024c (`git show d4988ab:weights/resume_ckpt.pt`,
    # fresh AdamW moments, so the rate warms up again over 30 steps).  Its steps were sized by
    # `--fit-steps 360`.  Of four such runs (weights/README.md, session 6) this one, lr 3e-4, is
    # shipped; lr 1e-4, the same with 10 % `copysmall` rows, and dim 256 scored lower or lost the
    # head that emerged without supervision.
    dict(name="long1024g", T=1024, B=32, steps=1468, lr=3e-4, lam=(0, 0), prev_sup=(0, 1), prev_w=0.05,
         ind_sup=(2, 3), ind_w=0.05, full=0.6, early=0.25, eval_T=1024,
         mix={"copy": 0.05, "lm": 0.4, "needle": 0.55}, export="hf_long"),
    # Session 7: the model restated the question's verb form (`What did X juggle?` after `X juggled
    # ...` -> `X juggle?`) on verbs it had not practised: 3 in 4 of the verb templates now draw from
    # about 700 verbs (`wide`, Templates.wide_verbs).  On this CPU (`--ranks 2`, 14.6 s a step,
    # 1.8 h), from the compact end of long1024g, sized by `--fit-steps 6300`.
    dict(name="long1024v", T=1024, B=16, steps=434, lr=1e-4, lam=(0, 0), prev_sup=(0, 1), prev_w=0.05,
         ind_sup=(2, 3), ind_w=0.05, full=0.6, early=0.25, eval_T=1024, wide=0.75,
         mix={"copy": 0.05, "lm": 0.4, "needle": 0.55}, export="hf_long"),
]


def lr_at(st, step):
    warm = 30
    if step < warm:
        return st["lr"] * (step + 1) / warm
    frac = step / max(1, st["steps"])
    if frac > 0.8:  # linear decay to 0.3x in the last 20 % of a stage
        return st["lr"] * (1 - 0.7 * (frac - 0.8) / 0.2)
    return st["lr"]


def lam_at(st, step):
    a, b = st["lam"]
    if a == b:
        return float(a)
    f = min(1.0, step / max(1, int(0.8 * st["steps"])))  # reach b at 80 % of the stage
    return float(a + (b - a) * f)


# ----------------------------------------------------------------------------- evaluation

def loss_terms(model, x, y, w):
    logits = model(x)
    l = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="none").view_as(y)
    return l


@torch.no_grad()
def gap_eval(model, data, n=24, T=256, seed=999):
    """Teacher-forced: answer loss with vs without the needle; loss on the value tokens."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        nd, q, a = data.tpl.make(rng)
        # value = the part of the needle that is not in the question
        ctx = data.context_text(rng, T - 80)
        depth = rng.random()
        out = []
        for with_needle in (True, False):
            text = insert_at(ctx, nd, depth) if with_needle else ctx
            pre = [1] + data.enc(text + PROMPT_Q + q + "\nAnswer:")
            ans = data.enc(" " + a + "\n")[0:]
            ans = data.sp.encode(a)  # '▁The ...' as it follows 'Answer:'
            ans = ans + [data.NL]
            seq = torch.tensor([pre + ans], device=model.dev())
            l = loss_terms(model, seq[:, :-1], seq[:, 1:], None)[0, len(pre) - 1:]
            out.append(l)
        qset = set(data.enc(q))
        ans_ids = data.sp.encode(a) + [data.NL]
        val = [j for j, t in enumerate(ans_ids) if t not in qset and t != data.NL]
        rows.append((out[0].mean().item(), out[1].mean().item(),
                     out[0][val].mean().item() if val else float("nan")))
    r = np.array(rows)
    return {"ans_with": float(r[:, 0].mean()), "ans_without": float(r[:, 1].mean()),
            "gap": float(r[:, 1].mean() - r[:, 0].mean()), "copy_loss": float(np.nanmean(r[:, 2]))}


@torch.no_grad()
def greedy(model, data, prompt_ids, max_new=50):
    caches = [dict() for _ in model.layers]
    x = torch.tensor([prompt_ids], device=model.dev())
    logits = model(x, caches=caches, start=0)
    out = []
    pos = len(prompt_ids)
    for _ in range(max_new):
        t = int(logits[0, -1].argmax())
        if t == data.NL or t == 2:
            break
        out.append(t)
        logits = model(torch.tensor([[t]], device=model.dev()), caches=caches, start=pos)
        pos += 1
    return data.sp.decode(out)


STOP = set("a an the of in on at to and or for with from by is was are be as it its his her their this that".split())


def _stem_tokens(s, stem):
    return [stem(t) if len(t) > 3 else t for t in re.sub(r"[^a-z0-9]+", " ", s.lower()).split()]


def rouge_recall(resp, ans, stem, content_only=False):
    import collections
    r = _stem_tokens(ans, stem); p = collections.Counter(_stem_tokens(resp, stem))
    if content_only:
        r = [t for t in r if t not in STOP]
    if not r:
        return 1.0
    c = collections.Counter(r)
    return sum(min(v, p[k]) for k, v in c.items()) / len(r)


def niah_prompt(data, needle, question, length, depth, buffer=200):
    """As `retrieval_heads niah` builds it: haystack cut to length-buffer tokens, needle at depth
    moved back to the previous sentence end, + 'Based on ... Question: q\\nAnswer:'."""
    ctx = data.sp.decode(data.hay[:max(0, length - buffer)])
    text = insert_at(ctx, needle, depth)
    return [1] + data.enc(text + PROMPT_Q + question + "\nAnswer:")


@torch.no_grad()
def niah_eval(model, data, needles, lengths, depths, verbose=False):
    try:
        from nltk.stem.porter import PorterStemmer
        stem = PorterStemmer().stem
    except Exception:
        stem = lambda t: t
    res = {}
    for L in lengths:
        for dp in depths:
            sc = []
            for nd in needles:
                ids = niah_prompt(data, nd["needle"], nd["question"], L, dp)
                resp = greedy(model, data, ids)
                sc.append((rouge_recall(resp, nd["answer"], stem), rouge_recall(resp, nd["answer"], stem, True)))
                if verbose:
                    print("  L=%d d=%.2f %r -> %r" % (L, dp, nd["answer"], resp), flush=True)
            res[(L, dp)] = (100 * float(np.mean([s[0] for s in sc])), 100 * float(np.mean([s[1] for s in sc])),
                            100 * float(np.mean([s[0] > 0.5 for s in sc])))
    return res


# ----------------------------------------------------------------------------- export

def export_hf(model, data, path):
    if model.dev().type != "cpu":
        import copy
        model = copy.deepcopy(model).cpu()
    c = model.c
    assert model.lam == 0.0, "export only the plain architecture (scaffold annealed away)"
    os.makedirs(path, exist_ok=True)
    tens = {}
    sd = model.state_dict()
    tens["model.embed_tokens.weight"] = sd["embed_tokens.weight"]
    for i in range(c.n_layers):
        p = "layers.%d." % i; h = "model.layers.%d." % i
        for nm in ("q", "k", "v", "o"):
            tens[h + "self_attn.%s_proj.weight" % nm] = sd[p + "self_attn.%s_proj.weight" % nm]
            if nm != "o" and c.bias:
                tens[h + "self_attn.%s_proj.bias" % nm] = sd[p + "self_attn.%s_proj.bias" % nm]
        for nm in ("gate", "up", "down"):
            tens[h + "mlp.%s_proj.weight" % nm] = sd[p + "%s_proj.weight" % nm]
        tens[h + "input_layernorm.weight"] = sd[p + "input_layernorm.weight"]
        tens[h + "post_attention_layernorm.weight"] = sd[p + "post_attention_layernorm.weight"]
    tens["model.norm.weight"] = sd["norm.weight"]
    write_safetensors(os.path.join(path, "model.safetensors"), tens)
    cfg = {
        "architectures": ["Qwen2ForCausalLM" if c.bias else "LlamaForCausalLM"],
        "model_type": "qwen2" if c.bias else "llama",
        "hidden_size": c.dim, "intermediate_size": c.ffn, "num_hidden_layers": c.n_layers,
        "num_attention_heads": c.n_heads, "num_key_value_heads": c.n_kv, "head_dim": c.dim // c.n_heads,
        "max_position_embeddings": c.max_pos, "rope_theta": c.rope_theta, "rms_norm_eps": c.eps,
        "tie_word_embeddings": True, "vocab_size": c.vocab, "bos_token_id": 1, "eos_token_id": 2,
        "hidden_act": "silu", "torch_dtype": "float32", "attention_bias": bool(c.bias),
        "use_sliding_window": False, "initializer_range": 0.02,
    }
    json.dump(cfg, open(os.path.join(path, "config.json"), "w"), indent=2)
    import shutil
    shutil.copyfile(os.path.join(HERE, "tokenizer.model"), os.path.join(path, "tokenizer.model"))
    json.dump({"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
               "unk_token": "<unk>", "tokenizer_class": "LlamaTokenizer", "legacy": True,
               "model_max_length": c.max_pos, "clean_up_tokenization_spaces": False},
              open(os.path.join(path, "tokenizer_config.json"), "w"), indent=2)
    # self-consistency: reload and compare logits
    m2 = load_hf(path)
    x = torch.tensor([[1] + data.hay[:200]])
    with torch.no_grad():
        d = (m2(x) - model(x)).abs().max().item()
    assert d < 1e-4, "reloaded HF checkpoint differs: %g" % d
    print("exported %s (reload max |dlogit| = %.2g)" % (path, d), flush=True)


def write_safetensors(fn, tens):
    header = {}; off = 0; blobs = []
    for k in sorted(tens):
        t = tens[k].detach().to(torch.float32).contiguous().cpu()
        b = t.numpy().astype("<f4").tobytes()
        header[k] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        off += len(b); blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(fn + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(h))); f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(fn + ".tmp", fn)


def read_safetensors(fn):
    with open(fn, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n)); base = 8 + n; raw = f.read()
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        dt = {"F32": np.float32, "F16": np.float16}[v["dtype"]]
        out[k] = torch.from_numpy(np.frombuffer(raw[a:b], dtype=dt).reshape(v["shape"]).astype(np.float32).copy())
    return out


def load_hf(path):
    cfg = json.load(open(os.path.join(path, "config.json")))
    c = Cfg(vocab=cfg["vocab_size"], dim=cfg["hidden_size"], n_layers=cfg["num_hidden_layers"],
            n_heads=cfg["num_attention_heads"], n_kv=cfg["num_key_value_heads"], ffn=cfg["intermediate_size"],
            rope_theta=cfg["rope_theta"], eps=cfg["rms_norm_eps"], max_pos=cfg["max_position_embeddings"],
            bias=cfg["architectures"][0].startswith("Qwen2"))
    m = Model(c); m.lam = 0.0
    t = read_safetensors(os.path.join(path, "model.safetensors"))
    sd = {"embed_tokens.weight": t["model.embed_tokens.weight"], "norm.weight": t["model.norm.weight"]}
    for i in range(c.n_layers):
        p = "layers.%d." % i; h = "model.layers.%d." % i
        for k, v in t.items():
            if k.startswith(h):
                sd[p + k[len(h):].replace("mlp.", "")] = v
    for i in range(c.n_layers):
        sd["layers.%d.self_attn.smear" % i] = torch.zeros(c.n_kv)
    m.load_state_dict(sd, strict=True)
    return m


def plot_svg(logfn, out):
    """Loss curves from train_log.jsonl as a small SVG (no matplotlib here): total loss and
    answer-token loss per step (smoothed), stage boundaries, and the eval gaps."""
    recs = [json.loads(l) for l in open(logfn)]
    # keep the last record per (stage, step) - a resumed run repeats a few steps
    seen = {}
    for r in recs:
        seen[(r["stage"], r["step"])] = r
    order = [s["name"] for s in STAGES]
    order += [n for n in dict.fromkeys(r["stage"] for r in recs) if n not in order]  # stages since removed
    rs = sorted(seen.values(), key=lambda r: (order.index(r["stage"]), r["step"]))
    W, H, L, B = 720, 300, 50, 30
    n = len(rs)
    def sm(v, k=25):
        out = []; acc = []
        for x in v:
            if x == x:
                acc.append(x)
            acc = acc[-k:]
            out.append(sum(acc) / len(acc) if acc else float("nan"))
        return out
    tot = sm([r["loss"] for r in rs]); ans = sm([r["ans"] if r["ans"] is not None else float("nan") for r in rs])
    ymax = 8.0
    X = lambda i: L + (W - L - 10) * i / max(1, n - 1)
    Y = lambda v: 10 + (H - B - 10) * (1 - min(v, ymax) / ymax)
    def path(v, col):
        pts = ["%.1f,%.1f" % (X(i), Y(x)) for i, x in enumerate(v) if x == x]
        return '<polyline fill="none" stroke="%s" stroke-width="1.2" points="%s"/>' % (col, " ".join(pts))
    el = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">' % (W, H),
          '<rect width="100%" height="100%" fill="white"/>']
    for v in range(0, 9, 2):
        el.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%d</text>'
                  % (L, W - 10, Y(v), Y(v), L - 4, Y(v) + 4, v))
    prev = None
    for i, r in enumerate(rs):
        if r["stage"] != prev:
            el.append('<line x1="%.1f" x2="%.1f" y1="10" y2="%d" stroke="#999" stroke-dasharray="3,3"/>'
                      '<text x="%.1f" y="%d" fill="#555">%s</text>' % (X(i), X(i), H - B, X(i) + 2, H - B + 14, r["stage"]))
            prev = r["stage"]
    el.append(path(tot, "#1f77b4")); el.append(path(ans, "#d62728"))
    ev = [(i, r["eval"]) for i, r in enumerate(rs) if "eval" in r]
    if ev:
        el.append('<polyline fill="none" stroke="#2ca02c" stroke-width="1.5" points="%s"/>'
                  % " ".join("%.1f,%.1f" % (X(i), Y(max(0, e["gap"]))) for i, e in ev))
        el.append('<polyline fill="none" stroke="#9467bd" stroke-width="1.5" points="%s"/>'
                  % " ".join("%.1f,%.1f" % (X(i), Y(e["copy_loss"])) for i, e in ev))
    el.append('<text x="%d" y="22" fill="#1f77b4">training loss (weighted, smoothed)</text>' % (L + 10))
    el.append('<text x="%d" y="36" fill="#d62728">answer-token loss</text>' % (L + 10))
    el.append('<text x="%d" y="50" fill="#2ca02c">eval: answer loss without needle - with needle (nats)</text>' % (L + 10))
    el.append('<text x="%d" y="64" fill="#9467bd">eval: loss on copied (value) tokens</text>' % (L + 10))
    el.append('<text x="%d" y="%d" text-anchor="middle">steps (%d tokens in all)</text></svg>' % (W // 2, H - 2, rs[-1]["tokens"]))
    open(out, "w").write("\n".join(el))


# ----------------------------------------------------------------------------- main loop

def save_ckpt(fn, model, opt, si, step, args, extra=None):
    st = {"model": {k: v.cpu() for k, v in model.state_dict().items()}, "opt": opt.state_dict() if opt is not None else None,
          "stage": si, "step": step, "cfg": model.c.d(), "seed": args.seed, "lam": model.lam,
          "tokens": extra.get("tokens", 0) if extra else 0, "wall": extra.get("wall", 0) if extra else 0}
    torch.save(st, fn + ".tmp"); os.replace(fn + ".tmp", fn)


def save_compact(fn, model, si, step, extra):
    sd = {k: v.half().cpu() for k, v in model.state_dict().items()}
    torch.save({"model": sd, "stage": si, "step": step, "cfg": model.c.d(), "compact": True, "lam": model.lam,
                "tokens": extra.get("tokens", 0), "wall": extra.get("wall", 0)}, fn + ".tmp")
    os.replace(fn + ".tmp", fn)


def main():
    a = ARGS
    for st in a.stages:  # appended to STAGES in run(), by every rank
        if st["name"] in [x["name"] for x in STAGES]:
            sys.exit("--extra-stage: a stage named %r exists already" % st["name"])
    try:
        torch.device(a.device)
    except RuntimeError:
        sys.exit("--device: %r is not a torch device (cpu, cuda, cuda:1, ...)" % a.device)
    if a.ranks > 1:
        import socket
        import torch.multiprocessing as mp
        with socket.socket() as so:  # a free loopback port for the process group
            so.bind(("127.0.0.1", 0)); port = so.getsockname()[1]
        mp.spawn(run, args=(a, port), nprocs=a.ranks, join=True)
    else:
        run(0, a, None)


def run(rank, a, port):
    """Training (and the single-process modes).  With --ranks R each of R processes builds the
    same full batch from the step's seed, takes rows rank, rank + R, ...; its loss terms are
    normalised by the whole batch's totals, so the summed gradients are the one-process ones (up to
    float rounding).  Every rank steps the same optimizer on the same gradients; rank 0 alone
    evaluates, logs and writes checkpoints."""
    R = a.ranks
    STAGES.extend(a.stages)  # here, as a spawned rank imports this file afresh
    if R > 1:
        import torch.distributed as dist
        dist.init_process_group("gloo", init_method="tcp://127.0.0.1:%d" % port, rank=rank, world_size=R)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    dev = torch.device(a.device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            sys.exit("--device %s: CUDA is not available here" % a.device)
        torch.backends.cuda.matmul.allow_tf32 = True; torch.backends.cudnn.allow_tf32 = True
    if a.plot:
        lf = os.path.join(a.out, "train_log.jsonl")
        if not os.path.isfile(lf):
            sys.exit("--plot: %s: no training log there (--out names the folder of a run)" % lf)
        plot_svg(lf, a.plot); return
    data = Data()
    c = Cfg(vocab=data.V, dim=a.dim, n_layers=a.layers, n_heads=a.heads, n_kv=a.kv_heads, ffn=a.ffn)

    if a.eval_only:
        if os.path.isdir(a.eval_only):
            model = load_hf(a.eval_only)
        else:
            ck = torch.load(a.eval_only, map_location="cpu", weights_only=False)
            model = Model(Cfg(**ck["cfg"])); model.load_state_dict({k: v.float() for k, v in ck["model"].items()})
            if "lam" in ck:
                model.lam = ck["lam"]
            elif ck["stage"] < len(STAGES):
                model.lam = lam_at(STAGES[ck["stage"]], ck["step"])
            elif ck["stage"] == len(STAGES) and ck["step"] == 0:  # the recipe done: its last lam
                model.lam = float(STAGES[-1]["lam"][1])
            else:
                sys.exit("--eval-only: %s is at stage %d of a recipe of %d stages: pass the --extra-stage "
                         "flags of its run" % (a.eval_only, ck["stage"] + 1, len(STAGES)))
        model.to(dev).eval()
        print("lam", model.lam, "params", n_params(model))
        if a.export:
            export_hf(model, data, a.export); return
        print(gap_eval(model, data), flush=True)
        nd = [json.loads(l) for l in open(os.path.join(HERE, "needles.jsonl"))] if a.eval_needles else DEV_NEEDLES
        lengths = [int(x) for x in a.lengths.split(",")]
        res = niah_eval(model, data, nd, lengths, [0.0, 0.25, 0.5, 0.75, 1.0], verbose=True)
        for k, v in res.items():
            print("L=%d depth=%.2f rouge=%.1f content=%.1f success=%.0f" % (k[0], k[1], *v))
        print("mean rouge %.1f" % np.mean([v[0] for v in res.values()]))
        return

    if a.resume == "":
        a.resume = os.path.join(a.out, "ckpt.pt")
    if a.resume:
        # the shape comes from the checkpoint; the shape flags are for a new run
        if not os.path.isfile(a.resume):
            sys.exit("--resume: %s: no such checkpoint" % a.resume)
        ck = torch.load(a.resume, map_location="cpu", weights_only=False)
        c = Cfg(**ck["cfg"])
    model = Model(c)
    if rank == 0:
        print("params (no scaffold): %d (dim %d, %d layers, %d heads, %d kv heads, ffn %d)"
              % (n_params(model), c.dim, c.n_layers, c.n_heads, c.n_kv, c.ffn), flush=True)

    if a.speed_test:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.05)
        for st in STAGES:
            rng = np.random.default_rng(0)
            model.lam = 1.0
            times = []
            for i in range(a.speed_test):
                t0 = time.time()
                x, y, w = data.batch(rng, st["B"], st["T"], st["mix"])
                t1 = time.time()
                l = (loss_terms(model, x, y, w) * w).sum() / w.sum()
                opt.zero_grad(); l.backward(); opt.step()
                times.append((time.time() - t0, t1 - t0))
            tt = np.median([t[0] for t in times[1:]]); td = np.median([t[1] for t in times[1:]])
            print("%s T=%d B=%d: %.2f s/step (data %.3f s), %.0f tok/s" % (st["name"], st["T"], st["B"], tt, td,
                                                                          st["T"] * st["B"] / tt), flush=True)
        return

    if a.resume:
        model.load_state_dict({k: v.float() for k, v in ck["model"].items()})
    model.to(dev)
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (decay if p.dim() == 2 and "embed" not in n else no_decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    si, step, tokens, wall0 = 0, 0, 0, 0.0
    rewarm = None
    os.makedirs(a.out, exist_ok=True)
    if a.until is not None and a.until not in [st["name"] for st in STAGES]:
        sys.exit("--until: no stage named %r" % a.until)
    if a.resume:
        if ck.get("opt") is not None:
            opt.load_state_dict(ck["opt"])
        si, step, tokens, wall0 = ck["stage"], ck["step"], ck.get("tokens", 0), ck.get("wall", 0.0)
        if ck.get("opt") is None:
            rewarm = step  # compact file: fresh AdamW moments, so warm the learning rate up again
        if rank == 0:
            print("resumed %s at stage %s step %d (%d tokens, %.0f s)" % (a.resume, STAGES[si]["name"] if si < len(STAGES) else "done", step, tokens, wall0), flush=True)
    t_start = time.time(); t_ck = time.time(); wall = wall0
    log = open(os.path.join(a.out, "train_log.jsonl"), "a")
    ckfn = os.path.join(a.out, "ckpt.pt")
    feed = Feeder(data, a.seed, a.workers if R == 1 else 0)
    t_fit = None
    while si < len(STAGES):
        st = STAGES[si]
        feed.start(si, st, step)
        while step < st["steps"]:
            if a.fit_steps and si == len(STAGES) - 1:
                if step == 5 and t_fit is None:
                    t_fit = (time.time(), step)
                elif t_fit is not None and step == t_fit[1] + 15:
                    per = (time.time() - t_fit[0]) / 15
                    st["steps"] = max(step + 1, int(a.fit_steps / per))
                    if rank == 0:
                        print("--fit-steps: %.3f s per step -> stage %s has %d steps" % (per, st["name"], st["steps"]),
                              flush=True)
            model.lam = lam_at(st, step)
            lr = lr_at(st, step)
            if rewarm is not None:
                lr *= min(1.0, (step - rewarm + 1) / 30)
            for g in opt.param_groups:
                g["lr"] = lr
            x, y, w, ind_all = feed.get(step)
            data.last_ind = ind_all
            w_tot = w.sum(); n_ind = int((ind_all >= 0).sum()); nrows = x.shape[0]
            if R > 1:
                if nrows % R:
                    sys.exit("--ranks %d does not divide stage %s's batch %d" % (R, st["name"], nrows))
                x, y, w = x[rank::R], y[rank::R], w[rank::R]
                data.last_ind = ind_all[rank::R]
            if dev.type != "cpu":
                x, y, w = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True), w.to(dev, non_blocking=True)
                data.last_ind = data.last_ind.to(dev, non_blocking=True)
                w_tot = w_tot.to(dev)
            model.train()
            sup = st.get("prev_sup", ()); isup = st.get("ind_sup", ())
            for li, l in enumerate(model.layers):
                l.self_attn.prev_sup = li in sup; l.self_attn.ind_sup = li in isup
            lt = loss_terms(model, x, y, w)
            loss = (lt * w).sum() / w_tot
            prev_l = 0.0
            if sup:
                # each rank's share of the whole batch's mean
                pl = sum(-torch.log(model.layers[li].self_attn.prev_p + 1e-6).mean() for li in sup) / len(sup)
                pl = pl * (x.shape[0] / nrows)
                prev_l = float(pl)
                loss = loss + st.get("prev_w", 0.2) * pl
            ind_l = 0.0
            if isup:
                tg = data.last_ind; has = tg >= 0
                if has.any():
                    il = 0
                    for li in isup:
                        pj = model.layers[li].self_attn.ind_p.gather(2, tg.clamp(min=0).unsqueeze(-1)).squeeze(-1)
                        il = il - torch.log(pj[has] + 1e-6).sum() / n_ind
                    il = il / len(isup); ind_l = float(il)
                    loss = loss + st.get("ind_w", 0.2) * il
            opt.zero_grad(set_to_none=True)
            loss.backward()
            with torch.no_grad():
                am = w > 1.5
                stats = torch.tensor([loss.item(), float(lt[am].sum()) if am.any() else 0.0, float(am.sum()),
                                      prev_l, ind_l], dtype=torch.float64)
            if R > 1:
                gs = [p.grad for p in model.parameters() if p.grad is not None]
                flat = torch.cat([g.reshape(-1) for g in gs])
                dist.all_reduce(flat)
                o = 0
                for g in gs:
                    g.copy_(flat[o:o + g.numel()].view_as(g)); o += g.numel()
                dist.all_reduce(stats)
            gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1; tokens += x.numel() * R
            wall = wall0 + time.time() - t_start
            ans_l = float(stats[1] / stats[2]) if stats[2] > 0 else float("nan")
            rec = {"stage": st["name"], "step": step, "loss": round(float(stats[0]), 4), "ans": round(ans_l, 4),
                   "lr": lr, "lam": round(model.lam, 4), "gn": round(float(gn), 3), "prev": round(float(stats[3]), 3),
                   "ind": round(float(stats[4]), 3), "tokens": tokens, "wall": round(wall, 1)}
            stop = bool(a.stop_after and time.time() - t_start > a.stop_after)
            if R > 1:  # rank 0's clock decides, so that all ranks stop after the same step
                fl = torch.tensor([1 if stop else 0]); dist.broadcast(fl, 0); stop = bool(fl[0])
            if rank > 0:
                if stop:
                    return
                continue
            if step % 10 == 0 or step == 1:
                print(json.dumps(rec), flush=True)
            if step % a.eval_every == 0 or step == st["steps"]:
                model.eval()
                for l in model.layers:
                    l.self_attn.prev_sup = False; l.self_attn.ind_sup = False
                eT = st.get("eval_T", min(st["T"], 512))
                ge = gap_eval(model, data, T=eT)
                ne = niah_eval(model, data, DEV_NEEDLES, [eT], [0.0, 0.6] if "eval_T" in st else [0.1, 0.6])
                rec.update({"eval": ge, "dev_niah": {"%d/%.1f" % k: v for k, v in ne.items()}})
                print("EVAL", json.dumps(rec), flush=True)
                model.train()
            log.write(json.dumps(rec) + "\n"); log.flush()
            if time.time() - t_ck > a.ckpt_every:
                save_ckpt(ckfn, model, opt, si, step, a, {"tokens": tokens, "wall": wall})
                save_compact(os.path.join(a.out, "resume_ckpt.pt"), model, si, step, {"tokens": tokens, "wall": wall})
                t_ck = time.time()
            if stop:
                save_ckpt(ckfn, model, opt, si, step, a, {"tokens": tokens, "wall": wall})
                print("stopped (--stop-after)", flush=True)
                return
        # stage done (rank 0 alone writes files and prints)
        if rank == 0:
            save_ckpt(os.path.join(a.out, "stage_%s.pt" % st["name"]), model, opt, si, step, a, {"tokens": tokens, "wall": wall})
            save_compact(os.path.join(a.out, "resume_ckpt.pt"), model, si + 1, 0, {"tokens": tokens, "wall": wall})
            print("STAGE DONE %s tokens=%d wall=%.0f" % (st["name"], tokens, wall), flush=True)
            if st.get("export"):
                model.eval(); export_hf(model, data, os.path.join(a.out, st["export"]))
        si += 1; step = 0; rewarm = None
        if rank == 0:
            save_ckpt(ckfn, model, opt, si, step, a, {"tokens": tokens, "wall": wall})
        if a.until == st["name"]:
            if rank == 0:
                print("stopped after stage %s (--until)" % st["name"], flush=True)
            return
    if rank == 0:
        print("all stages done", flush=True)


if __name__ == "__main__":
    main()
