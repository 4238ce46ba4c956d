# Entry points. `make demo` and `make test` each set up everything they need
# on a fresh Debian 12 / Ubuntu 22.04+ machine (packages, build), then run.

BUILD ?= build
JOBS ?= $(shell nproc)
# CI builds treat warnings as errors.
WERROR ?= $(if $(CI),ON,OFF)
CMAKE_FLAGS ?=

# `make check` (CI): the suite, the suite under ASan+UBSan, the soak test,
# then every fuzz target for FUZZ_SECONDS. Each phase has its build dir.
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
# The soak step runs SOAK_CMD (by default tests/soak/run.sh on the kernel
# `make test` built, when that script exists); an empty SOAK_CMD skips the
# step and says so.
SOAK_SECONDS ?= 180
SOAK_CMD ?= $(if $(wildcard tests/soak/run.sh),./tests/soak/run.sh $(BUILD) $(SOAK_SECONDS))
CHECK_PHASES ?= test sanitize soak fuzz

# Sanitizer reports go to files, so that none is lost in a log nobody reads
# (a kernel started by a test, a child before execve); any file fails the job.
SAN_LOGS = $(abspath $(ASAN_BUILD))/sanitizer-reports
SAN_ENV = AGENTOS_SANITIZED=1 \
          ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1:log_path=$(SAN_LOGS)/asan \
          UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1:log_path=$(SAN_LOGS)/ubsan \
          LSAN_OPTIONS=log_path=$(SAN_LOGS)/lsan

.PHONY: all deps configure build kernel demo test unit integration bench clean check sanitize soak fuzz

all: build

deps:
	./scripts/install-deps.sh

configure: deps
	cmake -S . -B $(BUILD) -DAGENTOS_WERROR=$(WERROR) $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD) -j$(JOBS)

kernel: configure
	cmake --build $(BUILD) -j$(JOBS) --target agentos_kernel

# The main job: the kernel with the fault-isolation demo (no API key needed).
demo: kernel
	./scripts/demo.sh $(BUILD)

# The whole test suite: unit tests (GoogleTest) and integration tests
# (pytest against a real kernel), through ctest.
test: build
	cd $(BUILD) && ctest --output-on-failure --timeout 2400

unit: build
	$(BUILD)/unit_tests

bench: build
	./bench/run_ipc.sh $(BUILD)

# Everything CI runs, phase by phase, with the time each took.
check:
	@set -e; for phase in $(CHECK_PHASES); do \
	  start=$$(date +%s); \
	  $(MAKE) --no-print-directory $$phase; \
	  echo "check: $$phase passed in $$(( $$(date +%s) - start )) s"; \
	done

# Unit and integration tests with AddressSanitizer (+LeakSanitizer) and
# UndefinedBehaviorSanitizer.
sanitize: deps
	cmake -S . -B $(ASAN_BUILD) -DAGENTOS_SANITIZE=ON -DAGENTOS_WERROR=$(WERROR) -DAGENTOS_BUILD_BENCH=OFF $(CMAKE_FLAGS)
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	rm -rf $(SAN_LOGS) && mkdir -p $(SAN_LOGS)
	cd $(ASAN_BUILD) && $(SAN_ENV) ctest --output-on-failure --timeout 2400 || status=$$?; \
	  if [ -n "$$(ls -A $(SAN_LOGS))" ]; then head -n 60 $(SAN_LOGS)/*; echo "sanitize: reports in $(SAN_LOGS)" >&2; exit 1; fi; \
	  exit $${status:-0}

soak:
	$(if $(SOAK_CMD),$(SOAK_CMD),@echo "soak: skipped (SOAK_CMD is empty)")

fuzz: deps
	./scripts/run-fuzzers.sh $(FUZZ_SECONDS) $(FUZZ_BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
