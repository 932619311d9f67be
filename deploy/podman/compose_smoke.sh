#!/usr/bin/env bash
# Really run docker-compose.yml without a Docker engine: podman + podman-compose.
#  1. a Debian bookworm base image made locally (debootstrap; no registry needed)
#  2. stand-in images for Kafka (Maven-resolved jars), Redis and Prometheus
#     (Debian packages), substituted through KAFKA_IMAGE / REDIS_IMAGE /
#     PROMETHEUS_IMAGE (whose defaults in .env stay the official images)
#  3. `podman-compose up` on free host ports, health checks from the host,
#     then `down -v`, and a check that no container, volume or network is left.
# Grafana is not started: it has no Debian package and its image cannot be pulled here.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
WORK=$ROOT/run/podman
PROJECT=${SMOKE_PROJECT:-minirec-smoke}
BASE_IMAGE=localhost/minirec-debian:bookworm
PY=$ROOT/.venv/bin/python
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
mkdir -p "$WORK"

need=()
for bin in podman runc debootstrap; do command -v $bin >/dev/null || need+=($bin); done
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || { echo "missing: ${need[*]}; fix: sudo apt-get install -y podman runc debootstrap" >&2; exit 1; }
  say "apt-get install podman runc debootstrap"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap >/dev/null
fi
export CONTAINERS_CONF=$ROOT/deploy/podman/containers.conf

if ! podman image exists "$BASE_IMAGE"; then
  # the Debian mirror this machine's apt already uses
  MIRROR=$(awk '/^URIs:/ && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$MIRROR" ] || MIRROR=$(awk '$1=="deb" && $3 ~ /bookworm$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$MIRROR" ] || { echo "no Debian mirror found in /etc/apt sources" >&2; exit 1; }
  say "debootstrap bookworm base image from $MIRROR"
  rm -rf "$WORK/rootfs"
  debootstrap --variant=minbase bookworm "$WORK/rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -20 "$WORK/debootstrap.log"; exit 1; }
  tar -C "$WORK/rootfs" -c . | podman import - "$BASE_IMAGE" >/dev/null
  rm -rf "$WORK/rootfs"
fi

say "resolving Kafka jars (Maven) for the Kafka image"
"$PY" -m minirec.cli fetch-kafka >/dev/null
CTX=$WORK/ctx-kafka
rm -rf "$CTX" && mkdir -p "$CTX/libs"
cp "$ROOT"/run/kafka-libs/*.jar "$CTX/libs/"
cp deploy/images/kafka/{Dockerfile,run.sh,kafka-topics.sh} "$CTX/"
cp deploy/kafka/log4j2.properties "$CTX/"

build() {  # name context
  say "podman build localhost/minirec-$1:smoke"
  podman build -q --network=host --build-arg BASE_IMAGE="$BASE_IMAGE" \
    -t "localhost/minirec-$1:smoke" "$2" >/dev/null
}
build kafka "$CTX"
build redis deploy/images/redis
build prometheus deploy/images/prometheus

export KAFKA_IMAGE=localhost/minirec-kafka:smoke
export REDIS_IMAGE=localhost/minirec-redis:smoke
export PROMETHEUS_IMAGE=localhost/minirec-prometheus:smoke
# free host ports, so the smoke run never collides with a running native stack
read -r KAFKA_PORT KAFKA_CONTROLLER_PORT REDIS_PORT PROMETHEUS_PORT < <("$PY" -c '
from minirec.infra.process import free_port
import socket
socks = []
for _ in range(4):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(*[s.getsockname()[1] for s in socks])')
export KAFKA_PORT KAFKA_CONTROLLER_PORT REDIS_PORT PROMETHEUS_PORT

COMPOSE=("$ROOT/.venv/bin/podman-compose" -p "$PROJECT" -f "$ROOT/docker-compose.yml")
cleanup() {
  say "podman-compose down -v"
  "${COMPOSE[@]}" down -v >"$WORK/down.log" 2>&1 || tail -5 "$WORK/down.log"
}
trap cleanup EXIT

say "podman-compose up (kafka, kafka-init, redis, prometheus) on ports kafka=$KAFKA_PORT redis=$REDIS_PORT prometheus=$PROMETHEUS_PORT"
"${COMPOSE[@]}" up -d kafka kafka-init redis prometheus >"$WORK/up.log" 2>&1 || { tail -20 "$WORK/up.log"; exit 1; }

say "health checks from the host"
if ! "$PY" -m minirec.cli probe --timeout 180 --topics --services kafka redis prometheus; then
  for c in kafka kafka-init redis prometheus; do
    echo "--- logs $c"; podman logs --tail 15 "${PROJECT}_${c}_1" 2>&1 || true
  done
  exit 1
fi

trap - EXIT
cleanup
left_c=$(podman ps -a --filter "label=io.podman.compose.project=$PROJECT" -q | wc -l)
left_n=$(podman network ls --format '{{.Name}}' | grep -c "^${PROJECT}_" || true)
left_v=$(podman volume ls --format '{{.Name}}' | grep -c "^${PROJECT}_" || true)
echo "left behind: containers=$left_c networks=$left_n volumes=$left_v"
[ "$left_c" -eq 0 ] && [ "$left_n" -eq 0 ] && [ "$left_v" -eq 0 ]
say "compose smoke passed"
