"""The segment step: Segment's tracking API at ingest against /collect.

`clickstream up` (processor on, the defaults), loaded three ways at batches of 100 with the
same load generator, the same connections and the same duration:

- `collect`: POST /collect, the seed's events (the 12 valid seed events, ids made unique);
- `segment`: POST /v1/batch, calls as analytics.js (analytics-next 1.84.3, batching
  delivery) puts them on the wire (docs/design/segment-wire.md §3): page, track, identify,
  group and alias calls with their properties or traits, the whole browser context (page,
  userAgent, userAgentData, locale, timezone, library, sometimes campaign), `_metadata`
  and `writeKey`, in the `{"batch", "writeKey", "sentAt"}` envelope, with HTTP Basic auth;
- `segment-gzip`: the same bodies gzipped (`Content-Encoding: gzip`, as analytics-python
  sends with `gzip=True`).

`clickstream bench ingest` only posts /collect's events, so the load generator is here:
plain `http.client` in threads (the bench venv has no async HTTP client), one keep-alive
connection per thread, each posting a body, waiting for the 200 and repeating (a closed
loop, like `bench ingest`). Bodies are built and compressed before the clock starts, a pool
of SEGMENT_POOL per leg, so the client spends its CPU on HTTP alone; the pool is reused
round-robin and each leg starts a fresh `up`. Once a leg has sent more bodies than the pool
holds, calls repeat: ingest takes a repeat like any call (it does not deduplicate), the
processor files it as a duplicate, for /collect as for Segment. The table says how often
each leg went round its pool.

Legs alternate for SEGMENT_REPS rounds, so drift of the shared machine falls on all alike;
the table shows each round and the median, events/s and p99 latency (per request).
"""

import base64
import gzip
import http.client
import itertools
import json
import math
import random
import shutil
import statistics
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

from harness import CONFIG, REPO, clickstream_up, log

BATCH = 100
LEGS = ("collect", "segment", "segment-gzip")
WRITE_KEY = "bench-segment-write-key"
SEED = REPO / "crates" / "event" / "tests" / "data" / "seed_events.jsonl"

USER_AGENTS = [
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
     "Linux", False),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
     "Safari/537.36", "Windows", False),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 "
     "Safari/537.36", "macOS", False),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile "
     "Safari/537.36", "Android", True),
]
PAGES = [
    ("/", "Shop"), ("/boots", "Boots"), ("/boots/trail-runner-2", "Trail Runner 2"), ("/cart", "Cart"),
    ("/checkout", "Checkout"), ("/search", "Search"), ("/account", "Account"),
]
REFERRERS = ["", "https://www.google.com/", "https://duckduckgo.com/", "https://news.example/winter-sale",
             "https://shop.example/"]
PRODUCTS = [("boot-1", "Trail Runner 2", "Boots", 129.9), ("sock-7", "Wool Socks", "Socks", 12.5),
            ("jack-3", "Rain Jacket", "Jackets", 89.0), ("cap-2", "Running Cap", "Accessories", 19.99)]
EVENTS = ["Product Viewed", "Product Added", "Checkout Started", "Order Completed", "Products Searched"]
HOST = "https://shop.example"


def iso(moment):
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Visitor:
    def __init__(self, rng, index):
        self.anonymous_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        self.user_id = f"user-{index}" if rng.random() < 0.4 else None
        self.user_agent, self.platform, self.mobile = rng.choice(USER_AGENTS)
        self.locale = rng.choice(["en-US", "en-GB", "de-DE", "fr-FR"])
        self.timezone = rng.choice(["Europe/Berlin", "Europe/London", "America/New_York"])
        self.campaign = ({"name": "winter", "source": "news", "medium": "email"} if rng.random() < 0.2 else None)


