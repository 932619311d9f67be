#!/usr/bin/env bash
# Native Airflow for exploring the DAG in the UI: `airflow standalone`
# (SQLite metadata DB, LocalExecutor) with state under run/airflow, bound to
# 127.0.0.1:$AIRFLOW_PORT from .env. Ctrl-C stops it cleanly (SIGINT).
# The admin password is printed at start and kept in
# run/airflow/simple_auth_manager_passwords.json.generated.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
PORT=$(.venv/bin/python -c 'from minirec.settings import get_settings; print(get_settings().airflow_port)')
export PATH="$ROOT/.venv/bin:$PATH"           # standalone spawns `airflow` subprocesses
export AIRFLOW_HOME="$ROOT/run/airflow"
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/pipelines/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__PARALLELISM=4           # default 32 spawns ~30 workers of ~130 MB
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__PORT="$PORT"
mkdir -p "$AIRFLOW_HOME"
echo "Airflow UI on http://127.0.0.1:$PORT (user admin; password in $AIRFLOW_HOME/simple_auth_manager_passwords.json.generated)"
exec airflow standalone
