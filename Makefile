# minirec: a working miniature recommender system. `make` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY := .venv/bin/python
# compiled bytecode is cached in .venv (the environment here may say not to; imports are then 2-3x slower)
unexport PYTHONDONTWRITEBYTECODE
PYTEST_ARGS ?=

.PHONY: help setup data synth up down status demo test test-compose-full test-fast runbooks runbook-numbers airflow serve bench-serving bench-features compose-smoke compose-smoke-full lint clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "; printf "Usage: make <target>\n\n"} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-15s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: ## install system packages (apt), uv, the .venv from requirements.lock, Kafka jars (Maven)
	@bash deploy/local/setup.sh

data: setup ## fetch MovieLens-100K from the recbole wheel into data/ml-100k (idempotent)
	@$(PY) -m minirec.cli data

synth: setup ## write a synthetic dataset, e.g. make synth ARGS="--users 1000000 --items 100000"
	@$(PY) -m minirec.cli synth $(ARGS)

up: setup ## start Redis, Kafka (KRaft) and Prometheus natively on 127.0.0.1, wait until healthy
	@$(PY) -m minirec.cli up

down: ## stop the native services (data kept under run/)
	@if [ -x $(PY) ]; then $(PY) -m minirec.cli down; fi

status: ## show pid, ports and health of each native service; ARGS=--memory adds the RSS/PSS of every process the stack started
	@$(PY) -m minirec.cli status $(ARGS)

# simulated live traffic in `make demo`: at most DEMO_SIM_S seconds of the held-out period replayed
# DEMO_SPEEDUP times faster than it happened (25000: its 22 days in about 76 s)
DEMO_SIM_S ?= 90
DEMO_SPEEDUP ?= 25000
step = @printf '\033[1;32m==> demo: %s\033[0m\n' $(1)

demo: setup data stack ## the closed loop: setup, data, infrastructure, train (first time), every service, $(DEMO_SIM_S) s of simulated users, readout, summary; runs until `make down`
	$(call step,"simulator: $(DEMO_SIM_S) s of held-out users -> recommender (arm from the assignment service) -> clicks on Kafka")
	@$(PY) -m services.simulator --duration-s $(DEMO_SIM_S) --speedup $(DEMO_SPEEDUP)
	$(call step,"A/B readout of ranker_v1 from the lake (the stream processor's last batch lands first)")
	@sleep 3; $(PY) -m minirec.ab report ranker_v1 || echo "  (no readout yet: run \`make ab-report EXP=ranker_v1\` after more traffic)"
	$(call step,"summary: the stack keeps running until \`make down\`")
	@$(PY) -m minirec.cli summary

test: setup data ## run every test (unit, real services, runbooks, compose smoke) — what CI runs; the full compose smoke is `make test-compose-full`
	@$(PY) -m pytest -m "not compose_full" $(PYTEST_ARGS)

test-compose-full: setup ## the test around `make compose-smoke-full` (the whole compose file under podman; minutes, so not in `make test`)
	@$(PY) -m pytest -m compose_full tests/smoke/test_compose_smoke_full.py $(PYTEST_ARGS)

test-fast: ## unit tests only (no servers, no runbooks)
	@$(PY) -m pytest tests -m "not infra and not smoke and not slow" $(PYTEST_ARGS)

runbooks: ## execute every python block of every runbook, then the gate (structure, sources of stack numbers, drills)
	@$(PY) -m pytest runbooks tests/runbooks $(PYTEST_ARGS)

runbook-numbers: ## every stack number in the runbooks and README vs the latest artifact (lists missing artifacts and the target that writes each; ARGS="--strict" fails on them)
	@$(PY) -m minirec.docs numbers $(ARGS)

airflow: setup ## Airflow UI natively (`airflow standalone` on SQLite, 127.0.0.1:AIRFLOW_PORT); Ctrl-C stops it
	@bash deploy/local/airflow.sh

serve: setup ## run the BentoML recommender on 127.0.0.1:RECOMMENDER_PORT (needs `make up` and `make train`)
	@$(PY) -m services.recommender

bench-serving: setup ## Locust + an open-loop client against batching on (and on with the default GC), batching off and the BentoML floor in one run -> artifacts/bench/
	@$(PY) loadtests/bench_serving.py $(ARGS)

bench-features: setup ## Feast get_online_features vs the service's reader vs one raw Redis round trip -> artifacts/bench/features.json
	@$(PY) loadtests/bench_features.py $(ARGS)

compose-smoke: ## really run docker-compose.yml's infrastructure under podman with locally built images (COMPOSE_SMOKE_FULL=1: the whole file, see compose-smoke-full)
	@bash deploy/podman/compose_smoke.sh

compose-smoke-full: ## the whole docker-compose.yml under podman (Grafana aside): model-init trains, then recommend, assign, a click reaching Redis, Airflow healthy, checked from the host (about 7-8 min; not in CI)
	@COMPOSE_SMOKE_FULL=1 bash deploy/podman/compose_smoke.sh

lint: ## ruff
	@$(PY) -m ruff check minirec tests services pipelines feature_repo monitoring loadtests

clean: down ## stop services and delete run/ (data/ and artifacts/ are kept)
	rm -rf run

## --- stream processor ---
.PHONY: stack stream bench-stream explorer

stack: up ## infrastructure plus the stream processor, the recommender, the assignment service, the drift monitor and the explorer page in the background (trains first when no Feast registry exists); `make down` stops all
	@[ -f "$$($(PY) -c 'from minirec.settings import get_settings as g; print(g().feature_repo_path)')/data/registry.db" ] \
		|| $(MAKE) --no-print-directory train
	@$(PY) -m minirec.cli up-apps

