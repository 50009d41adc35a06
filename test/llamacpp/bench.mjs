// llama.cpp prefill/decode speed on a GGUF file, CPU only, through the npm
// package node-llama-cpp (v3) and its prebuilt CPU binaries.  See README.md.
//
//   NODE_PATH=/tmp/llamacpp_npm/node_modules node bench.mjs MODEL.gguf \
//       [-t 2] [-p 512,2048] [-n 32] [-b 512] [-r 1] [--fa auto|on|off] [--no-warmup]
//
// Per prompt length P (a fresh context of P + n tokens each time):
//   warm-up  one prefill of P tokens + one decode step (as llama-bench does),
//   then r repetitions of: clear the KV cache; prefill P tokens (timed); decode
//   n tokens one at a time (timed), each step a separate llama_decode of one
//   token, at depth P (after the prompt, as `retrieval_heads bench` does).
// The first prompt token is BOS, the rest random (seeded) ids; logits are
// computed for the last prompt token and for every decode step (llama-bench's
// llama_batch_get_one does the same), and the next token is the greedy one.
// Batching: node-llama-cpp sets n_ubatch = n_batch = batch size; -b 512 (the
// default) makes each llama_decode a 512-token ubatch, the llama-bench default
// (n_batch 2048 split into n_ubatch 512): the same graph sizes.
import {createRequire} from "node:module";
import fs from "node:fs";
import path from "node:path";
import process from "node:process";

const require = createRequire(import.meta.url);

function usage(code) {
    (code ? process.stderr : process.stdout).write(
        "usage: node bench.mjs MODEL.gguf [-t THREADS=2] [-p 512,2048] [-n 32] [-b 512] [-r 1] [--fa auto|on|off] [--no-warmup] [--label DTYPE]\n");
    process.exit(code);
}

const opt = {model: null, threads: 2, prompts: [512, 2048], nGen: 32, batch: 512, reps: 1, fa: "auto", warmup: true, label: null};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
        if (i + 1 >= argv.length) usage(2);
        return argv[++i];
    };
    const posInt = (s) => {
        const v = Number(s);
        if (!Number.isInteger(v) || v < 1) {
            process.stderr.write(`bench: '${s}' is not a positive integer\n`);
            process.exit(2);
        }
        return v;
    };
    if (a === "-t" || a === "--threads") opt.threads = posInt(next());
    else if (a === "-p") opt.prompts = next().split(",").map(posInt);
    else if (a === "-n") opt.nGen = posInt(next());
    else if (a === "-b") opt.batch = posInt(next());
    else if (a === "-r") opt.reps = posInt(next());
    else if (a === "--fa") opt.fa = next();
    else if (a === "--no-warmup") opt.warmup = false;
    else if (a === "--label") opt.label = next();
    else if (a === "-h" || a === "--help") usage(0);
    else if (a.startsWith("-")) usage(2);
    else if (opt.model == null) opt.model = a;
    else usage(2);
}
if (opt.model == null) usage(2);
if (!["auto", "on", "off"].includes(opt.fa)) usage(2);

// Resolve node-llama-cpp from NODE_PATH (ESM imports ignore NODE_PATH, require.resolve does not).
let entry;
try {
    entry = require.resolve("node-llama-cpp");
} catch {
    process.stderr.write("bench: node-llama-cpp not found; install it in /tmp/llamacpp_npm and set NODE_PATH=/tmp/llamacpp_npm/node_modules (see README.md)\n");
    process.exit(1);
}
const {getLlama, LlamaLogLevel} = await import(entry);
const nlcVersion = require(path.join(path.dirname(entry), "..", "package.json")).version;

const llama = await getLlama({
    gpu: false,               // CPU backend only
    build: "never",           // never compile llama.cpp from source
    usePrebuiltBinaries: true,
    skipDownload: true,       // never fetch llama.cpp sources/binaries from GitHub
    progressLogs: false,
    maxThreads: opt.threads,
    logLevel: LlamaLogLevel.warn  // llama.cpp warnings and errors go to stderr
});