def segment_call(rng, visitor, moment):
    """One call as analytics-next's batching delivery sends it (no per-call sentAt)."""
    path, title = rng.choice(PAGES)
    referrer = rng.choice(REFERRERS)
    search = "?utm_source=news&utm_medium=email&utm_campaign=winter" if visitor.campaign else ""
    page = {"path": path, "referrer": referrer, "search": search, "title": title, "url": f"{HOST}{path}{search}"}
    context = {
        "page": page,
        "userAgent": visitor.user_agent,
        "userAgentData": {"brands": [{"brand": "Chromium", "version": "131"}, {"brand": "Not_A Brand", "version": "24"}],
                          "mobile": visitor.mobile, "platform": visitor.platform},
        "locale": visitor.locale,
        "library": {"name": "analytics.js", "version": "next-1.84.3"},
        "timezone": visitor.timezone,
    }
    if visitor.campaign:
        context["campaign"] = visitor.campaign
    ms = int(moment.timestamp() * 1000)
    call = {
        "timestamp": iso(moment),
        "integrations": {},
        "messageId": f"ajs-next-{ms}-{uuid.UUID(int=rng.getrandbits(128), version=4)}",
        "anonymousId": visitor.anonymous_id,
        "context": context,
        "writeKey": WRITE_KEY,
        "_metadata": {"bundled": ["Segment.io"], "unbundled": [], "bundledIds": []},
    }
    if visitor.user_id:
        call["userId"] = visitor.user_id
    roll = rng.random()
    if roll < 0.35:
        call.update(type="page", name=title, properties=dict(page, name=title))
    elif roll < 0.85:
        sku, name, category, price = rng.choice(PRODUCTS)
        quantity = rng.randint(1, 3)
        event = rng.choice(EVENTS)
        properties = {"product_id": sku, "sku": sku, "name": name, "category": category, "price": price,
                      "quantity": quantity, "currency": "EUR"}
        if event == "Order Completed":
            properties = {"order_id": f"o-{rng.getrandbits(40)}", "revenue": round(price * quantity, 2),
                          "currency": "EUR", "products": [properties]}
        elif event == "Products Searched":
            properties = {"query": rng.choice(["trail boots", "socks", "rain jacket"])}
        call.update(type="track", event=event, properties=properties)
    elif roll < 0.95:
        user_id = visitor.user_id or f"user-{rng.getrandbits(32)}"
        call.update(type="identify", userId=user_id,
                    traits={"email": f"{user_id}@example.com", "plan": rng.choice(["free", "pro"]),
                            "logins": rng.randint(1, 40)})
    elif roll < 0.98:
        call.update(type="group", userId=visitor.user_id or f"user-{rng.getrandbits(32)}",
                    groupId=f"org-{rng.randint(1, 200)}", traits={"name": "Acme Inc", "employees": 120})
    else:
        call.update(type="alias", userId=visitor.user_id or f"user-{rng.getrandbits(32)}",
                    previousId=visitor.anonymous_id)
    return call


def seed_events():
    return [json.loads(line) for line in SEED.read_text().splitlines() if line.startswith("{")][:12]


def build_pool(size, rng):
    """`size` request bodies per leg, built and compressed before any clock starts."""
    visitors = [Visitor(rng, i) for i in range(5000)]
    seed = seed_events()
    start = datetime.now(timezone.utc) - timedelta(hours=1)
    pool = {leg: [] for leg in LEGS}
    next_id = 50_000_000
    for n in range(size):
        moment = start + timedelta(milliseconds=n * 37)
        calls = [segment_call(rng, rng.choice(visitors), moment + timedelta(milliseconds=i)) for i in range(BATCH)]
        body = json.dumps({"batch": calls, "writeKey": WRITE_KEY, "sentAt": iso(moment + timedelta(seconds=1))},
                          separators=(",", ":")).encode()
        pool["segment"].append(body)
        pool["segment-gzip"].append(gzip.compress(body, compresslevel=6))
        events = []
        for i in range(BATCH):
            event = json.loads(json.dumps(seed[i % len(seed)]))
            event["id"] = next_id
            next_id += 1
            event["event"]["customer_id"] = rng.randint(1, 5000)
            events.append(event)
        pool["collect"].append(json.dumps(events, separators=(",", ":")).encode())
    return pool


def leg_request(leg):
    """The path and headers of a leg's requests."""
    if leg == "collect":
        return "/collect", {"Content-Type": "application/json"}
    headers = {
        "Content-Type": "text/plain",  # what analytics-next sends
        "Authorization": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode(),
    }
    if leg == "segment-gzip":
        headers["Content-Encoding"] = "gzip"
    return "/v1/batch", headers


