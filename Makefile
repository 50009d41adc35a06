# retrieval_heads -- build, test, sanitizer and benchmark targets.
#   make                 ./retrieval_heads, -O2 with the best SIMD the compiler targets here
#   make SIMD=scalar     the scalar kernels only
#   make CC=clang        any C99 compiler
#   make test            the test runner (test/test_main.c) + the CLI; prints "N passed, N failed"
#   make asan            the tests under AddressSanitizer + UndefinedBehaviorSanitizer
#   make bench           prefill/decode speed on random TinyLlama-shaped weights
#   make bench-attention prefill attention alone (8192-token prompt), 1 and 2 threads
#   make bench-grid      a NIAH grid's tests per second with prefix reuse against without
#   make test-neon       the tests with the NEON kernels, cross-compiled, under qemu-aarch64
#   make test-windows    the Windows build (MinGW-w64) and its tests under Wine
#   make test-s390x      the tests on a big-endian host (s390x, scalar kernels) under qemu-s390x,
#                        and .rhw files written on each byte order read on the other
#   make test-slurm      the README's Slurm job-array recipe on a single-node Slurm (test/slurm.sh)
#   make valgrind        valgrind memcheck on `generate` and a tiny `detect` (zero errors, zero leaks)
#   make O=/tmp/me ...   put binaries elsewhere (several people building in one tree)
CC ?= cc
SIMD ?= native
O ?= .

WARN := -std=c99 -Wall -Wextra -pedantic
ifeq ($(SIMD),scalar)
ARCH := -DRH_SIMD_SCALAR
else
ARCH := -march=native
endif
OPT ?= -O2
# What the results of a build depend on besides its kernels: the sources and the flags.  Every
# output records it and a run resumes only a run of the same build (rh_build()).
SRC_HASH := $(shell cat retrieval_heads.c retrieval_heads.h | cksum | cut -d' ' -f1)
DEFS :=
CFLAGS ?= $(OPT) $(ARCH)
# the build's id for a compile with flags $(1): the program and its test runner get the same one
BUILD_ID = -DRH_SOURCE_HASH='"$(SRC_HASH)-$(shell echo '$(1)' | cksum | cut -d' ' -f1)"'
ALL_CFLAGS = $(WARN) $(CFLAGS) $(DEFS) $(call BUILD_ID,$(CC) $(CFLAGS) $(DEFS))
LDLIBS := -lm -lpthread

SRC := retrieval_heads.c retrieval_heads.h
# One -DRH_TEST_NAME per test/test_NAME.c present (see test/test_main.c).
TEST_FILES := $(filter-out test/test_main.c,$(wildcard test/test_*.c))
TEST_DEFS := $(foreach f,$(TEST_FILES),-DRH_TEST_$(shell echo $(basename $(notdir $(f))) | sed 's/^test_//' | tr a-z A-Z))

BIN := $(O)/retrieval_heads
TESTBIN := $(O)/test_runner
# Rebuild when the compiler or flags change (SIMD=, CC=), not only when sources do.
STAMP := $(O)/.rh_build_flags

.PHONY: all test asan bench bench-attention bench-grid bench-moe clean demo fuzz test-neon test-windows test-s390x test-slurm valgrind FORCE

all: $(BIN)

$(STAMP): FORCE
	@mkdir -p $(O)
	@echo '$(CC) $(ALL_CFLAGS) $(TEST_DEFS)' | cmp -s - $@ || echo '$(CC) $(ALL_CFLAGS) $(TEST_DEFS)' > $@

$(BIN): $(SRC) $(STAMP)
	$(CC) $(ALL_CFLAGS) -o $@ retrieval_heads.c $(LDLIBS)

$(TESTBIN): $(SRC) test/test_main.c $(TEST_FILES) test/fixtures/ref_cases.h $(STAMP)
	$(CC) $(ALL_CFLAGS) -DRH_NO_MAIN $(TEST_DEFS) -o $@ test/test_main.c $(LDLIBS)

test: $(BIN) $(TESTBIN)
	$(TESTBIN) --bin $(BIN) $(T)

ASAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
asan:
	mkdir -p $(O)
	$(CC) $(WARN) $(ASAN_FLAGS) $(ARCH) $(DEFS) $(call BUILD_ID,$(CC) $(ASAN_FLAGS) $(ARCH) $(DEFS)) -o $(O)/retrieval_heads_asan retrieval_heads.c $(LDLIBS)
	$(CC) $(WARN) $(ASAN_FLAGS) $(ARCH) $(DEFS) $(call BUILD_ID,$(CC) $(ASAN_FLAGS) $(ARCH) $(DEFS)) -DRH_NO_MAIN $(TEST_DEFS) -o $(O)/test_runner_asan test/test_main.c $(LDLIBS)
	$(O)/test_runner_asan --bin $(O)/retrieval_heads_asan $(T)

# The NEON kernels on an x86 host: cross-compile and run the tests under qemu-aarch64
# (Debian: gcc-aarch64-linux-gnu, qemu-user).
CROSS ?= aarch64-linux-gnu-
test-neon:
	mkdir -p $(O)/neon
	$(CROSS)gcc $(WARN) -O2 $(DEFS) $(call BUILD_ID,$(CROSS)gcc -O2 $(DEFS)) -o $(O)/neon/retrieval_heads retrieval_heads.c $(LDLIBS)
	$(CROSS)gcc $(WARN) -O2 $(DEFS) $(call BUILD_ID,$(CROSS)gcc -O2 $(DEFS)) -DRH_NO_MAIN $(TEST_DEFS) -o $(O)/neon/test_runner test/test_main.c $(LDLIBS)
	qemu-aarch64 -L /usr/aarch64-linux-gnu $(O)/neon/test_runner \
		--bin "qemu-aarch64 -L /usr/aarch64-linux-gnu $(O)/neon/retrieval_heads" $(T)

# Windows on an x86-64 Linux host: MinGW-w64 with winpthreads (Debian gcc-mingw-w64-x86-64-posix),
# linked statically, the tests under Wine (Debian wine, wine64).  The runner is a Windows
# program; the CLI tests' shell lines run through the host's /bin/sh, which starts the CLI as
# --bin says, through wine (see t_run in test/test_main.c).  The fork/kill tests are POSIX only.
MINGW ?= x86_64-w64-mingw32-gcc-posix
WINE ?= wine
test-windows:
	mkdir -p $(O)/win
	$(MINGW) $(ALL_CFLAGS) -static -o $(O)/win/retrieval_heads.exe retrieval_heads.c $(LDLIBS)
	$(MINGW) $(ALL_CFLAGS) -DRH_NO_MAIN $(TEST_DEFS) -static -o $(O)/win/test_runner.exe test/test_main.c $(LDLIBS)
	WINEDEBUG=-all $(WINE) $(O)/win/test_runner.exe \
		--bin "$$(command -v $(WINE)) $(abspath $(O))/win/retrieval_heads.exe" $(T)

# A big-endian host: s390x (Debian gcc-s390x-linux-gnu, qemu-user), the scalar kernels, the same
# fixtures.  Then engine/cross_host_rhw three times over one folder: s390x writes its .rhw files
# and logits, this host reads them and writes its own, s390x reads those.
S390 ?= s390x-linux-gnu-
QEMU_S390 ?= qemu-s390x -L /usr/s390x-linux-gnu
S390_CFLAGS = $(WARN) -O2 $(DEFS) $(call BUILD_ID,$(S390)gcc -O2 $(DEFS))
test-s390x: $(TESTBIN)
	mkdir -p $(O)/s390x
	$(S390)gcc $(S390_CFLAGS) -o $(O)/s390x/retrieval_heads retrieval_heads.c $(LDLIBS)
	$(S390)gcc $(S390_CFLAGS) -DRH_NO_MAIN $(TEST_DEFS) -o $(O)/s390x/test_runner test/test_main.c $(LDLIBS)
	$(QEMU_S390) $(O)/s390x/test_runner --bin "$(QEMU_S390) $(O)/s390x/retrieval_heads" $(T)
	rm -rf $(O)/s390x/cross && mkdir -p $(O)/s390x/cross
	RH_CROSS_DIR=$(O)/s390x/cross $(QEMU_S390) $(O)/s390x/test_runner engine/cross_host_rhw
	RH_CROSS_DIR=$(O)/s390x/cross $(TESTBIN) engine/cross_host_rhw
	RH_CROSS_DIR=$(O)/s390x/cross $(QEMU_S390) $(O)/s390x/test_runner engine/cross_host_rhw

