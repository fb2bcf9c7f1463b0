"""An independent reader opens our lake: delta-rs' Python bindings read the `events` table
that `clickstream up` wrote, and agree with our SQL on the row count and column checksums.

The server is `$CLICKSTREAM_BIN up` in a temp dir on free loopback ports.
"""

import json
import os
import random
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable

SEED = Path(__file__).resolve().parents[2] / "crates/event/tests/data/seed_events.jsonl"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post(url: str, payload) -> dict:
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    binary = os.environ.get("CLICKSTREAM_BIN")
    if not binary:
        pytest.fail("CLICKSTREAM_BIN must name the clickstream binary")
    data = tmp_path_factory.mktemp("lake-data")
    port = free_port()
    env = dict(os.environ, CLICKSTREAM_INGEST__HOST="127.0.0.1", CLICKSTREAM_REGISTRY__HOST="127.0.0.1")
    log = open(data / "server.log", "wb")
    process = subprocess.Popen(
        [binary, "--data-dir", str(data), "up", "--api-port", str(port), "--registry-port", str(free_port()), "--ui-port", "0"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            pytest.fail(f"clickstream up exited: {(data / 'server.log').read_text()}")
        try:
            with urllib.request.urlopen(f"{base}/ping", timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail("clickstream up did not come up")
            time.sleep(0.1)
    try:
        yield base, data
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def sql(base: str, query: str) -> list:
    return post(f"{base}/api/sql", {"sql": query})["rows"]


def test_delta_rs_reads_what_we_wrote(pipeline):
    base, data = pipeline
    seed = [json.loads(line) for line in SEED.read_text().splitlines() if line.startswith("{")]
    rng = random.Random(7)
    generated = []
    for i in range(2000):
        event = json.loads(json.dumps(seed[i % 12]))  # the 12 valid seed events, varied
        event["id"] = 10_000_000 + i
        event["event"]["customer_id"] = rng.choice([None, rng.randint(1, 300)])
        generated.append(event)
    answers = [post(f"{base}/collect", seed)]
    for start in range(0, len(generated), 250):
        answers.append(post(f"{base}/collect", generated[start : start + 250]))
    valid = sum(a["valid_count"] for a in answers)
    invalid = sum(a["invalid_count"] for a in answers)
    assert (valid, invalid) == (12 + 2000, 3)

    deadline = time.monotonic() + 30
    while sql(base, "SELECT count(*) AS n FROM events")[0]["n"] < valid:
        assert time.monotonic() < deadline, "events did not reach the lake in time"
        time.sleep(0.2)
    ours = sql(
        base,
        "SELECT count(*) AS n, sum(id) AS ids, sum(customer_id) AS customers, "
        "count(DISTINCT correlation_id) AS batches FROM events",
    )[0]

    table = DeltaTable(str(data / "lake" / "clickstream-data" / "events")).to_pyarrow_table()
    assert table.num_rows == ours["n"] == valid
    assert pc.sum(table["id"]).as_py() == ours["ids"]
    assert pc.sum(table["customer_id"]).as_py() == ours["customers"]
    assert len(pc.unique(table["correlation_id"])) == ours["batches"] == len(answers)
    assert set(table.column_names) >= {"id", "type", "event_time", "event_date", "correlation_id"}

    deadline = time.monotonic() + 30
    while sql(base, "SELECT count(*) AS n FROM invalid_events")[0]["n"] < invalid:
        assert time.monotonic() < deadline, "invalid events did not reach the lake in time"
        time.sleep(0.2)
    rejects = DeltaTable(str(data / "lake" / "clickstream-data" / "invalid_events")).to_pyarrow_table()
    assert rejects.num_rows == invalid
