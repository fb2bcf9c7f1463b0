#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets into fuzz/corpus/<target>/seed-*.

Run once with the test venv's Python (fastavro encodes the wire records):
    ~/.cache/clickstream-venv/bin/python fuzz/seeds.py
The corpora committed beside it are these seeds plus what fuzzing found (minimised with
`cargo fuzz cmin`); this script only documents and regenerates where they started.
"""
import io
import json
import pathlib
import struct

import fastavro

here = pathlib.Path(__file__).resolve().parent
repo = here.parent
schemas = repo / "crates" / "event" / "schemas"
raw_schema = json.loads((schemas / "acme.clickstream.raw.events.avsc").read_text())
latest_schema = json.loads((schemas / "acme.clickstream.latest.events.avsc").read_text())

EVENTS = [
    {"id": 1, "type": "page_view", "event": {"user_agent": "Mozilla/5.0", "ip": "10.0.0.1",
     "customer_id": 7, "timestamp": "2022-05-25T05:41:33.648681",
     "page": "https://shop.example/", "referrer": "https://www.google.com/"}},
    {"id": 2, "type": "search", "event": {"user_agent": "curl/8", "ip": "::1",
     "customer_id": None, "timestamp": "2022-05-25T05:41:51", "query": "shoes"}},
    {"id": 3, "type": "add_to_cart", "package_id": "p-1", "event": {"user_agent": "x",
     "ip": "1.2.3.4", "timestamp": "2022-05-25T05:42:00Z", "product": 123, "position": 2}},
    {"id": -9223372036854775808, "type": "", "event": {"user_agent": "", "ip": "",
     "timestamp": ""}},
    {"id": 4, "type": "page_view", "event": {"customer_id": "12"}},
]

RICH_SCHEMA = {
    "type": "record", "name": "Rich", "namespace": "fuzz",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "price", "type": ["null", "double"], "default": None},
        {"name": "tags", "type": {"type": "array", "items": "string"}, "default": []},
        {"name": "attrs", "type": {"type": "map", "values": ["null", "long", "string"]}},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B"]}},
        {"name": "hash", "type": {"type": "fixed", "name": "Hash", "size": 4}},
        {"name": "blob", "type": "bytes"},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal",
                                    "precision": 9, "scale": 2}},
        {"name": "uid", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "variant", "type": ["null", {"type": "record", "name": "Variant",
            "fields": [{"name": "name", "type": "string"}, {"name": "n", "type": "int"}]}]},
        {"name": "next", "type": ["null", "Rich"], "default": None},
    ],
}
RICH_EVENT = {"id": 1, "price": 12.5, "tags": ["a", "b"], "attrs": {"x": 1, "y": "z"},
              "kind": "B", "hash": "abcd", "blob": "\u0000\u00ff", "at": 1700000000000,
              "day": 19000, "amount": "\u0004\u00d2", "uid": "3f2b1c9e-0000-4000-8000-000000000000",
              "variant": {"name": "v", "n": 3}, "next": None}


SITE_SCHEMA = json.loads((repo / "crates" / "event" / "tests" / "data" / "site_hit.avsc").read_text())
SITE_CTX = {"ua": "curl/8", "ip": "::1", "at": 1700000000000, "day": 19000,
            "attrs": {"a": 1.5, "b": None, "c": "buy"}, "hash": b"abcd", "blob": b"\x00\xff",
            "next": None}
SITE_EVENT = {"tags": ["a", "b"], "id": -12, "kind": "buy", "flag": True,
              "ctx": dict(SITE_CTX, next={"tags": [], "id": 1, "kind": "view", "flag": False,
                                          "ctx": None, "score": 0.5}),
              "score": 0.25}


def datum(schema, record):
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), record)
    return out.getvalue()


def write(target, name, data):
    d = here / "corpus" / target
    d.mkdir(parents=True, exist_ok=True)
    (d / f"seed-{name}").write_bytes(data)


def wire(schema_id, schema, record):
    out = io.BytesIO()
    out.write(b"\x00" + struct.pack(">I", schema_id))
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), record)
    return out.getvalue()


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def frame(offset, ts, key, headers, value):
    body = struct.pack("<Qq", offset, ts)
    body += struct.pack("<i", -1) if key is None else struct.pack("<i", len(key)) + key
    body += struct.pack("<I", len(headers))
    for name, val in headers:
        body += struct.pack("<I", len(name)) + name + struct.pack("<I", len(val)) + val
    body += struct.pack("<I", len(value)) + value
    return struct.pack("<II", len(body) + 4, crc32c(body)) + body


def main():
    for i, event in enumerate(EVENTS):
        write("json_to_avro", f"raw-{i}", json.dumps(event).encode())
    write("json_to_avro", "rich", json.dumps(RICH_SCHEMA).encode() + b"\0"
          + json.dumps(RICH_EVENT).encode())

    valid = [e for e in EVENTS[:4]]
    for i, event in enumerate(valid):
        write("wire_decode", f"raw-{i}", wire(3 * i, raw_schema, event))
        write("wire_decode", f"resolved-{i}", wire(3 * i + 2, raw_schema, event))
    latest = dict(EVENTS[0], metadata={"correlation_id": "c-1",
                                        "timestamp": "2022-05-25T05:41:34Z", "schema_id": 1})
    write("wire_decode", "latest-0", wire(1, latest_schema, latest))

    for i, event in enumerate(valid):
        write("field_reader", f"raw-{i}", b"\x00" + datum(raw_schema, event))
    write("field_reader", "site", b"\x01" + datum(SITE_SCHEMA, SITE_EVENT))

    records = b"".join(
        frame(i, 1_700_000_000_000 + i, None if i % 2 else b"key-%d" % i,
              [(b"X-Correlation-ID", b"c-%d" % i)] if i % 3 == 0 else [],
              wire(1, raw_schema, valid[i % len(valid)]))
        for i in range(4))
    write("log_segment", "segment", b"\x00" + records)
    write("log_segment", "torn-tail", b"\x00" + records[:-7])
    body = frame(0, 1, b"k", [(b"h", b"v")], b"value")[8:]
    write("log_segment", "one-body", b"\x01" + struct.pack("<H", len(body)) + body)

    for path in sorted(schemas.glob("*.avsc")):
        write("registry_schema", path.stem, path.read_bytes())
    write("registry_schema", "rich", json.dumps(RICH_SCHEMA).encode())
    evolved = json.loads(json.dumps(raw_schema))
    evolved["fields"].append({"name": "price", "type": ["null", "double"], "default": None})
    write("registry_schema", "evolved-pair", json.dumps(raw_schema).encode() + b"\0"
          + json.dumps(evolved).encode())
    write("registry_schema", "primitives", b'["null","boolean","int","long","float","double","bytes","string"]')
    write("registry_schema", "primitive-properties",
          b'["null",{"type":"string","logicalType":"x","foo":{"b":1,"a":[2]}},'
          b'{"type":"int","logicalType":"date","unit":"d"},{"type":{"type":"bytes","k":true}}]')


if __name__ == "__main__":
    main()
