# ipsweep build. `make` builds build/ipsweep and build/libipcore.a;
# `make check` runs every test; `make deps` installs the Debian packages.
# MARCH: target flags, probed (-march=native when the compiler accepts it);
# override on clusters whose login and compute nodes differ, e.g.
#   make MARCH=-march=x86-64-v3
CC      ?= cc
MARCH   ?= $(shell $(CC) -march=native -x c -c /dev/null -o /dev/null 2>/dev/null && echo -march=native)
OPT     ?= -O2
PKGS_CORE   := openblas hdf5 zlib
PKGS_RUNNER := $(PKGS_CORE) yaml-0.1 ompi-c
PKG_CFLAGS_CORE   := $(shell pkg-config --cflags $(PKGS_CORE) 2>/dev/null)
PKG_LIBS_CORE     := $(shell pkg-config --libs $(PKGS_CORE) 2>/dev/null)
PKG_CFLAGS_RUNNER := $(shell pkg-config --cflags $(PKGS_RUNNER) 2>/dev/null)
PKG_LIBS_RUNNER   := $(shell pkg-config --libs $(PKGS_RUNNER) 2>/dev/null)
PKG_LIBS_TEST     := $(shell pkg-config --libs criterion 2>/dev/null)

VERSION := $(shell git describe --always --dirty 2>/dev/null || echo unknown)
WARN    := -Wall -Wextra -Werror
# The flags that shape the generated code, recorded in every results file and
# checkpoint (core/io/provenance.c): they can change the last bits of a result.
CODEGEN_FLAGS = -std=c11 -g -fno-strict-aliasing $(OPT) $(MARCH) $(EXTRA_CFLAGS)
BASEFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) -g -fno-strict-aliasing -DIPSWEEP_VERSION='"$(VERSION)"' \
	-DIPSWEEP_CFLAGS='"$(strip $(CC) $(CODEGEN_FLAGS))"'
CFLAGS_CORE   = $(BASEFLAGS) $(OPT) $(MARCH) $(PKG_CFLAGS_CORE) $(EXTRA_CFLAGS)
CFLAGS_RUNNER = $(BASEFLAGS) $(OPT) $(MARCH) $(PKG_CFLAGS_RUNNER) $(EXTRA_CFLAGS)
LDLIBS_CORE   = $(PKG_LIBS_CORE) -lm

BUILD ?= build
CORE_SRC   := $(sort $(wildcard core/*.c core/*/*.c))
CORE_H     := $(wildcard core/*.h core/*/*.h)
RUNNER_SRC := $(sort $(wildcard runner/*.c runner/*/*.c))
RUNNER_H   := $(wildcard runner/*.h runner/*/*.h)
# tests/fuzz/spec_harness.c: the fuzz target's body, replayed by tests/test_fuzz_regress.c
TEST_SRC   := $(sort $(wildcard tests/test_*.c)) tests/fuzz/spec_harness.c
CORE_OBJ   := $(CORE_SRC:%.c=$(BUILD)/%.o)
RUNNER_OBJ := $(RUNNER_SRC:%.c=$(BUILD)/%.o)
RUNLIB_OBJ := $(filter-out $(BUILD)/runner/main.o,$(RUNNER_OBJ))
TEST_OBJ   := $(TEST_SRC:%.c=$(BUILD)/%.o)

.PHONY: all deps check test test-san test-mpi test-slurm test-cli test-docs demo bench bench-layers docs readme-numbers fuzz clean help
all: $(BUILD)/ipsweep $(BUILD)/libipcore.a

help:
	@echo "make            build build/ipsweep and build/libipcore.a"
	@echo "make deps       install the Debian packages ipsweep needs"
	@echo "make check      unit tests, sanitizer build of the unit tests, CLI and docs tests, MPI tests, Slurm test"
	@echo "make test-slurm a one-node Slurm cluster on localhost runs jobs/slurm.sbatch (root only)"
	@echo "make demo       run the quick study (configs/quick.yaml) and print its summary"
	@echo "make bench      benchmark figures against PyTorch, small-p, alexnet-p, resnet18-p (docs/performance.md)"
	@echo "make bench-layers  time and GFLOP/s of every layer of the three networks"
	@echo "make readme-numbers  tables and figures of README.md and docs/ from results/quick.h5 (after make demo)"
	@echo "make fuzz       fuzz the spec loader with libFuzzer for FUZZ_SECONDS (clang; docs/testing.md)"
	@echo "variables: MARCH=... (default probed -march=native), OPT=-O2, BUILD=build"

