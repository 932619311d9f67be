"""The point-in-time join on Spark: same rows as `store.point_in_time_join`, computed by PySpark.

The rule (shared with the pandas engine through `store.view_sources`): for
each entity row and each view of the service, the latest feature row of the
same key with `event_timestamp <= entity event_timestamp`, and within the
view's TTL when one is set; among feature rows of one key at the same
timestamp, the last in file order; no such row -> null features.

How (per view, no key-by-key cross join): the entity rows and the feature
rows are put in one frame, partitioned by the join key and ordered by
(time, feature rows before entity rows, file position); for an entity row,
the last non-null feature struct at or above it is its as-of match. Cost:
one shuffle and one sort per view, O(n log n) instead of O(entities x rows
per key). Times are compared as integer microseconds since the epoch (UTC),
so no session time zone can shift them; the pandas engine also works in µs.

Where it runs is one setting: SPARK_MASTER (default `local[2]`, threads in
this process's JVM); `spark://host:7077` submits to a standalone cluster.
The plan uses no Python UDFs, so executors need only a JVM; they must be
able to read the feature parquet files at the paths the registry gives.
The session starts on first use (a JVM start takes ~5-10 s here), and
`stop()` (also registered at exit) shuts it down.
"""

from __future__ import annotations

import atexit
import os
import threading
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from minirec.features.store import FeatureStoreError, ViewSource, view_sources

if TYPE_CHECKING:
    from feast import FeatureStore
    from pyspark.sql import DataFrame, SparkSession

LOCAL_SHUFFLE_PARTITIONS = 4  # local mode: a few cores, small data; Spark's default 200 is pure overhead
_lock = threading.Lock()
_session: SparkSession | None = None
_at_exit = False


def session(master: str | None = None) -> SparkSession:
    """The process's SparkSession, created on first call (master: argument, else SPARK_MASTER)."""
    global _session, _at_exit
    with _lock:
        if _session is not None:
            return _session
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:
            raise FeatureStoreError("OFFLINE_ENGINE=spark needs pyspark (extra `spark`): run `make setup`") from exc
        from minirec.settings import get_settings

        master = master or get_settings().spark_master
        local = master.startswith("local")
        b = (SparkSession.builder.master(master).appName("minirec-offline-features")
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.sql.execution.arrow.pyspark.enabled", "true")  # toPandas/createDataFrame via Arrow
             .config("spark.log.level", "ERROR")
             .config("spark.ui.showConsoleProgress", "false"))
        if local:
            # bind to loopback without the "hostname resolves to a loopback address" warning
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
            b = (b.config("spark.sql.shuffle.partitions", str(LOCAL_SHUFFLE_PARTITIONS))
                 .config("spark.ui.enabled", "false")
                 .config("spark.driver.host", "127.0.0.1")
                 .config("spark.driver.bindAddress", "127.0.0.1"))
        try:
            _session = b.getOrCreate()
        except Exception as exc:  # no Java, wrong Java, unreachable master
            raise FeatureStoreError(f"cannot start Spark on {master!r} ({type(exc).__name__}: {exc}); "
                                    "Spark 4 needs Java 17+ (`make setup` installs it) and a reachable "
                                    "SPARK_MASTER") from exc
        if not _at_exit:  # once per process, however often the session is restarted
            atexit.register(stop)
            _at_exit = True
        return _session


def stop() -> None:
    """Stop the session if one runs (frees the JVM's memory); the next join starts a new one."""
    global _session
    with _lock:
        if _session is not None:
            _session.stop()
            _session = None


