# Smart-community evaluation platform. `make help` lists the targets.
# Two locked environments: .venv (Airflow, dbt, GX, ingestion, simulator, tests) and
# .venv-superset (Superset needs SQLAlchemy < 2, Airflow needs >= 2).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_BIN  ?= python3
VENV        := .venv
SS_VENV     := .venv-superset
PY          := $(VENV)/bin/python
SS_PY       := $(SS_VENV)/bin/python
STAMPS      := .make
# Builds and verifies the environments (standard library; run by the machine's python3).
ENVS        := $(PYTHON_BIN) requirements/environments.py --python $(PYTHON_BIN)
ENV_INPUTS  := requirements/environments.py requirements/uv.txt
# The uv binary, looked up (and installed into .make/uv if the machine has none) only when a
# recipe needs it, never when the Makefile is read.
UV           = $(shell $(ENVS) uv)
PYTEST_ARGS ?=

# Demo mode (core/demo.py): only these targets accept config/demo.env's secrets and create demo
# users; `SMARTCOMM_DEMO=0 make serve` runs them as in production.
DEMO_TARGETS := demo pipeline serve simulator ingest airflow backfill test test-slow test-scale \
                bench bench-quick bench-dashboards bench-daily bench-ingest bench-validate bench-transform bench-spark
$(DEMO_TARGETS): export SMARTCOMM_DEMO ?= 1

export DO_NOT_TRACK := 1
export GX_ANALYTICS_ENABLED := false
export AIRFLOW__COSMOS__ENABLE_TELEMETRY := False

.PHONY: help setup setup-system lock demo pipeline test test-slow lint clean serve simulator bench-simulator dq-docs bench-validate dbt-build bench-transform

help: ## list the targets
	@grep -hE '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# An environment's stamp is written by requirements/environments.py only after the
# environment proved itself (locked packages and their files present, main modules import,
# one DuckDB version); a stamp whose interpreter is gone is rebuilt (FORCE).
$(STAMPS)/pipeline.ok: requirements/pipeline.lock.txt $(ENV_INPUTS) $(if $(wildcard $(PY)),,FORCE)
	@$(ENVS) build pipeline

$(STAMPS)/superset.ok: requirements/superset.lock.txt $(ENV_INPUTS) $(if $(wildcard $(SS_PY)),,FORCE)
	@$(ENVS) build superset

.PHONY: FORCE
FORCE:

# Debian packages: requirements/debian.txt for everyone (CI too); debian-scale.txt only for
# the scale-out stack (`make scale-setup`).
$(STAMPS)/system: requirements/debian.txt
$(STAMPS)/system-scale: requirements/debian-scale.txt
$(STAMPS)/system $(STAMPS)/system-scale:
	@mkdir -p $(STAMPS)
	@echo "==> checking Debian packages ($<)"
	@missing=$$(for p in $$(cat $<); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "==> installing Debian packages: "$$missing; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null); \
	  else echo "!! missing Debian packages: $$missing (run: sudo apt-get install $$missing)"; exit 1; fi; \
	fi
	@touch $@

setup: $(STAMPS)/pipeline.ok $(STAMPS)/superset.ok $(STAMPS)/system ## build both environments from the lock files (no-op when unchanged)

setup-system: $(STAMPS)/system ## install the Debian packages the browser tests and reports need

lock: ## re-resolve requirements/*.in into the lock files
	@echo "==> locking requirements"
	$(UV) pip compile -q --python-version 3.11 requirements/pipeline.in -o requirements/pipeline.lock.txt
	$(UV) pip compile -q --python-version 3.11 requirements/superset.in -o requirements/superset.lock.txt
	$(UV) pip compile -q --python-version 3.11 requirements/spark.in -o requirements/spark.lock.txt

demo: pipeline serve ## the main job: the pipeline on the simulator for the demo window, then the dashboards

pipeline: setup ## simulator → ingest DAGs → evaluate_district (GX, dbt, publish, report), via `dag.test()`
	@$(PY) -m ingestion.registry check
	@$(PY) -m pipeline.demo $(PIPELINE_ARGS)

serve: setup ## Superset on 127.0.0.1:8088: db upgrade, init, import dashboards, roles/users (logins printed)
	@$(PY) -m superset_assets.server

simulator: setup ## the vendor simulator on 127.0.0.1:8700 (demo credentials, demo faults); Ctrl-C stops it
	$(PY) -m simulator serve --seed 7 --port 8700 --env-file config/demo.env --faults simulator/faults/demo.yml

bench-simulator: setup ## measure the simulator: served rows/s, site-month generation, site-year memory
	$(PY) bench/simulator_throughput.py

dq-docs: setup ## build the Great Expectations Data Docs (expectations/gx/uncommitted/data_docs/local_site/index.html)
	$(PY) -m expectations docs

bench-validate: setup ## GX validation of one site-month (passages; every kind) vs the time to land it, peak RSS (--quick: bench-quick)
	$(PY) bench/validate.py

dbt-build: setup ## export the registry's site facts and dbt build the warehouse from the landing zone (SMARTCOMM_DATA_DIR, default data/)
	$(PY) -m ingestion.reference
	$(PY) -m dbt_project.run build

bench-transform: setup ## dbt fixed cost, full build and one new day vs a hand-written DuckDB query of the monthly counts (pilot month and year)
	$(PY) -m bench.transform --sizes pilot-month pilot-year --out bench/results/transform.json

