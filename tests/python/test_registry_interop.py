"""Interop: Confluent's own Python client (confluent_kafka.schema_registry) against our registry,
schema references included.

The server is started from the binary in CLICKSTREAM_BIN as
``$CLICKSTREAM_BIN --data-dir <tmp> registry --port <free port>`` (the ``clickstream`` CLI, or
``crates/registry``'s ``serve`` example, which accepts the same arguments).

Run: CLICKSTREAM_BIN=/path/to/clickstream python -m pytest tests/python/test_registry_interop.py
"""

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import Schema, SchemaReference, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.schema_registry_client import ConfigCompatibilityLevel, ServerConfig
from confluent_kafka.serialization import MessageField, SerializationContext
from fastavro.schema import parse_schema, to_parsing_canonical_form

REPO = Path(__file__).resolve().parents[2]
# The seed schemas as bundled in the binary (copied from the seed, see crates/event/schemas).
SCHEMAS = REPO / "crates" / "event" / "schemas"
RAW_SCHEMA_PATH = SCHEMAS / "acme.clickstream.raw.events.avsc"
READY_TIMEOUT_S = 30


def canonical(schema_text: str) -> str:
    return to_parsing_canonical_form(parse_schema(json.loads(schema_text)))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"registry exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/subjects", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    pytest.fail(f"registry not ready after {READY_TIMEOUT_S}s:\n{log_path.read_text()}")


@pytest.fixture(scope="module")
def registry_url(tmp_path_factory):
    binary = os.environ.get("CLICKSTREAM_BIN")
    if not binary:
        pytest.fail("CLICKSTREAM_BIN must name the clickstream binary (or the registry's serve example)")
    data_dir = tmp_path_factory.mktemp("registry-data")
    log_path = data_dir / "registry.log"
    port = free_port()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [binary, "--data-dir", str(data_dir), "registry", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process, log_path)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture()
def client(registry_url):
    with SchemaRegistryClient({"url": registry_url}) as sr:
        yield sr


@pytest.fixture()
def subject():
    """A fresh subject per test, so tests do not depend on each other."""
    return f"interop-{uuid.uuid4().hex[:8]}-value"


@pytest.fixture(scope="module")
def raw_schema() -> str:
    return RAW_SCHEMA_PATH.read_text()


def record(fields: list) -> Schema:
    return Schema(json.dumps({"type": "record", "name": "R", "namespace": "interop", "fields": fields}), "AVRO")


A = {"name": "a", "type": "long"}
B = {"name": "b", "type": "string"}
B_DEFAULT = {"name": "b", "type": "string", "default": ""}


def test_register_twice_returns_the_same_id_and_one_version(client, subject, raw_schema):
    schema_id = client.register_schema(subject, Schema(raw_schema, "AVRO"))
    assert isinstance(schema_id, int) and schema_id > 0
    client.clear_caches()
    assert client.register_schema(subject, Schema(raw_schema, "AVRO")) == schema_id
    assert client.get_versions(subject) == [1]


def test_lookup_get_schema_and_versions(client, subject, raw_schema):
    schema_id = client.register_schema(subject, Schema(raw_schema, "AVRO"))
    client.clear_caches()

    found = client.lookup_schema(subject, Schema(raw_schema, "AVRO"))
    assert (found.subject, found.version, found.schema_id) == (subject, 1, schema_id)

    fetched = client.get_schema(schema_id)
    assert fetched.schema_type == "AVRO"
    assert canonical(fetched.schema_str) == canonical(raw_schema)

    latest = client.get_latest_version(subject)
    assert (latest.subject, latest.version, latest.schema_id) == (subject, 1, schema_id)
    assert canonical(latest.schema.schema_str) == canonical(raw_schema)

    version = client.get_version(subject, 1)
    assert version.schema_id == schema_id
    assert subject in client.get_subjects()
    assert [(v.subject, v.version) for v in client.get_schema_versions(schema_id) if v.subject == subject] == [(subject, 1)]


def test_same_schema_in_another_subject_reuses_the_id(client, subject, raw_schema):
    first = client.register_schema(subject, Schema(raw_schema, "AVRO"))
    other = subject.replace("-value", "-copy-value")
    assert client.register_schema(other, Schema(raw_schema, "AVRO")) == first
    assert client.get_latest_version(other).version == 1


def test_config_round_trips(client, subject):
    client.register_schema(subject, record([A]))
    assert client.set_config(subject, ServerConfig(compatibility=ConfigCompatibilityLevel.FULL)) == {"compatibility": "FULL"}
    assert client.get_config(subject).compatibility_level.value == "FULL"
    assert client.set_compatibility(subject, "backward_transitive") == {"compatibility": "BACKWARD_TRANSITIVE"}
    assert client.get_compatibility(subject) == "BACKWARD_TRANSITIVE"
    assert client.get_compatibility() == "BACKWARD"
    deleted = client.delete_config(subject)
    assert deleted.compatibility_level.value == "BACKWARD_TRANSITIVE"
    with pytest.raises(SchemaRegistryError) as err:
        client.get_config(subject)
    assert err.value.error_code == 40408


