# Two commands on a fresh machine: `make run` (quick profile end to end) and `make test`.
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp
export DVC_NO_ANALYTICS=1 ITERATIVE_DO_NOT_TRACK=1 DO_NOT_TRACK=1 \
       PREFECT_SERVER_ANALYTICS_ENABLED=false GX_ANALYTICS_ENABLED=false

.PHONY: install run test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/pip check
	touch $(STAMP)

run: install
	$(BIN)/dvc repro

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python -m bench.throughput

clean:
	rm -rf data .dvc/tmp .dvc/cache