const rel = llama.llamaCppRelease;
// The CPU backend variant ggml picked (by CPU features) is the libggml-cpu-*.so mapped into this process.
let maps = "";
try { maps = fs.readFileSync("/proc/self/maps", "utf8"); } catch { /* not Linux */ }
const cpuVariant = [...new Set([...maps.matchAll(/libggml-cpu-([\w-]+)\.so/g)].map((m) => m[1]))];
const sysinfo = llama.systemInfo.replace(/\s+/g, " ").trim();

const model = await llama.loadModel({modelPath: opt.model, gpuLayers: 0, useMmap: true});
const gguf = model.fileInfo;
const arch = gguf.metadata?.general?.architecture;
const ftypeNames = {0: "f32", 1: "f16", 32: "bf16"};
const label = opt.label ?? ftypeNames[gguf.metadata?.general?.file_type] ?? `ftype${gguf.metadata?.general?.file_type}`;
const nVocab = Number(gguf.metadata?.[arch]?.vocab_size ?? gguf.metadata?.tokenizer?.ggml?.tokens?.length ?? 32000);
const bos = model.tokens.bos ?? 1;
const ver = `${rel.release}`;

console.log(`# node-llama-cpp ${nlcVersion}, llama.cpp ${rel.repo}@${rel.release} (${llama.buildType}), gpu ${llama.gpu}, `
    + `CPU variant ${cpuVariant.length ? cpuVariant.join(",") : "unknown"}, threads ${opt.threads}`);
console.log(`# system_info: ${sysinfo}`);
console.log(`# model ${path.basename(opt.model)}: ${arch}, ${label}, ${(model.size / 1e9).toFixed(2)} GB, `
    + `${(model.trainContextSize)} ctx, vocab ${nVocab}, batch ${opt.batch} (n_batch = n_ubatch), flash attention ${opt.fa}`);

let seed = 42;
function rand() { // xorshift32, deterministic
    seed ^= seed << 13; seed >>>= 0;
    seed ^= seed >>> 17;
    seed ^= seed << 5; seed >>>= 0;
    return seed;
}
const greedy = {token: true, options: {temperature: 0}};

async function prefill(seq, P) {
    const items = new Array(P);
    items[0] = bos;
    for (let i = 1; i < P; i++) items[i] = rand() % nVocab;
    items[P - 1] = [items[P - 1], {generateNext: greedy}];
    const t0 = process.hrtime.bigint();
    const out = await seq.controlledEvaluate(items);
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    return {dt, next: out[P - 1]?.next?.token ?? 0};
}

async function decode(seq, first, n) {
    let tok = first;
    const t0 = process.hrtime.bigint();
    for (let k = 0; k < n; k++) {
        const out = await seq.controlledEvaluate([[tok, {generateNext: greedy}]]);
        tok = out[0]?.next?.token ?? rand() % nVocab;
    }
    return Number(process.hrtime.bigint() - t0) / 1e9;
}

for (const P of opt.prompts) {
    const ctx = await model.createContext({
        contextSize: P + opt.nGen + 1,
        batchSize: Math.min(opt.batch, P),
        threads: {ideal: opt.threads, min: opt.threads},
        flashAttention: opt.fa === "auto" ? undefined : opt.fa === "on",
        sequences: 1
    });
    const seq = ctx.getSequence();
    if (opt.warmup) {
        const w = await prefill(seq, P);
        await decode(seq, w.next, 1);
    }
    let tp = 0, td = 0;
    for (let r = 0; r < opt.reps; r++) {
        await seq.clearHistory();
        const p = await prefill(seq, P);
        tp += p.dt;
        td += await decode(seq, p.next, opt.nGen);
    }
    tp /= opt.reps;
    td /= opt.reps;
    console.log(`llama.cpp ${ver} ${label} prefill ${P}: ${(P / tp).toFixed(2)} tok/s (${tp.toFixed(2)} s, threads ${ctx.currentThreads})`);
    console.log(`llama.cpp ${ver} ${label} decode ${opt.nGen} after ${P}: ${(opt.nGen / td).toFixed(2)} tok/s (${td.toFixed(2)} s)`);
    await ctx.dispose();
}
await model.dispose();
await llama.dispose();
