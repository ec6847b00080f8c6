# ljs - thin wrapper over CMake. Every target works from a clean clone:
#   make test         deps, build/ (RelWithDebInfo), ctest without the stress label
#   make test-asan    build-asan/ (-DLJS_SANITIZE=address: ASan+UBSan, no mimalloc)
#   make test-tsan    build-tsan/ (-DLJS_SANITIZE=thread)
#   make lint         cppcheck + clang-tidy + clang-format --dry-run (.ci/lint)
#   make fuzz         build-fuzz/ (clang, -DLJS_FUZZ=ON), each libFuzzer target FUZZ_SECONDS
#   make demo         ./build/ljs-run examples/arena --seconds 5
#   make bench        ./build/ljs-bench $(BENCH_ARGS)
#   make soak         ./build/ljs-soak --duration $(SOAK_DURATION) (CSV + 2 PNGs in build/soak/)
#   make soak-asan    build-asan/ljs-soak --duration 60s (also soak-tsan)
#   make benchmarks-md  run every bench case and write BENCHMARKS-latest.md
#   make install      cmake --install build --prefix $(PREFIX)
#   make test-install install into a temp prefix, build and run tests/install consumers
#   make clean        remove build*/ directories
# Variables: PREFIX (/usr/local), BUILD_TYPE (RelWithDebInfo), CMAKE_FLAGS (extra
# -D options), CTEST_FLAGS, BENCH_ARGS, DEMO_ARGS, SOAK_DURATION (10m), SOAK_ARGS,
# JOBS (nproc), FUZZ_SECONDS (60 per target), FUZZ_TARGETS (all), LJS_SKIP_DEPS=1.

SHELL := /bin/bash
.DEFAULT_GOAL := test

PREFIX      ?= /usr/local
BUILD_TYPE  ?= RelWithDebInfo
CMAKE       ?= cmake
CTEST       ?= ctest
CMAKE_FLAGS ?=
CTEST_FLAGS ?=
BENCH_ARGS  ?=
DEMO_ARGS   ?= examples/arena --seconds 5
SOAK_DURATION ?= 10m
SOAK_ARGS   ?=
JOBS        ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= codec cache scene script snapshot

# Debian packages: building and testing; linting. gcc brings libasan/libtsan.
# libc6-dev is only a Recommends of gcc, so name it (--no-install-recommends).
DEPS_PKGS := liblua5.4-dev libck-dev libmimalloc-dev libcmocka-dev lua5.4 pkg-config cmake make gcc libc6-dev
LINT_PKGS := cppcheck clang-tidy clang-format
PLOT_PKGS := gnuplot-nox
# libFuzzer and clang's sanitizer runtimes.
FUZZ_PKGS := clang libclang-rt-14-dev

# sudo only when not root.
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

# $(call apt_ensure,PACKAGES): install whatever of PACKAGES is missing.
define apt_ensure
	@if [ -n "$(LJS_SKIP_DEPS)" ]; then echo "deps: skipped (LJS_SKIP_DEPS)"; exit 0; fi; \
	if ! command -v dpkg-query >/dev/null 2>&1; then \
	    echo "deps: no dpkg-query (not Debian?); make sure these are installed: $(1)"; exit 0; fi; \
	missing=""; \
	for p in $(1); do \
	    dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "deps: all installed ($(strip $(1)))"; exit 0; fi; \
	echo "deps: installing$$missing"; \
	$(SUDO) apt-get update && \
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing
endef

# $(call cmake_build,DIR,EXTRA_CMAKE_ARGS): configure DIR and build everything.
# The inner build gets its own -j (not this make's jobserver or -w noise).
define cmake_build
	$(CMAKE) -S . -B $(1) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(2) $(CMAKE_FLAGS)
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL $(CMAKE) --build $(1) -j$(JOBS)
endef

# $(call ctest_run,DIR)
define ctest_run
	$(CTEST) --test-dir $(1) --output-on-failure -LE '^stress$$' -j2 $(CTEST_FLAGS)
endef

.PHONY: all deps deps-lint configure build test build-asan test-asan build-tsan test-tsan \
        lint demo bench install test-install clean help soak soak-asan soak-tsan benchmarks-md \
        build-fuzz fuzz

all: build

help:
	@sed -n '2,14s/^# \{0,1\}//p' $(firstword $(MAKEFILE_LIST))

deps:
	$(call apt_ensure,$(DEPS_PKGS))

deps-lint:
	$(call apt_ensure,$(LINT_PKGS))

# Configure only (lint needs build/compile_commands.json, not a build).
configure: deps
	$(CMAKE) -S . -B build -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS)

build: deps
	$(call cmake_build,build,)

test: build
	$(call ctest_run,build)