def test_test_compatibility_tells_compatible_from_incompatible(client, subject):
    client.register_schema(subject, record([A]))
    assert client.test_compatibility(subject, record([A, B_DEFAULT])) is True
    assert client.test_compatibility(subject, record([A, B])) is False
    assert client.test_compatibility(subject, record([A, B]), version=1, verbose=True) is False
    assert client.test_compatibility_all_versions(subject, record([A, B_DEFAULT])) is True


def test_incompatible_registration_raises_409_naming_the_field(client, subject):
    client.register_schema(subject, record([A]))
    with pytest.raises(SchemaRegistryError) as err:
        client.register_schema(subject, record([A, B]))
    assert err.value.http_status_code == 409
    assert err.value.error_code == 409
    assert "'b'" in err.value.error_message


def test_errors_carry_confluent_codes(client, subject):
    with pytest.raises(SchemaRegistryError) as err:
        client.get_latest_version(subject)
    assert (err.value.http_status_code, err.value.error_code) == (404, 40401)
    assert err.value.error_message == f"Subject '{subject}' not found."
    with pytest.raises(SchemaRegistryError) as err:
        client.get_schema(2_000_000_000)
    assert (err.value.http_status_code, err.value.error_code) == (404, 40403)
    assert err.value.error_message == "Schema 2000000000 not found"
    client.register_schema(subject, record([A]))
    with pytest.raises(SchemaRegistryError) as err:
        client.get_version(subject, 7)
    assert (err.value.http_status_code, err.value.error_code) == (404, 40402)
    assert err.value.error_message == "Version 7 not found."
    with pytest.raises(SchemaRegistryError) as err:
        client.register_schema(subject, Schema('{"type": "recrd"}', "AVRO"))
    assert (err.value.http_status_code, err.value.error_code) == (422, 42201)


def test_properties_on_primitives_are_part_of_the_schema(client, subject):
    plain = client.register_schema(subject, Schema('"string"', "AVRO"))
    tagged = Schema('{"type": "string", "logicalType": "x", "foo": "bar"}', "AVRO")
    tagged_id = client.register_schema(subject + "-tagged", tagged)
    assert tagged_id != plain
    served = json.loads(client.get_schema(tagged_id).schema_str)
    assert served == {"type": "string", "logicalType": "x", "foo": "bar"}
    assert client.lookup_schema(subject + "-tagged", tagged).schema_id == tagged_id


def test_delete_subject_soft_then_permanent(client, subject):
    client.register_schema(subject, record([A]))
    client.register_schema(subject, record([A, B_DEFAULT]))
    assert client.delete_subject(subject) == [1, 2]
    assert subject not in client.get_subjects()
    assert subject in client.get_subjects(deleted=True)
    assert client.delete_subject(subject, permanent=True) == [1, 2]
    assert subject not in client.get_subjects(deleted=True)


def test_delete_version(client, subject):
    client.register_schema(subject, record([A]))
    client.register_schema(subject, record([A, B_DEFAULT]))
    assert client.delete_version(subject, 2) == 2
    assert client.get_versions(subject) == [1]
    assert client.delete_version(subject, 2, permanent=True) == 2


def test_avro_serializer_round_trip_uses_the_wire_format(registry_url, client, raw_schema):
    topic = f"interop-{uuid.uuid4().hex[:8]}"
    serializer = AvroSerializer(client, raw_schema)
    deserializer = AvroDeserializer(client)
    event = {
        "id": 367858,
        "type": "placed_order",
        "package_id": None,
        "event": {
            "user_agent": "Opera/9.49",
            "ip": "134.147.148.171",
            "customer_id": 1404,
            "timestamp": "2022-05-25T05:41:33.648681",
            "page": None,
            "query": None,
            "product": None,
            "referrer": None,
            "position": None,
        },
    }
    context = SerializationContext(topic, MessageField.VALUE)
    data = serializer(event, context)
    assert data[0] == 0
    schema_id = int.from_bytes(data[1:5], "big")
    assert client.get_latest_version(f"{topic}-value").schema_id == schema_id
    with SchemaRegistryClient({"url": registry_url}) as fresh:
        assert AvroDeserializer(fresh)(data, context) == event
    assert deserializer(data, context) == event


