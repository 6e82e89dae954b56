# Plugboard: `make run` starts the demo, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# One stamp for what running needs, one for the test tools on top of it: `make run` installs
# only the first.
RUN_STAMP := $(VENV)/.run-$(shell cat requirements.txt | cksum | cut -d' ' -f1)
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
FLASK := $(BIN)/flask --app wsgi
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test lint install system-packages bench

$(RUN_STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt
	rm -f $(VENV)/.run-*
	touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP) requirements-dev.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

system-packages:
	./scripts/ensure-system-packages

instance/secret_key:
	mkdir -p instance
	$(PYTHON) -c 'import secrets; print(secrets.token_hex(32))' > $@
	chmod 600 $@

# The demo: a SQLite file under instance/, migrated and seeded, served by gunicorn on
# http://$(HOST):$(PORT)/ with simulated charge points connected.
run: $(RUN_STAMP) instance/secret_key
	$(FLASK) db upgrade
	$(FLASK) seed-demo
	HOST=$(HOST) PORT=$(PORT) ./scripts/run-demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Every test, on SQLite and on a PostgreSQL server that the test session starts.
test: $(STAMP) system-packages lint
	$(BIN)/pytest

bench: $(STAMP) system-packages
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk >/dev/null)
	$(BIN)/python bench/api.py
