"""An independent reader opens our lake: delta-rs' Python bindings read the `events` table
that `clickstream up` wrote, and agree with our SQL on the row count and column checksums.

The server is `$CLICKSTREAM_BIN up` in a temp dir on free loopback ports (conftest's
``start_up``).
"""

import json
import random
from pathlib import Path

import pyarrow.compute as pc
from deltalake import DeltaTable

SEED = Path(__file__).resolve().parents[2] / "crates/event/tests/data/seed_events.jsonl"


def test_delta_rs_reads_what_we_wrote(start_up):
    up = start_up()
    seed = [json.loads(line) for line in SEED.read_text().splitlines() if line.startswith("{")]
    rng = random.Random(7)
    generated = []
    for i in range(2000):
        event = json.loads(json.dumps(seed[i % 12]))  # the 12 valid seed events, varied
        event["id"] = 10_000_000 + i
        event["event"]["customer_id"] = rng.choice([None, rng.randint(1, 300)])
        generated.append(event)
    answers = [up.collect(seed)]
    for start in range(0, len(generated), 250):
        answers.append(up.collect(generated[start : start + 250]))
    valid = sum(a["valid_count"] for a in answers)
    invalid = sum(a["invalid_count"] for a in answers)
    assert (valid, invalid) == (12 + 2000, 3)

    up.wait_for_count("SELECT count(*) AS n FROM events", valid)
    ours = up.sql(
        "SELECT count(*) AS n, sum(id) AS ids, sum(customer_id) AS customers, "
        "count(DISTINCT correlation_id) AS batches FROM events",
    )[0]

    table = DeltaTable(str(up.lake / "events")).to_pyarrow_table()
    assert table.num_rows == ours["n"] == valid
    assert pc.sum(table["id"]).as_py() == ours["ids"]
    assert pc.sum(table["customer_id"]).as_py() == ours["customers"]
    assert len(pc.unique(table["correlation_id"])) == ours["batches"] == len(answers)
    assert set(table.column_names) >= {"id", "type", "event_time", "event_date", "correlation_id"}

    up.wait_for_count("SELECT count(*) AS n FROM invalid_events", invalid)
    rejects = DeltaTable(str(up.lake / "invalid_events")).to_pyarrow_table()
    assert rejects.num_rows == invalid
