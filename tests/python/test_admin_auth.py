"""The admin token with Confluent's own client: `basic.auth.user.info` carries it, as it does
for a Confluent Schema Registry behind HTTP Basic authentication.

Run: CLICKSTREAM_BIN=/path/to/clickstream python -m pytest tests/python/test_admin_auth.py
"""

import json

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from conftest import post_json

TOKEN = "python-admin-token-0123456789abcdef"
SUBJECT = "acme.clickstream.auth-check-value"
SCHEMA = json.dumps({"type": "record", "name": "AuthCheck", "fields": [{"name": "n", "type": "long"}]})


def test_registry_writes_need_the_token_reads_do_not(start_up):
    up = start_up({"CLICKSTREAM_ADMIN_TOKEN": TOKEN})

    anonymous = SchemaRegistryClient({"url": up.registry_url})
    with pytest.raises(SchemaRegistryError) as refused:
        anonymous.register_schema(SUBJECT, Schema(SCHEMA, "AVRO"))
    assert refused.value.http_status_code == 401
    assert "admin token" in refused.value.error_message
    # Reads stay open, as Confluent's are by default.
    assert "acme.clickstream.raw.events-value" in anonymous.get_subjects()

    wrong = SchemaRegistryClient({"url": up.registry_url, "basic.auth.user.info": "admin:not-the-token-0000"})
    with pytest.raises(SchemaRegistryError) as refused:
        wrong.register_schema(SUBJECT, Schema(SCHEMA, "AVRO"))
    assert refused.value.http_status_code == 401

    admin = SchemaRegistryClient({"url": up.registry_url, "basic.auth.user.info": f"admin:{TOKEN}"})
    schema_id = admin.register_schema(SUBJECT, Schema(SCHEMA, "AVRO"))
    assert anonymous.get_latest_version(SUBJECT).schema_id == schema_id
    with pytest.raises(SchemaRegistryError) as refused:
        anonymous.delete_subject(SUBJECT)
    assert refused.value.http_status_code == 401
    assert admin.delete_subject(SUBJECT) == [1]


def test_sql_needs_the_token(start_up):
    up = start_up({"CLICKSTREAM_ADMIN_TOKEN": TOKEN})
    assert up.collect([{"id": 1, "type": "page_view", "event": {
        "user_agent": "pytest", "ip": "10.0.0.1", "timestamp": "2024-05-01T12:00:00Z"}}])["valid_count"] == 1
    refused = post_json(f"{up.base}/api/sql", {"sql": "SELECT count(*) AS n FROM events"})
    assert refused.status == 401
    assert "admin token" in refused.body["message"]
