"""Schemas are data (issue 13), end to end with the client libraries a site would use.

A site evolves the raw subject ``acme.clickstream.raw.events-value`` with Confluent's
Python client while ``clickstream up`` runs; ingest validates against the new version from
the next request, the processor decodes each record with its writer schema, and the new
fields become nullable columns of ``events`` that our SQL and delta-rs' own reader both see.
A version the subject's compatibility refuses changes nothing. On Kafka (librdkafka's mock
cluster), records a producer serialises with Confluent's ``AvroSerializer`` under v1 and v2,
interleaved, land exactly once.

Each test starts its own ``clickstream up`` (conftest's ``start_up``) in its own data dir.
"""

import copy
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext
from deltalake import DeltaTable

RAW_TOPIC = "acme.clickstream.raw.events"
SUBJECT = f"{RAW_TOPIC}-value"
RAW_SCHEMA_PATH = Path(__file__).resolve().parents[2] / "crates/event/schemas/acme.clickstream.raw.events.avsc"
# v1: the schema `up` registers at start (the bundled raw schema).
V1 = RAW_SCHEMA_PATH.read_text()

# What v2 adds to the `event` record: a nested record, an array, a map, an enum, a decimal,
# a timestamp-millis and a double, each optional so v2 stays backward compatible.
V2_FIELDS = [
    {"name": "price", "type": ["null", "double"], "default": None},
    {
        "name": "experiment",
        "type": [
            "null",
            {
                "type": "record",
                "name": "Experiment",
                "fields": [{"name": "name", "type": "string"}, {"name": "variant", "type": "int"}],
            },
        ],
        "default": None,
    },
    {"name": "cart", "type": ["null", {"type": "array", "items": "string"}], "default": None},
    {"name": "labels", "type": ["null", {"type": "map", "values": "string"}], "default": None},
    {"name": "tier", "type": ["null", {"type": "enum", "name": "Tier", "symbols": ["FREE", "PRO"]}], "default": None},
    {
        "name": "amount",
        "type": ["null", {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}],
        "default": None,
    },
    {"name": "placed_at", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}], "default": None},
]
NEW_COLUMNS = [field["name"] for field in V2_FIELDS]
PLACED_BASE = datetime(2024, 3, 1, 10, 0, tzinfo=timezone.utc)
# The app id of the `txn` action the processor writes per raw partition (crates/lake/src/txn.rs).
PROCESSOR_GROUP = "clickstream-processor"


def raw_with(fields: list) -> str:
    """The raw schema with ``fields`` appended to its `event` record."""
    schema = json.loads(V1)
    event = next(f for f in schema["fields"] if f["name"] == "event")
    event["type"]["fields"].extend(copy.deepcopy(fields))
    return json.dumps(schema)


V2 = raw_with(V2_FIELDS)
# v3: v2 with `price` a string. Under BACKWARD, v3 cannot read the doubles v2 wrote.
V3 = raw_with([{**f, "type": ["null", "string"]} if f["name"] == "price" else f for f in V2_FIELDS])


def event(event_id: int, extra: dict | None = None) -> dict:
    """A seed-shaped event with ``extra`` in its `event` record."""
    return {
        "id": event_id,
        "type": "purchase",
        "event": {
            "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/124.0",
            "ip": "203.0.113.7",
            "customer_id": 40 + event_id % 7,
            "timestamp": "2024-03-01T10:00:00.000000",
            "page": "/checkout",
            **(extra or {}),
        },
    }


def v2_values(event_id: int) -> dict:
    """The v2 fields of event ``event_id``, as Python values (what a reader should get)."""
    return {
        "price": event_id + 0.25,
        "experiment": {"name": "checkout-button", "variant": event_id % 2},
        "cart": ["sku-1", f"sku-{event_id}"],
        "labels": {"channel": "web", "event": str(event_id)},
        "tier": "PRO" if event_id % 2 else "FREE",
        "amount": Decimal(event_id * 100 + 34).scaleb(-2),
        "placed_at": PLACED_BASE + timedelta(milliseconds=event_id),
    }