$(BUILD)/libipcore.a: $(CORE_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/core/%.o: core/%.c $(CORE_H)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_CORE) -c $< -o $@

$(BUILD)/runner/%.o: runner/%.c $(RUNNER_H) $(CORE_H)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_RUNNER) -c $< -o $@

$(BUILD)/tests/%.o: tests/%.c tests/*.h $(CORE_H) $(RUNNER_H)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_RUNNER) -c $< -o $@
$(BUILD)/tests/fuzz/spec_harness.o $(BUILD)/tests/fuzz/fuzz_spec.o $(BUILD)/tests/test_fuzz_regress.o: tests/fuzz/spec_harness.h

# The objects that embed the commit and build flags (provenance, the version
# line) are rebuilt whenever those change, not only when their source does:
# $(BUILD)/buildinfo is rewritten only when its text differs.
BUILDINFO = $(VERSION) $(strip $(CC) $(CODEGEN_FLAGS))
$(BUILD)/buildinfo: FORCE
	@mkdir -p $(@D); echo '$(BUILDINFO)' | cmp -s - $@ || echo '$(BUILDINFO)' > $@
$(BUILD)/core/io/provenance.o $(BUILD)/core/ipguard/fingerprint_io.o $(BUILD)/runner/main.o: $(BUILD)/buildinfo
FORCE:

# the runner minus main(), linked by the CLI and by the unit tests
$(BUILD)/librunner.a: $(RUNLIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/ipsweep: $(BUILD)/runner/main.o $(BUILD)/librunner.a $(BUILD)/libipcore.a
	$(CC) $(CFLAGS_RUNNER) -o $@ $^ $(PKG_LIBS_RUNNER) $(LDLIBS_CORE)

$(BUILD)/unit-tests: $(TEST_OBJ) $(BUILD)/librunner.a $(BUILD)/libipcore.a
	$(CC) $(CFLAGS_RUNNER) -o $@ $^ $(PKG_LIBS_TEST) $(PKG_LIBS_RUNNER) $(LDLIBS_CORE)

# Tests must not change OPENBLAS_CORETYPE (preset on some machines). One BLAS
# thread per Criterion worker: the workers already run in parallel.
TEST_ENV = OPENBLAS_NUM_THREADS=1 IPSWEEP_DATA_DIR=$(IPSWEEP_DATA_DIR)
IPSWEEP_DATA_DIR ?= /usr/share/datasets/fashion-mnist
CRITERION_JOBS ?= 2

# No test sets Criterion's .timeout: with --jobs 2, Criterion 2.4.1's runner
# sometimes leaks its 48-byte timeout record, which made the sanitizer pass
# fail one run in three. A hung test is caught by this outer limit instead.
UNIT_TIMEOUT ?= 1800
test: $(BUILD)/unit-tests
	@! grep -n '\.timeout *=' tests/*.c || { echo "tests: Criterion's .timeout is not used here (see the Makefile)"; exit 1; }
	$(TEST_ENV) timeout $(UNIT_TIMEOUT) $(BUILD)/unit-tests --jobs $(CRITERION_JOBS) $(TEST_ARGS)

# The same unit tests built with AddressSanitizer + UBSan, into build-san/.
# Criterion runs each test in a child process and ignores how the child exits
# after its assertions passed, so a leak found at a child's exit would pass
# unseen: every process writes its sanitizer reports to build-san/reports/,
# and any report there fails the run (tests/san-report.sh prints them).
SAN_FLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
SAN_REPORTS = build-san/reports
test-san:
	$(MAKE) BUILD=build-san OPT=-O1 EXTRA_CFLAGS="$(SAN_FLAGS)" PKG_LIBS_TEST="$(PKG_LIBS_TEST) $(SAN_FLAGS)" build-san/unit-tests
	rm -rf $(SAN_REPORTS) && mkdir -p $(SAN_REPORTS)
	ASAN_OPTIONS=detect_leaks=1:log_path=$(abspath $(SAN_REPORTS))/asan \
	UBSAN_OPTIONS=print_stacktrace=1:log_path=$(abspath $(SAN_REPORTS))/ubsan \
	  $(TEST_ENV) IPSWEEP_SANITIZED=1 timeout $(UNIT_TIMEOUT) build-san/unit-tests --jobs $(CRITERION_JOBS) $(TEST_ARGS); \
	  rc=$$?; sh tests/san-report.sh $(SAN_REPORTS) && exit $$rc

# MPI integration programs: each tests/mpi/test_*.sh runs build/ipsweep under
# mpirun --oversubscribe; the closing line counts them like the unit tests.
MPI_TESTS := $(sort $(wildcard tests/mpi/test_*.sh))
test-mpi: $(BUILD)/ipsweep
	@pass=0; fail=0; for t in $(MPI_TESTS); do echo "== $$t"; \
	  if IPSWEEP_BIN=$(abspath $(BUILD)/ipsweep) bash $$t; then pass=$$((pass+1)); else fail=$$((fail+1)); fi; done; \
	  echo "mpi: $$pass passed, $$fail failed"; [ $$fail -eq 0 ]

# Slurm integration test: starts munged, slurmctld and slurmd on localhost and
# submits jobs/slurm.sbatch (tests/slurm/test_slurm.sh). It skips without
# Slurm, munge or root, unless IPSWEEP_REQUIRE_SLURM=1 (as in CI); it gives up
# by itself after 480 s (it takes about 3.5 min: job E trains past a
# 1-minute limit), and the timeout is a last resort around that.
test-slurm: $(BUILD)/ipsweep
	IPSWEEP_BIN=$(abspath $(BUILD)/ipsweep) timeout 540 bash tests/slurm/test_slurm.sh

# The command line's promises (--help, one-line errors, exit 2), `ipsweep export`
# on a real results file (tests/cli/test_export.sh), `ipsweep report`'s LaTeX
# compiled in a two-column paper and its comparison of two runs
# (tests/cli/test_latex.sh; SKIP lines without pdflatex), `report --format html`
# rendered offline in headless Chromium (tests/cli/test_html.sh; skips without
# chromium unless IPSWEEP_REQUIRE_CHROMIUM=1), and the
# examples of docs/results.md run against a real results file.
test-cli: $(BUILD)/ipsweep
	IPSWEEP_BIN=$(abspath $(BUILD)/ipsweep) bash tests/cli/test_cli.sh
	IPSWEEP_BIN=$(abspath $(BUILD)/ipsweep) bash tests/cli/test_export.sh
	IPSWEEP_BIN=$(abspath $(BUILD)/ipsweep) bash tests/cli/test_html.sh
	IPSWEEP_BIN=$(abspath $(BUILD)/ipsweep) bash tests/cli/test_latex.sh
test-docs: $(BUILD)/ipsweep
	IPSWEEP_BIN=$(abspath $(BUILD)/ipsweep) bash tests/docs/test_results_md.sh
# libFuzzer on the spec loader and --set (tests/fuzz/): clang builds the core,
# the runner and the harness with ASan+UBSan into build-fuzz/; the corpus
# starts from every spec in the tree, the dictionary from tests/fuzz/spec.dict
# plus the kinds table. An input that crashes, leaks, breaks an invariant or
# goes over the time or memory limit (FUZZ_SPEC_* in tests/fuzz/spec_harness.h)
# is saved to tests/fuzz/crashes/ (kept in git, replayed by `make test`, which
# needs no clang); the run goes on after it (-fork=1 -ignore_*).
# Not part of `make check`.
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_CORPUS ?= build-fuzz/corpus
FUZZ_ARGS ?=
DEB_FUZZ := clang libclang-rt-dev
fuzz_limit = $(shell sed -n 's/^\#define $(1) //p' tests/fuzz/spec_harness.h)
# clang, unlike gcc, warns about static inline helpers that only some -march
# paths use (core/nn/norm.c's tail_y on AVX-512)
FUZZ_WARN = -Wno-unused-function
FUZZ_SAN = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
build-fuzz/fuzz-spec: build-fuzz/tests/fuzz/fuzz_spec.o build-fuzz/tests/fuzz/spec_harness.o \
		build-fuzz/librunner.a build-fuzz/libipcore.a
	$(CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(PKG_LIBS_RUNNER) $(LDLIBS_CORE)
fuzz:
	@sh scripts/deps.sh $(DEB_FUZZ) --
	$(MAKE) BUILD=build-fuzz CC=$(FUZZ_CC) OPT=-O1 EXTRA_CFLAGS="$(FUZZ_SAN) -fsanitize=fuzzer-no-link $(FUZZ_WARN)" build-fuzz/fuzz-spec
	$(MAKE) $(BUILD)/ipsweep
	@mkdir -p $(FUZZ_CORPUS) tests/fuzz/crashes
	@for f in configs/*.yaml tests/mpi/*.yaml tests/specs/*.yaml tests/fuzz/seeds/*; do \
	  cp $$f $(FUZZ_CORPUS)/seed-$$(echo $$f | tr / -); done
	@{ cat tests/fuzz/spec.dict; $(BUILD)/ipsweep kinds | grep -o '`[^` ]*`' | tr -d '`' | sort -u | \
	  sed 's/["\\]/\\&/g; s/.*/"&"/'; } > build-fuzz/spec.dict
	nice -n 10 build-fuzz/fuzz-spec $(FUZZ_CORPUS) -dict=build-fuzz/spec.dict -max_total_time=$(FUZZ_SECONDS) \
	  -timeout=$(call fuzz_limit,FUZZ_SPEC_TIMEOUT_S) -rss_limit_mb=$(call fuzz_limit,FUZZ_SPEC_RSS_MB) \
	  -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
	  -artifact_prefix=tests/fuzz/crashes/ $(FUZZ_ARGS)