def _features(spark: SparkSession, view: ViewSource) -> DataFrame:
    """The view's parquet as (key, _t µs, _ord file position, feature columns)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import TimestampNTZType, TimestampType

    table = spark.read.parquet(view.path)
    missing = [c for c in (view.key, view.timestamp_field, *view.features) if c not in table.columns]
    if missing:
        raise FeatureStoreError(f"feature view {view.name}: {view.path} lacks columns {missing}")
    if table.isEmpty():
        raise FeatureStoreError(f"feature view {view.name} has no rows ({view.path}); rebuild the feature tables")
    ts_type = table.schema[view.timestamp_field].dataType
    if not isinstance(ts_type, TimestampType | TimestampNTZType):
        raise FeatureStoreError(f"feature view {view.name}: {view.timestamp_field} is {ts_type.simpleString()}, "
                                "not a timestamp; rebuild the feature tables")
    # one file read in order: monotonically_increasing_id grows with the file position
    # (partition index in the high bits), which breaks ties at equal timestamps like merge_asof
    return table.select(F.col(view.key), F.unix_micros(F.col(view.timestamp_field).cast("timestamp")).alias("_t"),
                        F.monotonically_increasing_id().alias("_ord"), *view.features)


def _as_of(entities: DataFrame, feats: DataFrame, view: ViewSource) -> DataFrame:
    """entities (_row, key, _t) -> (_row, *features) with the as-of rule and the TTL applied."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    names = list(view.features)
    value = F.struct(F.col("_t").alias("_ft"), *names)
    rows = (feats.select(view.key, "_t", F.lit(0).alias("_side"), "_ord", F.lit(None).cast("long").alias("_row"),
                         value.alias("_v"))
            .unionByName(entities.select(view.key, "_t", F.lit(1).alias("_side"), F.lit(None).cast("long")
                                         .alias("_ord"), "_row", F.lit(None).cast(_value_type(feats, names))
                                         .alias("_v"))))
    # at equal times feature rows sort before entity rows (<= is inclusive), and by file position
    w = (Window.partitionBy(view.key).orderBy("_t", "_side", "_ord")
         .rowsBetween(Window.unboundedPreceding, Window.currentRow))
    hit = rows.withColumn("_m", F.last("_v", ignorenulls=True).over(w)).where(F.col("_side") == 1)
    keep = F.lit(True)
    if view.ttl is not None:
        ttl_us = int(view.ttl / pd.Timedelta(microseconds=1))
        keep = F.col("_m._ft") >= F.col("_t") - F.lit(ttl_us)
    return hit.select("_row", *[F.when(keep, F.col(f"_m.{n}")).alias(n) for n in names])


def _value_type(feats: DataFrame, names: list[str]):
    """Spark type of the struct (_ft, *names) carried through the window (entity rows hold null)."""
    from pyspark.sql.types import LongType, StructField, StructType

    return StructType([StructField("_ft", LongType()), *[feats.schema[n] for n in names]])


def point_in_time_join_spark(store: FeatureStore, entity_df: pd.DataFrame, service: str,
                             master: str | None = None) -> pd.DataFrame:
    """`store.point_in_time_join` on Spark: entity_df (key, event_timestamp) -> plus the service's features.

    Rows come back in entity_df order, entity columns first and then each
    view's features in the service's order; pandas dtypes are what Spark's
    Arrow conversion gives (int64, or float64 when a column has nulls;
    float32; object for strings and lists), missing values are None/NaN.
    """
    spark = session(master)
    out = entity_df.reset_index(drop=True).copy()
    out["event_timestamp"] = pd.to_datetime(out["event_timestamp"], utc=True)
    micros = out["event_timestamp"].astype("datetime64[us, UTC]").astype("int64")  # µs since the epoch
    for view in view_sources(store, service):
        ent = pd.DataFrame({"_row": np.arange(len(out), dtype=np.int64),
                            view.key: out[view.key].astype("int64").values, "_t": micros.values})
        feats = _features(spark, view)
        got = _as_of(spark.createDataFrame(ent), feats, view).toPandas()
        if len(got) != len(out):  # every entity row comes back exactly once
            raise FeatureStoreError(f"spark join of view {view.name} returned {len(got)} rows for {len(out)}")
        got = got.set_index("_row").reindex(np.arange(len(out)))
        for name in view.features:
            out[name] = got[name].values
    return out