explorer: setup ## the explorer page in the foreground on 127.0.0.1:EXPLORER_PORT (`make stack` runs it in the background)
	@$(PY) -m services.explorer $(ARGS)

stream: setup ## the Kafka stream processor in the foreground: interactions -> Feast online + seen-sets, all events -> data/lake (needs `make up`)
	@$(PY) -m services.stream $(ARGS)

bench-stream: setup ## stream processor events/s vs a bare consumer, freshness p50/p99 at 1,000 events/s, lost/duplicated -> artifacts/bench/stream.json
	@$(PY) loadtests/bench_stream.py $(ARGS)

## --- training ---
.PHONY: train quality-seeds feast-apply promote models mlflow

train: data up ## train the two-tower natively (no Airflow): features, Feast, train, evaluate, gate, FAISS, register, materialise, seen-sets, promote; results in artifacts/latest
	@$(PY) -m minirec.pipeline run $(ARGS)

quality-seeds: data ## the served model (retrieval + ranker) on the test split for seeds 0 1 2: NDCG@10 all/warm/cold, bootstrap CI, Recall@100, coverage, novelty (no service needed)
	@$(PY) -m minirec.pipeline.seeds $(ARGS)

feast-apply: ## `feast apply` the repo in feature_repo/ with the .env values (offline tables come from `make train`)
	@set -a && . ./.env && set +a && cd feature_repo && ../.venv/bin/feast apply

promote: ## make a registered model production, recorded with who and why, e.g. make promote TAG=two_tower:<run id> REASON="A/B won"
	@$(PY) -m minirec.pipeline promote $(TAG) --reason "$(or $(REASON),manual promotion)"

models: ## list the two-tower models in the BentoML registry with stage, validation NDCG@10 and content identity; the stage log follows
	@$(PY) -m minirec.pipeline models
	@$(PY) -m minirec.pipeline history

mlflow: setup ## MLflow UI over every tracked training run (params, per-epoch metrics, results, plots) on 127.0.0.1:MLFLOW_PORT, in the foreground; Ctrl-C stops it
	@$(PY) -m minirec.pipeline mlflow

## --- event streaming ---
.PHONY: simulate

simulate: ## replay MovieLens' held-out period as live users against the recommender -> Kafka interactions, e.g. make simulate ARGS="--users 500 --speedup 3600" (--help lists the flags)
	@$(PY) -m services.simulator $(ARGS)

## --- A/B testing ---
.PHONY: assignment ab-report ab-validate bench-assignment

assignment: setup ## the A/B assignment service in the foreground on 127.0.0.1:ASSIGNMENT_PORT (`make stack` runs it in the background)
	@$(PY) -m services.assignment $(ARGS)

ab-report: setup ## readout of an experiment from the lake, e.g. make ab-report EXP=ranker_v1 -> artifacts/ab/<EXP>/report.{md,png,json}
	@[ -n "$(EXP)" ] || { echo "usage: make ab-report EXP=<experiment> (see services/assignment/experiments.yaml)"; exit 2; }
	@$(PY) -m minirec.ab report $(EXP) $(ARGS)

ab-validate: setup ## simulation studies of the readout statistics (A/A, peeking, power, CUPED, delta, SRM) -> artifacts/ab/validation.json
	@$(PY) -m minirec.ab validate $(ARGS)

bench-assignment: setup ## assignment service vs a bare ASGI endpoint on the same uvicorn: saturation rps, p99 at a fixed rate -> artifacts/bench/assignment.json
	@$(PY) loadtests/bench_assignment.py $(ARGS)

## --- drift monitor (monitoring/drift) ---
.PHONY: drift drift-once drift-eval drift-ui bench-drift

drift: setup ## the drift monitor loop: closed lake windows vs the training reference (Evidently), /metrics + Alertmanager webhook on DRIFT_METRICS_PORT
	@$(PY) -m monitoring.drift loop $(ARGS)

drift-once: setup ## compare the closed windows not handled yet and print one JSON line each (ARGS="--lateness 0" reads a window as soon as it ends)
	@$(PY) -m monitoring.drift once $(ARGS)

drift-eval: setup data ## no-drift false-alarm rate and detection delay per simulator scenario -> artifacts/drift/eval.json
	@$(PY) -m monitoring.drift eval $(ARGS)

drift-ui: setup ## Evidently UI over the drift workspace on 127.0.0.1:DRIFT_UI_PORT (DO_NOT_TRACK=1)
	@$(PY) -m monitoring.drift ui

bench-drift: setup data ## seconds per drift window vs window size (1k, 10k, 100k rows) and the share inside Evidently -> artifacts/bench/drift.{json,png}
	@$(PY) loadtests/bench_drift.py $(ARGS)

## --- scale curves ---
.PHONY: bench-scale

bench-scale: setup ## cost curves over data size: ANN exact/HNSW/IVF-PQ at 10k-1M items, stream 1-3 processes, online store (Feast vs packed) at 10k-1M users, training epoch at 100k-10M interactions -> artifacts/bench/scale.json + PNGs (an hour; ARGS="--quick" for tiny sizes, ARGS="--curves online,train" for some)
	@nice -n 5 $(PY) loadtests/bench_scale.py $(ARGS)

## --- Kubernetes manifests ---
.PHONY: k8s-validate

k8s-validate: ## render deploy/k8s (base + each overlay's patches) and validate every manifest offline against the Kubernetes schemas (kubernetes-validate)
	@$(PY) -m minirec.k8s $(ARGS)
