# oneclick: `make run` to start everything, `make test` to run the checks and the whole suite.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
# `make run`'s local Stripe-compatible server (localstripe, development only) and the SDK's
# settings pointing at it; set STRIPE_API_KEY (and no STRIPE_API_BASE) to use Stripe's test mode.
LOCALSTRIPE_PORT ?= 8420
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: install install-dev run test mutants lint format bench clean

$(BIN)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(BIN)/.installed-localstripe: requirements-localstripe.txt $(BIN)/.installed
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-localstripe.txt
	touch $@

$(BIN)/.installed-dev: requirements.txt requirements-localstripe.txt requirements-dev.txt $(BIN)/.installed
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

install: $(BIN)/.installed

install-dev: $(BIN)/.installed-dev

run: export STRIPE_API_KEY ?= sk_test_local
run: export STRIPE_API_BASE ?= http://127.0.0.1:$(LOCALSTRIPE_PORT)
run: export LOCALSTRIPE_PORT := $(LOCALSTRIPE_PORT)
run: install $(BIN)/.installed-localstripe
	DJANGO_DEBUG=$${DJANGO_DEBUG:-true} $(BIN)/python manage.py migrate --noinput
	# The demo's Visa is saved at the local provider, which honcho has not started yet.
	DJANGO_DEBUG=$${DJANGO_DEBUG:-true} bin/with-localstripe $(BIN)/python manage.py seed_demo
	DJANGO_DEBUG=$${DJANGO_DEBUG:-true} PORT=$(PORT) $(BIN)/honcho -f Procfile.dev start

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	# The import contracts of pyproject.toml: durable/'s layers, no cycle, durable alone; the
	# harness (devtools/) and bench/ apart from tests/.
	$(BIN)/lint-imports

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint
	$(BIN)/pytest

# Break each guarantee in a scratch copy and check the tests notice (tests/mutants.py).
mutants: install-dev
	$(BIN)/python tests/mutants.py $(MUTANTS_ARGS)

bench: install-dev
	$(BIN)/pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	# The reference's stack (benchmark httppeers), from its package-lock.json; skipped without npm.
	if command -v npm >/dev/null; then cd bench/peers/resonate && npm ci --no-audit --no-fund --loglevel=error; fi
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) db.sqlite3* test_db.sqlite3* staticfiles .pytest_cache .import_linter_cache \
	  var/localstripe.pickle