check: deps
	$(MAKE) all
	$(MAKE) test
	$(MAKE) test-san
	$(MAKE) test-cli
	$(MAKE) test-docs
	$(MAKE) test-mpi
	$(MAKE) test-slurm

DEB_PKGS := libopenmpi-dev openmpi-bin libopenblas-dev libyaml-dev libhdf5-dev hdf5-tools \
	libcriterion-dev zlib1g-dev pkg-config gnuplot-nox dataset-fashion-mnist slurm-wlm munge chromium
# texlive-latex-base: pdflatex, for the compile checks of the report's LaTeX
# (tests/test_report_latex.c, tests/cli/test_latex.sh skip without it)
DEB_OPTIONAL := python3-torch python3-h5py python3-pandas texlive-latex-base
deps:
	@sh scripts/deps.sh $(DEB_PKGS) -- $(DEB_OPTIONAL)

# The quick study on Fashion-MNIST (configs/quick.yaml), on 3 ranks when
# Open MPI is there; prints every task and a summary table, then the study's
# tables (ipsweep report, docs/report.md) and writes its plots to DEMO_PLOTS.
DEMO_RANKS ?= 3
DEMO_OUT ?= results/quick.h5
DEMO_PLOTS ?= results/quick-plots
demo: deps all
	@if command -v mpirun >/dev/null 2>&1; then \
	  OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_mpi_yield_when_idle=1 \
	  mpirun --oversubscribe -n $(DEMO_RANKS) $(BUILD)/ipsweep run configs/quick.yaml --force --set output=$(DEMO_OUT); \
	else $(BUILD)/ipsweep run configs/quick.yaml --force --set output=$(DEMO_OUT); fi
	@echo
	$(BUILD)/ipsweep report $(DEMO_OUT) --plots $(DEMO_PLOTS)

