# Entry points. `make demo` and `make test` each set up everything they need
# on a fresh Debian 12 / Ubuntu 22.04+ machine (packages, build), then run.

BUILD ?= build
JOBS ?= $(shell nproc)
# CI builds treat warnings as errors.
WERROR ?= $(if $(CI),ON,OFF)
CMAKE_FLAGS ?=

.PHONY: all deps configure build kernel demo test unit integration bench clean

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

clean:
	rm -rf $(BUILD)