# Schema references: a shared Context record, registered once, used by an event schema.
CONTEXT = {
    "type": "record",
    "name": "Context",
    "namespace": "interop",
    "fields": [{"name": "user_agent", "type": "string"}, {"name": "ip", "type": "string"}],
}
# CONTEXT without user_agent: a new reader can read old data (backward), not the reverse.
CONTEXT_WITHOUT_USER_AGENT = {**CONTEXT, "fields": [{"name": "ip", "type": "string"}]}
PAGE_VIEW = {
    "type": "record",
    "name": "PageView",
    "namespace": "interop",
    "fields": [{"name": "url", "type": "string"}, {"name": "context", "type": "interop.Context"}],
}


def page_view(context_subject: str, version: int) -> Schema:
    return Schema(json.dumps(PAGE_VIEW), "AVRO", references=[SchemaReference("interop.Context", context_subject, version)])


def test_schema_references_register_fetch_and_protect_the_referenced_version(registry_url, client, subject):
    context_subject = subject.replace("-value", "-context-value")
    context_id = client.register_schema(context_subject, Schema(json.dumps(CONTEXT), "AVRO"))
    schema_id = client.register_schema(subject, page_view(context_subject, 1))
    assert schema_id != context_id

    with SchemaRegistryClient({"url": registry_url}) as fresh:
        fetched = fresh.get_schema(schema_id)
        assert [(r.name, r.subject, r.version) for r in fetched.references] == [("interop.Context", context_subject, 1)]
        assert "user_agent" not in fetched.schema_str, "the referenced type is named, not inlined"
        assert fresh.get_schema(context_id).references in (None, [])
        version = fresh.get_version(subject, 1)
        assert version.schema_id == schema_id
        assert [(r.subject, r.version) for r in version.schema.references] == [(context_subject, 1)]
        assert fresh.get_referenced_by(context_subject, 1) == [schema_id]
        assert fresh.lookup_schema(subject, page_view(context_subject, 1)).version == 1
        assert fresh.register_schema(subject, page_view(context_subject, 1)) == schema_id
        assert fresh.get_versions(subject) == [1]

        with pytest.raises(SchemaRegistryError) as err:
            fresh.delete_version(context_subject, 1)
        assert (err.value.http_status_code, err.value.error_code) == (422, 42206)
        assert err.value.error_message == (
            f"One or more references exist to the schema {{magic=1,keytype=SCHEMA,subject={context_subject},version=1}}."
        )
        with pytest.raises(SchemaRegistryError) as err:
            fresh.register_schema(subject + "-other", page_view(context_subject, 9))
        assert (err.value.http_status_code, err.value.error_code) == (422, 42201)
        assert f'No schema reference found for subject "{context_subject}" and version 9' in err.value.error_message


def test_compatibility_follows_the_references(client, subject):
    context_subject = subject.replace("-value", "-context-value")
    client.register_schema(context_subject, Schema(json.dumps(CONTEXT), "AVRO"))
    client.register_schema(subject, page_view(context_subject, 1))
    client.set_compatibility(subject, "FORWARD")
    # Context's own level (BACKWARD) allows dropping a field; the referencing subject is not
    # re-checked and keeps version 1.
    client.register_schema(context_subject, Schema(json.dumps(CONTEXT_WITHOUT_USER_AGENT), "AVRO"))
    assert client.get_latest_version(context_subject).version == 2
    # Moving the event to Context version 2 breaks FORWARD: version 1 readers need user_agent.
    assert client.test_compatibility(subject, page_view(context_subject, 2)) is False
    with pytest.raises(SchemaRegistryError) as err:
        client.register_schema(subject, page_view(context_subject, 2))
    assert (err.value.http_status_code, err.value.error_code) == (409, 409)
    assert "user_agent" in err.value.error_message
    assert client.test_compatibility(subject, page_view(context_subject, 1)) is True


def test_avro_serializer_round_trip_with_a_referenced_schema(registry_url, client):
    topic = f"interop-{uuid.uuid4().hex[:8]}"
    context_subject = f"{topic}-context"
    client.register_schema(context_subject, Schema(json.dumps(CONTEXT), "AVRO"))
    serializer = AvroSerializer(client, page_view(context_subject, 1))
    context = SerializationContext(topic, MessageField.VALUE)
    view = {"url": "/p/1", "context": {"user_agent": "Opera/9.49", "ip": "134.147.148.171"}}
    data = serializer(view, context)
    assert data[0] == 0
    schema_id = int.from_bytes(data[1:5], "big")
    latest = client.get_latest_version(f"{topic}-value")
    assert latest.schema_id == schema_id
    assert [(r.name, r.subject, r.version) for r in latest.schema.references] == [("interop.Context", context_subject, 1)]
    with SchemaRegistryClient({"url": registry_url}) as fresh:
        assert AvroDeserializer(fresh)(data, context) == view
