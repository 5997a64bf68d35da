# Quick start: `make demo` (install + run the demo scenario), `make test` (install + run the tests).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install socat demo test test-slow test-all bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

install: socat $(STAMP)

# socat (a system package) makes the pseudo-terminal pairs of emulated Modbus RTU devices (Debian / Ubuntu)
socat:
	command -v socat >/dev/null 2>&1 || { $(SUDO) apt-get update && $(SUDO) apt-get install -y socat; }

demo: $(STAMP)
	$(BIN)/cosim run scenarios/ieee33-pv-wind.yaml --out runs/demo

test: socat $(STAMP)
	$(BIN)/python -m pytest -q

# System package of the live view's browser test (tests/test_live_view.py): headless Chromium (Debian).
chromium:
	command -v chromium >/dev/null 2>&1 || { apt-get update && apt-get install -y chromium; }

test-slow: $(STAMP) chromium
	$(BIN)/python -m pytest -q -m slow

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m "slow or not slow"

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_core.py

clean:
	rm -rf runs build *.egg-info