build-asan: deps
	$(call cmake_build,build-asan,-DLJS_SANITIZE=address)

test-asan: build-asan
	$(call ctest_run,build-asan)

build-tsan: deps
	$(call cmake_build,build-tsan,-DLJS_SANITIZE=thread)

test-tsan: build-tsan
	$(call ctest_run,build-tsan)

lint: deps deps-lint configure
	.ci/lint build

# libFuzzer targets (fuzz/, README "Fuzzing"). Each runs FUZZ_SECONDS on a
# scratch corpus seeded from fuzz/corpus/<target>/ (new inputs stay in
# build-fuzz/corpus/); a crash, leak, timeout or broken invariant fails the
# target and leaves its input in build-fuzz/crashes/. Every target runs even
# if one fails. The timeout is wall-clock and generous (the scripts' own CPU
# timeout is 200 ms) so a loaded shared machine does not fail a sound run.
build-fuzz: deps
	$(call apt_ensure,$(FUZZ_PKGS))
	$(CMAKE) -S . -B build-fuzz -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DCMAKE_C_COMPILER=clang -DLJS_FUZZ=ON \
	    -DLJS_BUILD_TESTS=OFF -DLJS_BUILD_BENCH=OFF $(CMAKE_FLAGS)
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL $(CMAKE) --build build-fuzz -j$(JOBS) --target fuzzers

fuzz: build-fuzz
	@mkdir -p build-fuzz/crashes; failed=""; \
	for t in $(FUZZ_TARGETS); do \
	    mkdir -p build-fuzz/corpus/$$t; dict=""; \
	    if [ -f fuzz/$$t.dict ]; then dict=-dict=fuzz/$$t.dict; fi; \
	    echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	    if ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	        ./build-fuzz/fuzz/fuzz_$$t build-fuzz/corpus/$$t fuzz/corpus/$$t \
	        -max_total_time=$(FUZZ_SECONDS) -timeout=60 -rss_limit_mb=2048 -max_len=4096 \
	        -close_fd_mask=1 -print_final_stats=1 -artifact_prefix=build-fuzz/crashes/$$t- $$dict \
	        >build-fuzz/fuzz-$$t.log 2>&1; then \
	        echo "fuzz: $$t OK ($$(grep -o 'stat::number_of_executed_units: *[0-9]*' build-fuzz/fuzz-$$t.log | grep -o '[0-9]*$$') runs)"; \
	    else \
	        echo "fuzz: $$t FAILED (build-fuzz/fuzz-$$t.log):"; tail -n 40 build-fuzz/fuzz-$$t.log; \
	        failed="$$failed $$t"; \
	    fi; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: failed:$$failed (inputs in build-fuzz/crashes/)"; exit 1; fi

demo: build
	@test -x build/ljs-run || { echo "demo: build/ljs-run was not built (tools/*.c missing?)" >&2; exit 1; }
	./build/ljs-run $(DEMO_ARGS)

bench: build
	@test -x build/ljs-bench || { echo "bench: build/ljs-bench was not built" >&2; exit 1; }
	./build/ljs-bench $(BENCH_ARGS)

# A soak writes its CSV and its plot (stress/plot, gnuplot) under build/soak/.
soak: build
	$(call apt_ensure,$(PLOT_PKGS))
	@mkdir -p build/soak
	./build/ljs-soak --duration $(SOAK_DURATION) --csv build/soak/soak-$(SOAK_DURATION).csv $(SOAK_ARGS)
	stress/plot build/soak/soak-$(SOAK_DURATION).csv build/soak/soak-$(SOAK_DURATION).png

soak-asan: build-asan
	./build-asan/ljs-soak --duration 60s $(SOAK_ARGS)

soak-tsan: build-tsan
	./build-tsan/ljs-soak --duration 60s $(SOAK_ARGS)

# Every case, the targets table, and what it ran on, for BENCHMARKS.md.
benchmarks-md: build
	@{ echo "<!-- ljs-bench output at commit $$(git rev-parse --short HEAD 2>/dev/null || echo unknown) -->"; \
	  ./build/ljs-bench $(BENCH_ARGS); } | tee BENCHMARKS-latest.md

install: build
	@if [ -w "$(PREFIX)" ] || { [ ! -e "$(PREFIX)" ] && [ -w "$$(dirname "$(PREFIX)")" ]; }; then \
	    echo "$(CMAKE) --install build --prefix $(PREFIX)"; $(CMAKE) --install build --prefix "$(PREFIX)"; \
	else \
	    echo "$(SUDO) $(CMAKE) --install build --prefix $(PREFIX)"; $(SUDO) $(CMAKE) --install build --prefix "$(PREFIX)"; \
	fi

test-install: build
	tests/install/run.sh build

clean:
	rm -rf build build-asan build-tsan build-fuzz