# The README's Slurm recipe on a single-node Slurm started here (Debian slurm-wlm, munge; runs as
# root): a 3-task array of the demo grid plus the merge, against a one-process run, then a killed
# shard resumed.  About 2 minutes on 2 cores (test/slurm.sh says more).
test-slurm: $(BIN)
	bash test/slurm.sh $(BIN)

# The standard benchmark set (issue 5): TinyLlama-1.1B shape, random weights, each dtype.
BENCH_T ?= 2
# About 7 minutes on 2 AVX2 cores (6 min 0 s and 6 min 44 s measured; the 8192-token f32 prefill is about
# half), 2 min 14 s on 2 Zen 5 cores with AVX-512.  KV cache f16, as
# llama.cpp's default, for like-for-like figures.  The last line is the 8192-token f32 run again
# under a KV cache policy (3 of the 88 KV heads kept full, the others sinks 4 + window 64): its
# prefill and decode against the first line's 8192 row.
bench: $(BIN)
	$(BIN) bench --shape tinyllama-1.1b --dtype f32 -p 512,2048,8192 -n 32 -t $(BENCH_T) --kv f16
	$(BIN) bench --shape tinyllama-1.1b --dtype f16 -p 512,2048 -n 32 -t $(BENCH_T) --kv f16
	$(BIN) bench --shape tinyllama-1.1b --dtype bf16 -p 512,2048 -n 32 -t $(BENCH_T) --kv f16
	$(BIN) bench --shape tinyllama-1.1b --dtype f32 -p 8192 -n 32 -t $(BENCH_T) --kv f16 --kv-window 64 --kv-sinks 4 \
	  --kv-keep-heads 5-0,9-8,13-16

# A NIAH grid with prefix reuse against every prompt prefilled whole (test/bench_grid.sh): tests per
# second in alternated rounds, the prompt tokens kept (measured and as --dry-run plans them), the
# dry run's time against the measured one, the two modes' outputs compared.  About 4 minutes on 2
# Zen 5 cores (the demo grid, 300 tests a run, 6 runs).
BENCH_GRID ?= --lengths 256:1024:3 --depths 0:100:5
BENCH_GRID_T ?= 1
BENCH_GRID_ROUNDS ?= 3
bench-grid: $(BIN)
	BIN=$(BIN) MODEL=$(DEMO_MODEL) GRID="$(BENCH_GRID)" T=$(BENCH_GRID_T) ROUNDS=$(BENCH_GRID_ROUNDS) OUT=$(O)/bench_grid \
	  sh test/bench_grid.sh

# What routing costs (test/bench_moe.sh): the mixtral-mini shape (8 experts, 2 a token) against
# mixtral-mini-dense (the same matmul work a token), bf16, alternated rounds, median tok/s and
# ratios.  About 2 minutes on 2 Zen 5 cores.
BENCH_MOE_ROUNDS ?= 3
bench-moe: $(BIN)
	BIN=$(BIN) T=$(BENCH_T) ROUNDS=$(BENCH_MOE_ROUNDS) OUT=$(O)/bench_moe sh test/bench_moe.sh

# Prefill attention alone (test/bench_attention.c): the last 512 tokens of an 8192-token
# TinyLlama-shaped prompt, 1 and 2 threads, median and best GFLOPS of 15 runs; then that prefill
# and a decode step with the full cache and under a KV policy (about 30 s).
bench-attention:
	mkdir -p $(O)
	$(CC) $(ALL_CFLAGS) -o $(O)/bench_attention test/bench_attention.c $(LDLIBS)
	$(O)/bench_attention

