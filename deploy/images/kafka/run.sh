#!/bin/sh
# KAFKA_FOO_BAR=v -> foo.bar=v (official image convention: _ -> ., __ -> _, ___ -> -)
set -eu
CONF=/opt/kafka/config/server.properties
: > "$CONF"
env | grep '^KAFKA_' | grep -vE '^KAFKA_(HEAP_OPTS|OPTS|JVM_PERFORMANCE_OPTS|LOG4J_OPTS)=' | while IFS='=' read -r name value; do
  key=$(printf '%s' "${name#KAFKA_}" | sed -e 's/___/-/g' -e 's/__/@/g' -e 's/_/./g' -e 's/@/_/g' | tr 'A-Z' 'a-z')
  printf '%s=%s\n' "$key" "$value" >> "$CONF"
done
grep -q '^log.dirs=' "$CONF" || echo "log.dirs=/var/lib/kafka/data" >> "$CONF"
LOGDIR=$(sed -n 's/^log.dirs=//p' "$CONF")
CP="/opt/kafka/libs/*"
LOG="-Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties"
if [ ! -f "$LOGDIR/meta.properties" ]; then
  java -Xmx256m $LOG -cp "$CP" kafka.tools.StorageTool format -t "${CLUSTER_ID:?set CLUSTER_ID}" -c "$CONF"
fi
# KAFKA_OPTS as in the official image: extra JVM flags (compose: the JMX exporter javaagent)
# shellcheck disable=SC2086
exec java ${KAFKA_HEAP_OPTS:--Xmx384m} ${KAFKA_OPTS:-} $LOG -cp "$CP" kafka.Kafka "$CONF"
