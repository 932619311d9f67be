#!/usr/bin/env bash
# Install everything native mode needs, idempotently:
#   system packages (apt, as root): redis-server, prometheus, prometheus-alertmanager,
#     prometheus-redis-exporter, prometheus-node-exporter, Java 17, Maven,
#     chromium + chromium-driver (the explorer's browser test)
#   uv (from PyPI) and the project venv .venv from requirements.lock
#   Apache Kafka jars and the JMX exporter javaagent (Maven Central, pinned in deploy/kafka/pom.xml)
# Re-running it is cheap: each step checks before it installs.
set -euo pipefail
cd "$(dirname "$0")/../.."

UV_VERSION=0.13.9
APT_PKGS=(redis-server prometheus prometheus-alertmanager prometheus-redis-exporter prometheus-node-exporter
          openjdk-17-jre-headless maven chromium chromium-driver)

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v prometheus   >/dev/null || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null || missing+=(prometheus-alertmanager)
command -v prometheus-redis-exporter >/dev/null || missing+=(prometheus-redis-exporter)
command -v prometheus-node-exporter  >/dev/null || missing+=(prometheus-node-exporter)
# Java 17+ for the Kafka 4 broker and for Spark 4 (pyspark, OFFLINE_ENGINE=spark), which finds `java` on PATH
java_major() { java -version 2>&1 | awk -F'"' '/version/ {split($2, v, "."); print v[1]; exit}'; }
if ! command -v java >/dev/null || [ "$(java_major)" -lt 17 ] 2>/dev/null; then missing+=(openjdk-17-jre-headless); fi
command -v mvn          >/dev/null || missing+=(maven)
# headless browser for tests/explorer (Selenium is pointed at this driver; nothing is downloaded)
command -v chromium     >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    say "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "missing system packages: ${missing[*]}" >&2
    echo "fix: sudo apt-get install -y ${APT_PKGS[*]}" >&2
    exit 1
  fi
fi
if [ "$(java_major)" -lt 17 ] 2>/dev/null || ! command -v java >/dev/null; then
  echo "java on PATH is $(java -version 2>&1 | head -1); Kafka 4 and Spark 4 need 17+" >&2
  echo "fix: sudo update-alternatives --config java (pick 17+), or put a Java 17+ bin/ first on PATH" >&2
  exit 1
fi
# Debian's packages start their own daemons where an init system runs;
# native mode runs its own instances on the ports from .env instead.
for svc in redis-server prometheus prometheus-alertmanager prometheus-redis-exporter prometheus-node-exporter; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
    say "stopping the distribution's $svc service (native mode starts its own)"
    systemctl stop "$svc" || true
  fi
done

if ! command -v uv >/dev/null; then
  say "pip install uv==$UV_VERSION"
  python3 -m pip install -q "uv==$UV_VERSION"
fi
export UV_PYTHON_DOWNLOADS=never   # use this machine's Python 3.11, never download one
if [ ! -x .venv/bin/python ]; then
  say "creating .venv (Python 3.11)"
  uv venv -q .venv --python python3.11
fi
say "syncing .venv with requirements.lock (first run downloads ~3.5 GB: PyTorch's PyPI wheel brings CUDA libraries)"
VIRTUAL_ENV="$PWD/.venv" uv pip sync -q requirements.lock
VIRTUAL_ENV="$PWD/.venv" uv pip install -q --no-deps -e .

say "resolving Apache Kafka jars with Maven"
.venv/bin/python -m minirec.cli fetch-kafka
say "setup done"