def millis(at: datetime) -> int:
    return (at - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(milliseconds=1)


def as_posted(event_id: int) -> dict:
    """The v2 fields of event ``event_id`` as a tracking script sends them in JSON. Ingest
    takes a decimal as a string or a number and a timestamp as epoch millis or RFC 3339
    text; even ids use the first form, odd ids the second."""
    values = v2_values(event_id)
    even = event_id % 2 == 0
    placed = values["placed_at"]
    return {
        **values,
        "amount": str(values["amount"]) if even else float(values["amount"]),
        "placed_at": millis(placed) if even else placed.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }


# The new columns through /api/sql: decimals are cast to text, which keeps their digits.
NEW_COLUMNS_SQL = (
    "SELECT id, schema_id, price, experiment, cart, labels, tier, "
    "CAST(amount AS VARCHAR) AS amount, placed_at FROM events ORDER BY id"
)


def from_sql(row: dict) -> dict:
    """A row of NEW_COLUMNS_SQL's new columns as Python values, comparable to v2_values."""
    values = {name: row[name] for name in NEW_COLUMNS}
    if values["amount"] is not None:
        values["amount"] = Decimal(values["amount"])
    if values["placed_at"] is not None:
        values["placed_at"] = datetime.fromisoformat(values["placed_at"])
    return values


def from_arrow(row: dict) -> dict:
    """A row read by delta-rs as Python values, comparable to v2_values (pyarrow gives a
    map as a list of key/value pairs)."""
    values = {name: row[name] for name in NEW_COLUMNS}
    if values["labels"] is not None:
        values["labels"] = dict(values["labels"])
    return values


NULLS = dict.fromkeys(NEW_COLUMNS)


def register(up, schema: str) -> int:
    """Registers ``schema`` under the raw subject through Confluent's client."""
    with SchemaRegistryClient({"url": up.registry_url}) as registry:
        return registry.register_schema(SUBJECT, Schema(schema, "AVRO"))


def latest_id(up) -> int:
    with SchemaRegistryClient({"url": up.registry_url}) as registry:
        return registry.get_latest_version(SUBJECT).schema_id


V1_IDS = [1, 2, 3]
V2_IDS = [10, 11, 12, 13]
# Sent after v2 is registered, without the new fields: valid under v2, null there.
V1_SHAPED_IDS = [20]


def land_v1_then_v2(up) -> tuple[int, int]:
    """Posts v1 events, registers v2 through Confluent's client while `up` runs, posts v2
    events (and one without the new fields) without a restart, and waits until all are in
    `events`. Returns the ids of v1 and v2."""
    assert up.collect([event(i) for i in V1_IDS])["valid_count"] == len(V1_IDS)
    up.wait_for_count("SELECT count(*) AS n FROM events", len(V1_IDS))

    v1_id = latest_id(up)
    v2_id = register(up, V2)
    assert v2_id != v1_id

    answer = up.collect([event(i, as_posted(i)) for i in V2_IDS] + [event(i) for i in V1_SHAPED_IDS])
    assert (answer["valid_count"], answer["invalid_count"]) == (len(V2_IDS) + len(V1_SHAPED_IDS), 0), answer
    up.wait_for_count("SELECT count(*) AS n FROM events", len(V1_IDS) + len(V2_IDS) + len(V1_SHAPED_IDS))
    return v1_id, v2_id


def test_a_version_registered_while_running_lands_as_new_columns(start_up):
    """v2, registered with Confluent's client while `up` runs, applies from the next
    request: its events land with every new field in a column of its own, equal to what
    was sent (record → struct, array → list, map → map, enum → string, decimal →
    decimal(10,2), timestamp-millis → timestamp, double); rows written before, and a
    v2 event without the new fields, are null there."""
    up = start_up()
    v1_id, v2_id = land_v1_then_v2(up)
    assert up.readiness()["raw_schema"]["schema_id"] == v2_id

    rows = {row["id"]: row for row in up.sql(NEW_COLUMNS_SQL)}
    assert sorted(rows) == V1_IDS + V2_IDS + V1_SHAPED_IDS
    for event_id in V1_IDS:
        assert (rows[event_id]["schema_id"], from_sql(rows[event_id])) == (v1_id, NULLS)
    for event_id in V2_IDS:
        assert (rows[event_id]["schema_id"], from_sql(rows[event_id])) == (v2_id, v2_values(event_id))
    for event_id in V1_SHAPED_IDS:
        assert (rows[event_id]["schema_id"], from_sql(rows[event_id])) == (v2_id, NULLS)


def test_delta_rs_reads_the_evolved_events_table_as_sql_does(start_up):
    """delta-rs' Python reader opens the evolved `events` table from the lake directory:
    the new columns have the mapped Delta types and hold, row by row, what /api/sql
    returns and what was sent."""
    up = start_up()
    land_v1_then_v2(up)

    table = DeltaTable(str(up.lake / "events"))
    arrow = table.to_pyarrow_table(columns=["id", *NEW_COLUMNS])
    types = {name: arrow.schema.field(name).type for name in NEW_COLUMNS}
    assert types["price"] == pa.float64()
    assert types["experiment"] == pa.struct([("name", pa.string()), ("variant", pa.int64())])
    assert pa.types.is_list(types["cart"]) and types["cart"].value_type == pa.string()
    assert pa.types.is_map(types["labels"])
    assert (types["labels"].key_type, types["labels"].item_type) == (pa.string(), pa.string())
    assert types["tier"] == pa.string()
    assert types["amount"] == pa.decimal128(10, 2)
    assert types["placed_at"] == pa.timestamp("us", tz="UTC")

    by_delta_rs = {row["id"]: from_arrow(row) for row in arrow.to_pylist()}
    by_sql = {row["id"]: from_sql(row) for row in up.sql(NEW_COLUMNS_SQL)}
    assert by_delta_rs == by_sql
    assert {i: by_delta_rs[i] for i in V2_IDS} == {i: v2_values(i) for i in V2_IDS}
    assert all(by_delta_rs[i] == NULLS for i in V1_IDS + V1_SHAPED_IDS)


def test_an_incompatible_version_is_refused_and_ingest_keeps_the_one_in_force(start_up):
    """Under the default BACKWARD compatibility, v3 (`price` a string) is refused with a
    409 through Confluent's client; the subject and ingest stay on v2: a v2 event still
    validates and a v3-shaped event (`"price": "twelve"`) is rejected, naming the field."""
    up = start_up()
    v2_id = register(up, V2)

    with pytest.raises(SchemaRegistryError) as refused:
        register(up, V3)
    assert refused.value.http_status_code == 409, refused.value
    assert latest_id(up) == v2_id

    answer = up.collect([event(30, as_posted(30)), event(31, {"price": "twelve"})])
    assert (answer["valid_count"], answer["invalid_count"]) == (1, 1), answer
    # With the registry in the process, ingest takes a new version at the next request.
    assert up.readiness()["raw_schema"]["schema_id"] == v2_id
    up.wait_for_count("SELECT count(*) AS n FROM events", 1)
    up.wait_for_count("SELECT count(*) AS n FROM invalid_events", 1)
    assert up.sql("SELECT id, schema_id, price FROM events") == [{"id": 30, "schema_id": v2_id, "price": 30.25}]
    [rejected] = up.sql("SELECT event_id, reason FROM invalid_events")
    assert rejected["event_id"] == 31
    assert "field 'event.price'" in rejected["reason"], rejected


def test_a_v2_event_with_a_wrong_typed_new_field_lands_in_invalid_events(start_up):
    """A v2 event whose new `price` field is a string is not lost: it lands in
    `invalid_events` as sent, with a reason naming `event.price`; the valid event of the
    same request lands in `events`."""
    up = start_up()
    register(up, V2)
    wrong = event(41, {**as_posted(41), "price": "twelve"})

    answer = up.collect([event(40, as_posted(40)), wrong])
    assert (answer["valid_count"], answer["invalid_count"]) == (1, 1), answer
    up.wait_for_count("SELECT count(*) AS n FROM events", 1)
    up.wait_for_count("SELECT count(*) AS n FROM invalid_events", 1)
    assert up.sql("SELECT id FROM events") == [{"id": 40}]
    [rejected] = up.sql("SELECT event_id, reason, raw_json FROM invalid_events")
    assert rejected["event_id"] == 41
    assert "field 'event.price'" in rejected["reason"], rejected
    assert json.loads(rejected["raw_json"]) == wrong


KAFKA_V1_IDS = list(range(100, 140, 2))
KAFKA_V2_IDS = list(range(101, 140, 2))


def test_kafka_records_of_v1_and_v2_from_a_producer_land_exactly_once(mock_kafka, start_up):
    """On Kafka, a producer serialising with Confluent's AvroSerializer (explicit schema,
    no auto-registration: the id is looked up in `up`'s registry) writes v1 and v2 records,
    interleaved, straight to the raw topic. Each lands in `events` once, with its fields
    (v1 rows null in the new columns), and the table's position in every raw partition
    (its `txn` version) is that partition's end: nothing is left to read, so nothing can
    land twice later."""
    # `mock_kafka` comes first so it outlives `up`, which is stopped before it.
    up = start_up({"KAFKA_BOOTSTRAP_SERVERS": mock_kafka.bootstrap_servers})
    v1_id = latest_id(up)
    v2_id = register(up, V2)

    with SchemaRegistryClient({"url": up.registry_url}) as registry:
        no_registration = {"auto.register.schemas": False, "use.latest.version": False}
        serializers = {
            v1_id: AvroSerializer(registry, V1, conf=no_registration),
            v2_id: AvroSerializer(registry, V2, conf=no_registration),
        }
        # Keyed like ingest keys them (customer id), partitioned with Java's murmur2 as
        # ingest partitions.
        producer = Producer({"bootstrap.servers": mock_kafka.bootstrap_servers, "partitioner": "murmur2_random"})
        failures = []

        def delivered(error, _message):
            if error is not None:
                failures.append(error)

        context = SerializationContext(RAW_TOPIC, MessageField.VALUE)
        for event_id in sorted(KAFKA_V1_IDS + KAFKA_V2_IDS):
            schema_id = v2_id if event_id in KAFKA_V2_IDS else v1_id
            record = event(event_id, v2_values(event_id) if schema_id == v2_id else None)
            value = serializers[schema_id](record, context)
            assert int.from_bytes(value[1:5], "big") == schema_id
            producer.produce(
                RAW_TOPIC,
                key=str(record["event"]["customer_id"]).encode(),
                value=value,
                on_delivery=delivered,
            )
        assert producer.flush(30) == 0
        assert failures == []

    sent = len(KAFKA_V1_IDS) + len(KAFKA_V2_IDS)
    up.wait_for_count("SELECT count(*) AS n FROM events", sent)
    assert up.sql("SELECT id FROM events GROUP BY id HAVING count(*) > 1") == []
    assert up.sql("SELECT count(*) AS n FROM duplicates") == [{"n": 0}]
    rows = {row["id"]: row for row in up.sql(NEW_COLUMNS_SQL)}
    assert sorted(rows) == sorted(KAFKA_V1_IDS + KAFKA_V2_IDS)
    for event_id in KAFKA_V1_IDS:
        assert (rows[event_id]["schema_id"], from_sql(rows[event_id])) == (v1_id, NULLS)
    for event_id in KAFKA_V2_IDS:
        assert (rows[event_id]["schema_id"], from_sql(rows[event_id])) == (v2_id, v2_values(event_id))
    [spread] = up.sql("SELECT count(DISTINCT source_partition) AS n FROM events")
    assert spread["n"] > 1, "the records should span several raw partitions"

    admin = AdminClient({"bootstrap.servers": mock_kafka.bootstrap_servers})
    partitions = admin.list_topics(topic=RAW_TOPIC, timeout=10).topics[RAW_TOPIC].partitions
    ends = end_offsets(mock_kafka.bootstrap_servers, partitions)
    assert sum(ends.values()) == sent
    events = DeltaTable(str(up.lake / "events"))
    positions = {p: events.transaction_version(f"{PROCESSOR_GROUP}:{RAW_TOPIC}:{p}") or 0 for p in partitions}
    assert positions == ends


def end_offsets(bootstrap_servers: str, partitions) -> dict:
    """Each raw partition's end offset (high watermark)."""
    consumer = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": "test-end-offsets"})
    try:
        return {p: consumer.get_watermark_offsets(TopicPartition(RAW_TOPIC, p), timeout=10)[1] for p in partitions}
    finally:
        consumer.close()