INGEST_START ?= 2026-01-05
INGEST_END   ?= $(INGEST_START)
.PHONY: ingest ingest-status bench-ingest
# config/demo.env fills in only what the environment does not set, and only in demo mode
# (SMARTCOMM_DEMO=0 make ingest: the environment's own credentials and key, checked by ingestion).
ingest: setup ## demo: land every site and kind for INGEST_START..INGEST_END from the simulator of `make simulator` (drops its files first)
	@if [ "$$SMARTCOMM_DEMO" = 1 ]; then \
	  while IFS='=' read -r name value; do \
	    case "$$name" in ''|'#'*) continue ;; esac; \
	    [ -n "$${!name+set}" ] || export "$$name=$$value"; \
	  done < config/demo.env; \
	fi; \
	  $(PY) -m simulator drop-files --seed 7 --start $(INGEST_START) \
	    --end $$($(PY) -c "import datetime as d; print(d.date.fromisoformat('$(INGEST_END)') + d.timedelta(days=1))") >/dev/null && \
	  $(PY) -m ingestion pull --all --start $(INGEST_START) --end $(INGEST_END)

ingest-status: setup ## watermarks, lag, last outcome per site and kind (data/state/state.duckdb)
	@$(PY) -m ingestion status

bench-ingest: setup ## one site-month of passages from the ISC and token REST APIs vs a plain download (ratio) and dlt (peer), peak RSS
	$(PY) bench/ingest.py

START ?=
END   ?=
SITES ?=
.PHONY: bench bench-quick bench-dashboards bench-daily
bench: scale-setup ## every stage's benchmark at pilot and district sizes: one table + bench/results/latest.json (long: see bench/README.md)
	$(PY) -m bench

bench-quick: setup ## the benchmark suite at CI-smoke sizes (same table and JSON)
	$(PY) -m bench --quick

bench-dashboards: setup ## chart-data p50/p95, cold and warm, per dashboard with a real Superset (BENCH_SIZES, default pilot-year district-month)
	$(PY) -m bench.dashboards --sizes $(or $(BENCH_SIZES),pilot-year district-month)

bench-daily: setup ## the daily incremental pipeline run at 10, 50 and 200 sites and its growth exponent
	$(PY) -m bench.e2e --sizes $(or $(BENCH_SIZES),pilot-month district50-month district-month)

.PHONY: airflow backfill
airflow: setup ## a real Airflow 3 (standalone: LocalExecutor, SQLite, parallelism 4) on 127.0.0.1 with the DAGs and a demo simulator; prints URL and login
	@$(PY) -m pipeline.airflow_server

backfill: setup ## re-run START..END (YYYY-MM-DD) [SITES=a,b] [ALLOW_SHRINK=1] idempotently through the DAG code, then evaluate
	@test -n "$(START)" -a -n "$(END)" || { echo "usage: make backfill START=YYYY-MM-DD END=YYYY-MM-DD [SITES=a,b]"; exit 2; }
	@$(PY) -m pipeline.demo --backfill --start $(START) --end $(END) $(if $(SITES),--sites $(SITES)) $(if $(ALLOW_SHRINK),--allow-shrink)

test: setup ## run lint and the default test suite
	@echo "==> ruff"
	@$(VENV)/bin/ruff check .
	@echo "==> pytest (not slow)"
	@$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

test-slow: setup ## run the slow and scale tests too
	@$(PY) -m pytest $(PYTEST_ARGS)

lint: setup ## ruff on Python, dbt parse on SQL
	@echo "==> ruff check + format check"
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .

# --- Scale-out: the same models on Spark, the same DAGs on Celery (docs/scale-out.md) ----
# Never part of `make setup` / `make test` / `make demo`: pyspark is ~480 MB and the stack
# needs 2-4 GiB. Settings: deploy/cluster.env; state: .cluster/ (git-ignored).
SPARK_VENV := .venv-spark
.PHONY: scale-setup cluster-up cluster-down cluster-status test-scale bench-spark

$(STAMPS)/spark.ok: requirements/spark.lock.txt $(ENV_INPUTS) $(if $(wildcard $(SPARK_VENV)/bin/python),,FORCE)
	@$(ENVS) build spark

scale-setup: setup $(STAMPS)/spark.ok $(STAMPS)/system-scale ## the scale-out extras: .venv-spark (pyspark) and redis-server

cluster-up: scale-setup ## start Spark master+worker+Thrift, Redis, Airflow API/scheduler/DAG processor and 2 Celery workers on loopback
	@$(PY) -m deploy.cluster up

cluster-down: ## stop the local scale-out stack (keeps .cluster/)
	@$(PY) -m deploy.cluster down

cluster-status: ## which services of the local scale-out stack run
	@$(PY) -m deploy.cluster status

test-scale: scale-setup ## DuckDB-vs-Spark marts and the Celery two-worker pipeline (tests/scale, slow, ~4 GiB)
	@$(PY) -m pytest tests/scale -m slow $(PYTEST_ARGS)

bench-spark: scale-setup ## dbt build on Spark beside DuckDB, with peak memory (JVMs included)
	@$(PY) -m bench.spark $(BENCH_SPARK_ARGS)

clean: ## remove generated data and caches (keeps the environments)
	@echo "==> removing data/, landing/, warehouse/, caches"
	rm -rf data landing warehouse bench/results test-artifacts .pytest_cache .ruff_cache dbt_project/target dbt_project/logs

distclean: clean ## also remove both environments
	rm -rf $(VENV) $(SS_VENV) $(SPARK_VENV) $(STAMPS)
