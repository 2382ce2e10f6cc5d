# The two commands of the README: `make demo` and `make test`. Both install what
# they need first (Debian packages as root, Python packages into .venv).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
WQCI := $(BIN)/wqci

# Build, boot and rootfs tools; the kernel source and guest packages come later
# through wqci's private apt configuration. chromium renders report.html headless in
# the test that checks what is above the fold.
DEB_PACKAGES := git gcc make flex bison bc libelf-dev libssl-dev cpio xz-utils lz4 kmod ccache \
	gcc-aarch64-linux-gnu qemu-system-x86 qemu-system-arm bubblewrap dropbear-bin \
	openssh-client python3-venv python3-dev seabios \
	chromium

.PHONY: all deps deb-deps py-deps demo test unit integration clean bench-build bench-boot bench-demo

all: test

deps: deb-deps py-deps

deb-deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "I: installing Debian packages:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

py-deps: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# The main job on its defaults: x86_64, triage on the debug flavour, the A/B on the lockstat
# flavour, smp8-numa2, the suites the series' paths select.
demo: deps
	$(WQCI) run --series fastwake-v1

test: deps
	$(BIN)/pytest -ra -v --durations=30 tests

unit: py-deps
	$(BIN)/pytest -ra tests/unit

integration: deps
	$(BIN)/pytest -ra -v tests/integration

clean:
	rm -rf $(VENV) *.egg-info

bench-build: deps
	$(BIN)/python -m tests.bench.bench_build

bench-boot: deps
	$(BIN)/python -m tests.bench.bench_boot

# make demo's job, timed by phase; WQCI_BENCH_COLD=1 starts from an empty cache
bench-demo: deps
	$(BIN)/python -m tests.bench.bench_demo