bench: all
	sh scripts/bench.sh

# Time and GFLOP/s of every layer of the three networks (bench=layer and
# bench=layers lines; docs/performance.md "Layer by layer").
bench-layers: all
	$(BUILD)/ipsweep bench gemm
	for a in small-p alexnet-p resnet18-p; do $(BUILD)/ipsweep bench train --arch $$a --steps 4 --warmup 1 --profile; done

# Regenerates the kinds section of docs/spec.md from the kinds table
# (tests/test_spec_files.c fails when it is stale).
docs: $(BUILD)/ipsweep
	$(BUILD)/ipsweep kinds > $(BUILD)/kinds.md
	awk -v f=$(BUILD)/kinds.md '/<!-- kinds:begin -->/ {print; while ((getline l < f) > 0) print l; skip=1; next} \
	  /<!-- kinds:end -->/ {skip=0} !skip' docs/spec.md > $(BUILD)/spec.md && mv $(BUILD)/spec.md docs/spec.md

# Regenerates the tables, figures and task counts of README.md and docs/*.md
# from results/quick.h5 (and the other studies' files where a marker names
# them): scripts/docs-numbers.py; CHECK=1 only reports what is out of date.
readme-numbers: $(BUILD)/ipsweep
	/usr/bin/python3 scripts/docs-numbers.py --bin $(BUILD)/ipsweep --results $(DEMO_OUT) $(if $(CHECK),--check)

clean:
	rm -rf build build-san build-fuzz