# The demo (weights/demo.rhw, made by weights/train.py + weights/export.py; see weights/README.md):
# detect the retrieval heads, then the NIAH grid unmasked, with the top-K heads masked and with K
# random non-retrieval heads masked; prints the comparison.  Outputs go to demo/.
DEMO_MODEL ?= weights/demo.rhw
DEMO_GRID ?= --lengths 256:1024:3 --depths 0:100:3
DEMO_K ?= 3
DEMO_T ?= 2
demo: $(BIN)
	@test -f $(DEMO_MODEL) || { echo "make demo: $(DEMO_MODEL) is missing (see weights/README.md)" >&2; exit 1; }
	@mkdir -p demo
	$(BIN) detect $(DEMO_MODEL) $(DEMO_GRID) -t $(DEMO_T) --quiet --fresh -o demo/scores.json
	$(BIN) report demo/scores.json
	$(BIN) niah $(DEMO_MODEL) $(DEMO_GRID) -t $(DEMO_T) --quiet --fresh -o demo/niah_none > demo/none.txt
	$(BIN) niah $(DEMO_MODEL) $(DEMO_GRID) -t $(DEMO_T) --quiet --fresh --mask-top $(DEMO_K) --scores demo/scores.json -o demo/niah_top > demo/top.txt
	$(BIN) niah $(DEMO_MODEL) $(DEMO_GRID) -t $(DEMO_T) --quiet --fresh --mask-random $(DEMO_K) --scores demo/scores.json --seed 1 -o demo/niah_random > demo/random.txt
	@echo; echo "NIAH, mean ROUGE-1 recall x 100 (demo/*.txt, demo/niah_*.svg):"
	@printf '  %-28s %s\n' "no heads masked" "$$(tail -n 1 demo/none.txt)" \
	  "top-$(DEMO_K) retrieval heads" "$$(tail -n 1 demo/top.txt)" \
	  "$(DEMO_K) random other heads" "$$(tail -n 1 demo/random.txt)"

# libFuzzer targets (clang; Debian clang + libclang-rt-14-dev): the .rhw loader, the tokenizers,
# the JSON/JSONL readers, the CLI's number and list parsers.  FUZZ_SECONDS each; corpora in
# test/fuzz/corpus/ (the fixtures seed the loader).  make fuzz FUZZ_SECONDS=600 for a real run.
FUZZ_SECONDS ?= 10
FUZZ_TARGETS := rhw tok json flags
FUZZ_FLAGS := -std=c99 -g -O1 $(ARCH) -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
fuzz:
	mkdir -p $(O)/fuzz
	for t in $(FUZZ_TARGETS); do \
	  clang $(FUZZ_FLAGS) -o $(O)/fuzz/fuzz_$$t test/fuzz/fuzz_$$t.c $(LDLIBS) || exit 1; done
	for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(O)/fuzz/corpus_$$t; \
	  extra=; [ $$t = rhw ] && extra=test/fixtures; \
	  if $(O)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -print_final_stats=1 \
	       $(O)/fuzz/corpus_$$t test/fuzz/corpus/$$t $$extra > $(O)/fuzz/fuzz_$$t.log 2>&1; then \
	    echo "fuzz_$$t: $$(grep -h '^stat::number_of_executed_units' $(O)/fuzz/fuzz_$$t.log) in $(FUZZ_SECONDS) s, no finding"; \
	  else tail -n 40 $(O)/fuzz/fuzz_$$t.log; echo "make fuzz: fuzz_$$t found a problem (log: $(O)/fuzz/fuzz_$$t.log)"; exit 1; fi; done

# valgrind memcheck (not in CI: slow) on `generate` with a fixture model and on a tiny `detect`:
# any memory error or leak (definite, indirect, possible) fails.  Valgrind 3.19 does not decode
# AVX-512, so on x86-64 the binary targets x86-64-v3 (AVX2+FMA+F16C: the same kernels).
VG_ARCH ?= $(if $(filter x86_64,$(shell uname -m)),-march=x86-64-v3,$(ARCH))
VG := valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect,possible
VG_MODEL ?= test/fixtures/llama2.rhw
valgrind:
	mkdir -p $(O)/vg
	$(CC) $(WARN) -O1 -g $(VG_ARCH) $(DEFS) -o $(O)/vg/retrieval_heads retrieval_heads.c $(LDLIBS)
	for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do \
	  printf 'The grass is green. The sky is blue and the sea is wide. '; done > $(O)/vg/hay.txt
	printf '%s\n' '{"needle": "The code is alpha bravo.", "question": "What is the code?", "answer": "alpha bravo"}' \
	  > $(O)/vg/needles.jsonl
	$(VG) $(O)/vg/retrieval_heads generate $(VG_MODEL) -p "Hello world" -n 16 -t 2 > /dev/null
	$(VG) $(O)/vg/retrieval_heads detect $(VG_MODEL) --haystack $(O)/vg/hay.txt --needles $(O)/vg/needles.jsonl \
	  --lengths 120:200:2 --depths 0:100:2 --buffer 16 --max-new 4 -t 2 --fresh --quiet -o $(O)/vg/scores.json
	@echo "make valgrind: no memory errors, no leaks"

clean:
	rm -f $(BIN) $(TESTBIN) $(O)/retrieval_heads_asan $(O)/test_runner_asan $(STAMP)
