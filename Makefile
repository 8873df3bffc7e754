# Quintet: `make run` starts the embedded default on http://127.0.0.1:8000,
# `make test` runs the test suite against PostgreSQL and Redis on 127.0.0.1.
# Both need only Python 3.11+ and make: the first call installs uv and the locked dependencies.

PYTHON ?= python3
UV_VERSION := 0.13.8
VENV := .venv
UV := .tools/bin/uv
export UV_PROJECT_ENVIRONMENT := $(VENV)
LITESTAR := $(VENV)/bin/litestar --app app.asgi:create_app
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: setup run test lint format typecheck migrate migration worker bot seed bench load fuzz smoke image-smoke clean

setup: $(VENV)/.synced

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# The default groups: dev (tests, lint) and embedded (fakeredis, for `make run` without REDIS_URL);
# the image syncs without them (docker/Dockerfile).
$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

run: setup  ## the app on the embedded default (SQLite + in-process Redis stand-in)
	$(VENV)/bin/uvicorn app.asgi:create_asgi --factory --no-proxy-headers --host $(HOST) --port $(PORT)

test: setup  ## the whole suite (real PostgreSQL and Redis, Chromium for the browser tests)
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check app tests scripts docker .ci
	$(VENV)/bin/ruff format --check app tests scripts docker .ci
	$(VENV)/bin/mypy
	$(VENV)/bin/python scripts/config_table.py --check  # README's configuration table

typecheck: setup  ## mypy --strict over app/ and tests/ (part of make lint)
	$(VENV)/bin/mypy

format: setup
	$(VENV)/bin/ruff check --fix app tests scripts docker .ci
	$(VENV)/bin/ruff format app tests scripts docker .ci

migrate: setup  ## apply migrations to DATABASE_URL
	$(LITESTAR) database upgrade --no-prompt

seed: setup  ## the bilingual achievements catalogue into DATABASE_URL (idempotent); SEED_ARGS="--synthetic-players 1000"
	$(LITESTAR) achievements seed $(SEED_ARGS)

worker: setup  ## the SAQ worker (Telegram notifications) on DATABASE_URL and REDIS_URL
	$(LITESTAR) workers run

bot: setup  ## the Telegram bot, long polling (needs TELEGRAM_BOT_TOKEN)
	$(LITESTAR) telegram poll

migration: setup  ## generate a migration from the models: make migration MESSAGE="..." REV=0002_name
	$(LITESTAR) database make-migrations --no-prompt -m "$(MESSAGE)" --rev-id $(REV)

bench: setup  ## benchmarks (not part of the test run); they print their figures
	$(VENV)/bin/python -m tests.bench

load: setup  ## the mixed load run: uvicorn --workers 4, 30 s; LOAD_ARGS="--seconds 60"
	$(VENV)/bin/python -m tests.bench.mixed_load $(LOAD_ARGS)

fuzz: setup  ## a long schemathesis run over every operation (CI runs a short one)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-300} FUZZ_SCENARIOS=$${FUZZ_SCENARIOS:-200} $(VENV)/bin/pytest tests/fuzz -p no:cacheprovider

smoke: setup  ## scripts/smoke.py against a running Quintet: make smoke URL=http://127.0.0.1:8080 SMOKE_ARGS="--only board"
	@test -n "$(URL)" || { echo 'usage: make smoke URL=http://127.0.0.1:8080 [SMOKE_ARGS="--only health,board --wait 60"]' >&2; exit 2; }
	$(VENV)/bin/python scripts/smoke.py $(URL) $(SMOKE_ARGS)

image-smoke: setup  ## as root: build docker/Dockerfile under a private dockerd and run it as migrate, api, worker (docs/containers.md)
	bash docker/smoke-build.sh

clean:
	rm -rf .tools $(VENV) var .pytest_cache .mypy_cache .ruff_cache