def load(base, leg, bodies, connections, secs):
    """A closed loop of `connections` threads for `secs`: events/s, requests/s, latency."""
    host, port = base.removeprefix("http://").split(":")
    path, headers = leg_request(leg)
    counter = itertools.count()
    deadline = time.monotonic() + secs
    results = []
    lock = threading.Lock()

    def worker():
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        latencies, ok, failed, errors, sent_bytes = [], 0, 0, 0, 0
        while time.monotonic() < deadline:
            body = bodies[next(counter) % len(bodies)]
            started = time.perf_counter()
            try:
                connection.request("POST", path, body=body, headers=headers)
                answer = connection.getresponse()
                answer.read()
            except (OSError, http.client.HTTPException):
                errors += 1
                connection.close()
                connection = http.client.HTTPConnection(host, int(port), timeout=60)
                continue
            latencies.append((time.perf_counter() - started) * 1e3)
            sent_bytes += len(body)
            if answer.status == 200:
                ok += 1
            else:
                failed += 1
        connection.close()
        with lock:
            results.append((latencies, ok, failed, errors, sent_bytes))

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    latencies = sorted(itertools.chain.from_iterable(r[0] for r in results))
    ok = sum(r[1] for r in results)

    def percentile(q):
        return latencies[max(0, math.ceil(q * len(latencies)) - 1)] if latencies else None

    return {
        "leg": leg, "path": path, "batch_size": BATCH, "connections": connections, "seconds": elapsed,
        "requests_ok": ok, "requests_failed": sum(r[2] for r in results), "transport_errors": sum(r[3] for r in results),
        "events_acked": ok * BATCH, "events_per_sec": ok * BATCH / elapsed, "requests_per_sec": ok / elapsed,
        "latency_p50_ms": percentile(0.50), "latency_p99_ms": percentile(0.99), "latency_max_ms": percentile(1.0),
        "mean_body_bytes": statistics.mean(len(b) for b in bodies),
        "pool_rounds": (next(counter)) / len(bodies),
    }


def ingest_leg(work, name, leg, bodies):
    server = clickstream_up(work, name)
    try:
        load(server.base, leg, bodies, CONFIG["connections"], 1)  # warm-up, not counted
        before = server.cpu()
        report = load(server.base, leg, bodies, CONFIG["connections"], CONFIG["ingest_secs"])
        cpu = server.cpu() - before
        report["server_cpu_secs_per_million_events"] = cpu / report["events_acked"] * 1e6 if report["events_acked"] else None
        report["peak_rss_mb"] = server.rss()
        if report["requests_failed"] or report["transport_errors"]:
            raise SystemExit(f"{name}: {report['requests_failed']} requests refused, "
                             f"{report['transport_errors']} transport errors; see {server.log_path}")
        log(f"{name}: {report['events_per_sec']:,.0f} events/s, p99 {report['latency_p99_ms']:.1f} ms")
        return report
    finally:
        server.stop()
        shutil.rmtree(server.data, ignore_errors=True)


def run_segment(work):
    started = time.monotonic()
    pool = build_pool(CONFIG["segment_pool"], random.Random(11))
    log(f"segment: {CONFIG['segment_pool']} bodies of {BATCH} per leg built in {time.monotonic() - started:.1f} s")
    out = {leg: [] for leg in LEGS}
    for round_ in range(CONFIG["segment_reps"]):
        for leg in LEGS:
            log(f"segment round {round_ + 1}: {leg}")
            out[leg].append(ingest_leg(work, f"segment-{round_}-{leg}", leg, pool[leg]))
    return out


def markdown(segment):
    """Each round's events/s, the medians, and each leg against /collect."""
    median = {leg: statistics.median(r["events_per_sec"] for r in runs) for leg, runs in segment.items()}
    lines = [
        "",
        "## Segment's tracking API against /collect",
        "",
        "`clickstream up` (processor on), batches of 100, the same Python load generator (http.client "
        "in threads, bodies prebuilt) for every leg. `segment`: POST /v1/batch with calls as "
        "analytics.js sends them; `segment-gzip`: the same bodies gzipped. Legs alternate; each round "
        "is one figure.",
        "",
        "| leg | route | body bytes | each round, events/s | median | p99 ms (median) | server CPU s / M events "
        "(median) | pool rounds | / collect |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for leg, runs in segment.items():
        rounds = ", ".join(f"{r['events_per_sec']:,.0f}" for r in runs)
        p99 = statistics.median(r["latency_p99_ms"] for r in runs)
        cpu = [r["server_cpu_secs_per_million_events"] for r in runs if r["server_cpu_secs_per_million_events"]]
        cpu_text = f"{statistics.median(cpu):,.1f}" if cpu else "–"
        pool = max(r["pool_rounds"] for r in runs)
        lines.append(
            f"| {leg} | {runs[0]['path']} | {runs[0]['mean_body_bytes']:,.0f} | {rounds} | {median[leg]:,.0f} | "
            f"{p99:.1f} | {cpu_text} | {pool:.1f} | {median[leg] / median['collect']:.3f}× |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    # Alone, without run.py's results files: `CLICKSTREAM_BIN=… python bench/segment.py`.
    import tempfile

    with tempfile.TemporaryDirectory(prefix="clickstream-bench-segment-") as work:
        print(markdown(run_segment(work)))
