"""Apache Kafka 4.x, KRaft mode, one node that is both broker and controller.

Jars come from Maven Central through the pinned `deploy/kafka/pom.xml`
(`mvn dependency:copy-dependencies` into `<home>/libs`); storage is formatted
once with `kafka.tools.StorageTool` (a `meta.properties` marks it), and the
broker runs as `java -cp 'libs/*' kafka.Kafka server.properties`.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import uuid
from pathlib import Path

from minirec.infra.process import InfraError, Server, http_ok, require_binary
from minirec.settings import REPO_ROOT

POM = REPO_ROOT / "deploy" / "kafka" / "pom.xml"
LOG4J = REPO_ROOT / "deploy" / "kafka" / "log4j2.properties"
# JMX exporter rules: which MBeans become which Prometheus metrics (compose mounts the same file)
JMX_RULES = REPO_ROOT / "deploy" / "kafka" / "jmx-exporter.yml"
AGENT_JAR = "jmx_prometheus_javaagent.jar"


def agent_jar(libs: Path) -> Path:
    """The JMX exporter javaagent, kept in `libs/agent/` so it is not on the broker's classpath
    (`libs/*` does not descend into folders); the name has no version so compose can mount it."""
    return libs / "agent" / AGENT_JAR


def pom_version(pom: Path = POM) -> str:
    m = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom.read_text())
    if not m:
        raise InfraError(f"no <kafka.version> in {pom}")
    return m.group(1)


def resolve_jars(libs: Path) -> Path:
    """Resolve the broker jars with Maven into `libs` (skipped when already there)."""
    version = pom_version()
    # the marker is keyed by the pom's content, so editing the pom re-resolves
    digest = hashlib.sha256(POM.read_bytes()).hexdigest()[:12]
    marker = libs / f".resolved-{version}-{digest}"
    if marker.exists():
        return libs
    require_binary("mvn", "install Maven (`apt-get install -y maven`) or run `make setup`")
    require_binary("java", "install Java 17 (`apt-get install -y openjdk-17-jre-headless`)")
    if libs.exists():
        shutil.rmtree(libs)
    cmd = ["mvn", "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
           f"-DoutputDirectory={libs}", "-DincludeScope=runtime"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-10:])
        raise InfraError(f"Maven could not resolve Apache Kafka {version} from {POM}; "
                         f"check access to Maven Central:\n{tail}")
    agents = sorted(libs.glob("jmx_prometheus_javaagent-*.jar"))
    if len(agents) != 1:
        raise InfraError(f"expected one jmx_prometheus_javaagent jar from {POM} in {libs}, found {agents}")
    agent_jar(libs).parent.mkdir(exist_ok=True)
    agents[0].rename(agent_jar(libs))
    marker.write_text(version)
    return libs


def server_properties(host: str, port: int, controller_port: int, log_dir: Path,
                      partitions: int) -> str:
    """KRaft single-node config: one process is broker and controller (node 1)."""
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@{host}:{controller_port}",
            f"listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
            f"advertised.listeners=PLAINTEXT://{host}:{port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            f"log.dirs={log_dir}",
            f"num.partitions={partitions}",
            # one node: internal topics cannot be replicated
            "offsets.topic.replication.factor=1",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            # start consumer groups at once instead of waiting 3 s for more members
            "group.initial.rebalance.delay.ms=0",
            "num.network.threads=2",
            "num.io.threads=2",
            "log.retention.hours=168",
            "auto.create.topics.enable=false",
            "",
        ]
    )


def kafka_health(bootstrap: str) -> bool:
    """A metadata request with kafka-python: True when the broker answers."""
    from kafka import (
        KafkaConsumer,  # local import: kafka-python is not needed to import this module
    )

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=3000,
                             metadata_max_age_ms=1000)
    try:
        consumer.topics()  # forces a metadata round trip
        return True
    finally:
        consumer.close()


def kafka_topics(bootstrap: str) -> set[str]:
    """Names of the topics the broker knows."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        return set(consumer.topics())
    finally:
        consumer.close()


def create_topics(bootstrap: str, topics: list[str], partitions: int) -> list[str]:
    """Create missing topics; returns the names created."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        existing = set(admin.list_topics())
        new = [t for t in topics if t not in existing]
        if new:
            try:
                admin.create_topics([NewTopic(t, num_partitions=partitions, replication_factor=1) for t in new])
            except TopicAlreadyExistsError:
                pass
        return new
    finally:
        admin.close()


def kafka_server(home: Path, host: str, port: int, controller_port: int,
                 heap_mb: int = 384, partitions: int = 3, libs: Path | None = None,
                 jmx_exporter_port: int | None = None) -> Server:
    """A Server for a Kafka node whose config, data and log live under `home`.

    `libs` is the jar folder (default `<home>/libs`); tests share one resolved copy.
    `jmx_exporter_port`: serve broker metrics on host:port/metrics through the JMX exporter
    javaagent (None: no agent).
    """
    libs = libs or home / "libs"
    data = home / "data"
    config = home / "server.properties"
    classpath = f"{libs}/*"
    java_opts = [f"-Xms{heap_mb // 2}m", f"-Xmx{heap_mb}m", "-XX:+UseG1GC",
                 "-XX:ActiveProcessorCount=2", "-Djava.awt.headless=true",
                 f"-Dlog4j2.configurationFile={LOG4J}", f"-Dkafka.logs.dir={home}"]
    ports = [port, controller_port]
    if jmx_exporter_port is not None:
        # agent syntax (jmx_exporter 1.x): -javaagent:<jar>=[host:]port:<rules.yml>
        java_opts.append(f"-javaagent:{agent_jar(libs)}={host}:{jmx_exporter_port}:{JMX_RULES}")
        ports.append(jmx_exporter_port)

    def prepare() -> None:
        require_binary("java", "install Java 17 (`apt-get install -y openjdk-17-jre-headless`)")
        resolve_jars(libs)
        data.mkdir(parents=True, exist_ok=True)
        config.write_text(server_properties(host, port, controller_port, data, partitions))
        if not (data / "meta.properties").exists():
            cluster_id = _random_cluster_id()
            cmd = ["java", "-Xmx256m", f"-Dlog4j2.configurationFile={LOG4J}", "-cp", classpath,
                   "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise InfraError(f"Kafka storage format failed in {data}:\n{(proc.stdout + proc.stderr)[-2000:]}")

    return Server(
        name="kafka",
        argv=["java", *java_opts, "-cp", classpath, "kafka.Kafka", str(config)],
        host=host,
        ports=ports,
        state_dir=home,
        health=lambda: kafka_health(f"{host}:{port}") and (
            jmx_exporter_port is None or http_ok(f"http://{host}:{jmx_exporter_port}/metrics", 10)),
        hint="check that Java 17 is installed and the ports are free; delete the run folder's "
             "kafka/data to reformat storage",
        prepare=prepare,
        start_timeout_s=90.0,
    )


def _random_cluster_id() -> str:
    # Kafka cluster ids are 16 random bytes, base64url without padding (22 chars)
    import base64

    # an id that starts with "-" would be parsed as an option by StorageTool
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid
