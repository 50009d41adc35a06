# retrieval_heads -- build, test, sanitizer and benchmark targets.
#   make                 ./retrieval_heads, -O2 with the best SIMD the compiler targets here
#   make SIMD=scalar     the scalar kernels only
#   make CC=clang        any C99 compiler
#   make test            the test runner (test/test_main.c) + the CLI; prints "N passed, N failed"
#   make asan            the tests under AddressSanitizer + UndefinedBehaviorSanitizer
#   make bench           prefill/decode speed on random TinyLlama-shaped weights
#   make test-neon       the tests with the NEON kernels, cross-compiled, under qemu-aarch64
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
DEFS :=
CFLAGS ?= $(OPT) $(ARCH)
ALL_CFLAGS = $(WARN) $(CFLAGS) $(DEFS)
LDLIBS := -lm -lpthread

SRC := retrieval_heads.c retrieval_heads.h
# One -DRH_TEST_NAME per test/test_NAME.c present (see test/test_main.c).
TEST_FILES := $(filter-out test/test_main.c,$(wildcard test/test_*.c))
TEST_DEFS := $(foreach f,$(TEST_FILES),-DRH_TEST_$(shell echo $(basename $(notdir $(f))) | sed 's/^test_//' | tr a-z A-Z))

BIN := $(O)/retrieval_heads
TESTBIN := $(O)/test_runner
# Rebuild when the compiler or flags change (SIMD=, CC=), not only when sources do.
STAMP := $(O)/.rh_build_flags

.PHONY: all test asan bench clean demo test-neon FORCE

all: $(BIN)

$(STAMP): FORCE
	@echo '$(CC) $(ALL_CFLAGS) $(TEST_DEFS)' | cmp -s - $@ || echo '$(CC) $(ALL_CFLAGS) $(TEST_DEFS)' > $@

$(BIN): $(SRC) $(STAMP)
	$(CC) $(ALL_CFLAGS) -o $@ retrieval_heads.c $(LDLIBS)

$(TESTBIN): $(SRC) test/test_main.c $(TEST_FILES) $(STAMP)
	$(CC) $(ALL_CFLAGS) -DRH_NO_MAIN $(TEST_DEFS) -o $@ test/test_main.c $(LDLIBS)

test: $(BIN) $(TESTBIN)
	$(TESTBIN) --bin $(BIN) $(T)

ASAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
asan:
	$(CC) $(WARN) $(ASAN_FLAGS) $(ARCH) $(DEFS) -o $(O)/retrieval_heads_asan retrieval_heads.c $(LDLIBS)
	$(CC) $(WARN) $(ASAN_FLAGS) $(ARCH) $(DEFS) -DRH_NO_MAIN $(TEST_DEFS) -o $(O)/test_runner_asan test/test_main.c $(LDLIBS)
	$(O)/test_runner_asan --bin $(O)/retrieval_heads_asan $(T)

# The NEON kernels on an x86 host: cross-compile and run the tests under qemu-aarch64
# (Debian: gcc-aarch64-linux-gnu, qemu-user).
CROSS ?= aarch64-linux-gnu-
test-neon:
	mkdir -p $(O)/neon
	$(CROSS)gcc $(WARN) -O2 $(DEFS) -o $(O)/neon/retrieval_heads retrieval_heads.c $(LDLIBS)
	$(CROSS)gcc $(WARN) -O2 $(DEFS) -DRH_NO_MAIN $(TEST_DEFS) -o $(O)/neon/test_runner test/test_main.c $(LDLIBS)
	qemu-aarch64 -L /usr/aarch64-linux-gnu $(O)/neon/test_runner \
		--bin "qemu-aarch64 -L /usr/aarch64-linux-gnu $(O)/neon/retrieval_heads" $(T)

# The standard benchmark set (issue 5): TinyLlama-1.1B shape, random weights, each dtype.
BENCH_T ?= 2
bench: $(BIN)
	$(BIN) bench --shape tinyllama-1.1b --dtype f32 -p 512,2048 -n 32 -t $(BENCH_T)
	$(BIN) bench --shape tinyllama-1.1b --dtype f16 -p 512 -n 32 -t $(BENCH_T)
	$(BIN) bench --shape tinyllama-1.1b --dtype bf16 -p 512 -n 32 -t $(BENCH_T)

# The demo model (weights/demo.rhw, made by weights/train.py + weights/export.py; see weights/).
demo: $(BIN)
	@test -f weights/demo.rhw || { echo "make demo: weights/demo.rhw is missing (see weights/README.md)" >&2; exit 1; }
	$(BIN) info weights/demo.rhw

clean:
	rm -f $(BIN) $(TESTBIN) $(O)/retrieval_heads_asan $(O)/test_runner_asan $(STAMP)
