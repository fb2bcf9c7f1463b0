"""The original system's ingest API, re-created for the benchmark: a Flask app whose
/collect does what SPEC.md says the original's did, with the libraries it used (Flask,
flask-cors, fastavro), served the way it was served (`python server.py`, i.e. Flask's
built-in Werkzeug server via app.run(), threaded, one thread per connection).

Per request: parse the JSON body (an array, or one object), validate each event against
the raw Avro schema with fastavro, encode the valid ones in Confluent wire format
(0x00, 4-byte schema id, Avro binary), keep the invalid ones as their JSON with the
reason, write every record of the request to the log and answer
{"status", "correlation_id", "processed_count", "valid_count", "invalid_count",
"elapsed_time"}.

The one liberty: there is no Kafka here. The original produced each event to Kafka and
waited for its acknowledgement (a network round trip per event); this app appends the
request's records to a local file and fsyncs once per request (BASELINE_FSYNC=always, the
default; `never` skips the fsync), the same durability promise clickstream makes. That
is cheaper than the original's per-event round trip, so the baseline is, if anything,
flattered.

    python app.py [port]        # BASELINE_HOST (127.0.0.1), BASELINE_LOG (a temp file)
"""

import argparse
import io
import json
import logging as log
import os
import struct
import tempfile
import threading
import time
from uuid import uuid4

from fastavro import parse_schema, schemaless_writer
from fastavro.validation import ValidationError, validate
from flask import Flask, Response, request
from flask_cors import CORS

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA_PATH = os.environ.get(
    "BASELINE_SCHEMA",
    os.path.join(HERE, "..", "..", "crates", "event", "schemas", "acme.clickstream.raw.events.avsc"),
)
SCHEMA_ID = 1


def setup():
    """Port from the command line, as the original's server.py took it."""
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int, help="Provide a port number", nargs="?", default=60000)
    args = parser.parse_args()
    log.basicConfig(level=log.INFO, format="%(asctime)s [%(levelname)s] [%(name)8s] %(message)s")
    return args.port


with open(SCHEMA_PATH) as f:
    SCHEMA = parse_schema(json.load(f))


class Log:
    """An append-only file standing in for the Kafka topics: one write and (by default)
    one fsync per request, under a lock since the server runs a thread per connection."""

    def __init__(self, path, fsync):
        self.file = open(path, "ab", buffering=0)
        self.fsync = fsync
        self.lock = threading.Lock()

    def append(self, records):
        frames = io.BytesIO()
        for topic, key, value, headers in records:
            header_bytes = json.dumps(headers).encode()
            frames.write(struct.pack(">BIII", topic, len(key), len(value), len(header_bytes)))
            frames.write(key)
            frames.write(value)
            frames.write(header_bytes)
        with self.lock:
            self.file.write(frames.getvalue())
            if self.fsync:
                os.fsync(self.file.fileno())


RAW, INVALID = 0, 1
LOG = Log(
    os.environ.get("BASELINE_LOG") or tempfile.mkstemp(prefix="baseline-log-")[1],
    os.environ.get("BASELINE_FSYNC", "always") != "never",
)


def answer(result, status=200):
    return Response(json.dumps(result), status=status, mimetype="application/json")


def reason_of(error):
    """fastavro's ValidationError lists the failing paths; keep it short for the header."""
    return "; ".join(str(e) for e in error.errors) if getattr(error, "errors", None) else str(error)


def collect_events(events):
    correlation_id = str(uuid4())
    start_time = time.time()
    records = []
    valid_count = 0
    for event in events:
        if isinstance(event, dict):
            try:
                validate(event, SCHEMA, raise_errors=True)
                buf = io.BytesIO()
                buf.write(b"\x00" + struct.pack(">I", SCHEMA_ID))
                schemaless_writer(buf, SCHEMA, event)
                details = event.get("event") or {}
                key = details.get("customer_id")
                key = str(key if key is not None else event["id"]).encode()
                records.append((RAW, key, buf.getvalue(), {"X-Correlation-ID": correlation_id}))
                valid_count += 1
                continue
            except (ValidationError, ValueError, TypeError, KeyError, AttributeError) as error:
                reason = reason_of(error)
        else:
            reason = f"expected an object, found {type(event).__name__}"
        records.append(
            (
                INVALID,
                b"",
                json.dumps(event).encode(),
                {"X-Correlation-ID": correlation_id, "X-Error-Message": reason},
            )
        )
    LOG.append(records)
    return {
        "status": "success",
        "correlation_id": correlation_id,
        "processed_count": len(events),
        "valid_count": valid_count,
        "invalid_count": len(events) - valid_count,
        "elapsed_time": time.time() - start_time,
    }


port = setup()
app = Flask(__name__)
CORS(app)


@app.route("/ping", methods=["GET"])
def ping():
    return answer({"status": "OK"})


@app.route("/collect", methods=["POST"])
def collect():
    if not request.is_json:
        return answer({"status": "error", "message": "expected content type application/json"}, 415)
    body = request.get_json(silent=True)
    if body is None:
        return answer({"status": "error", "message": "malformed JSON"}, 400)
    if isinstance(body, dict):
        body = [body]
    if not isinstance(body, list):
        return answer({"status": "error", "message": "expected a JSON array of events"}, 400)
    return answer(collect_events(body))


if __name__ == "__main__":
    app.run(host=os.environ.get("BASELINE_HOST", "127.0.0.1"), port=port)
