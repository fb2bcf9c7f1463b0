"""Shared pytest setup and helpers.

A skipped test is a failure here: the suite installs everything it needs, so a skip can
only mean something is missing or broken; CI must not pass on it.

Fixtures for the tests that run the whole stack:

- ``start_up``: starts ``$CLICKSTREAM_BIN up`` in a data dir of the test's own, on free
  loopback ports (over HTTPS when given the CA that signed its certificate), and gives a
  :class:`Clickstream` to talk to it (stopped after the test).
- ``mock_kafka``: a librdkafka mock cluster (``test.mock.num.brokers``), hosted by a client
  that lives as long as the test, with the pipeline's topics already there.
"""

import json
import os
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

READY_TIMEOUT_S = 60
# How long anything the pipeline does asynchronously (a commit to the lake) may take.
LAND_TIMEOUT_S = 60
POLL_INTERVAL_S = 0.1

RAW_TOPIC = "acme.clickstream.raw.events"
# Every topic `clickstream up` writes to (crates/event/src/lib.rs).
PIPELINE_TOPICS = (
    RAW_TOPIC,
    "acme.clickstream.invalid.events",
    "acme.clickstream.latest.events",
    "acme.clickstream.unique.users",
    # The Segment stream's (Segment's tracking API on the ingest port).
    "acme.clickstream.segment.events",
    "acme.clickstream.segment.invalid",
)


def pytest_sessionfinish(session, exitstatus):
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and reporter.stats.get("skipped"):
        session.exitstatus = 1


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(what: str, check, timeout_s: float = LAND_TIMEOUT_S):
    """Calls ``check`` until it returns something truthy and returns that; fails the test
    naming ``what`` when ``timeout_s`` passes first. A poll with a deadline, never a bare
    sleep standing in for synchronisation."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(POLL_INTERVAL_S)


@dataclass
class Answer:
    """An HTTP answer: its status and its JSON body."""

    status: int
    body: dict


def post_json(url: str, payload, context: ssl.SSLContext | None = None) -> Answer:
    """POSTs ``payload`` as JSON (over HTTPS trusting ``context``); a 4xx or 5xx is
    returned, not raised."""
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30, context=context) as response:
            return Answer(response.status, json.loads(response.read()))
    except urllib.error.HTTPError as error:
        return Answer(error.code, json.loads(error.read() or b"null"))


@dataclass
class Clickstream:
    """A running ``clickstream up``: its URLs and where it keeps its data."""

    base: str
    registry_url: str
    data_dir: Path
    log_path: Path
    # What HTTPS requests trust (the test CA); None for plain HTTP.
    ssl_context: ssl.SSLContext | None = None

    @property
    def lake(self) -> Path:
        """The `file://` lake's directory: one Delta table per subdirectory."""
        return self.data_dir / "lake" / "clickstream-data"

    def collect(self, events) -> dict:
        """POSTs ``events`` to /collect and returns the counts of the 200 answer."""
        answer = post_json(f"{self.base}/collect", events, self.ssl_context)
        assert answer.status == 200, f"/collect answered {answer.status}: {answer.body}"
        return answer.body

    def sql(self, query: str) -> list:
        """The rows of ``query`` through /api/sql, as JSON objects."""
        answer = post_json(f"{self.base}/api/sql", {"sql": query}, self.ssl_context)
        assert answer.status == 200, f"/api/sql answered {answer.status}: {answer.body}"
        return answer.body["rows"]

    def readiness(self) -> dict:
        """The body of /health/ready (roles, and the raw schema ingest validates with)."""
        try:
            with urllib.request.urlopen(
                f"{self.base}/health/ready", timeout=5, context=self.ssl_context
            ) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            return json.loads(error.read())

    def wait_for_count(self, query: str, expected: int) -> None:
        """Polls ``query`` (one row with a column ``n``) until it says ``expected``; fails
        at once if it goes past it."""

        def reached():
            n = self.sql(query)[0]["n"]
            assert n <= expected, f"{query}: {n} rows, more than the {expected} expected"
            return n == expected

        wait_until(f"{query} to reach {expected}", reached)


def _wait_ready(up: Clickstream, process: subprocess.Popen) -> None:
    """Waits until every role of ``up`` says it is ready (the processor too)."""

    def ready():
        if process.poll() is not None:
            pytest.fail(f"clickstream up exited with {process.returncode}:\n{up.log_path.read_text()}")
        try:
            with urllib.request.urlopen(
                f"{up.base}/health/ready", timeout=1, context=up.ssl_context
            ) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        wait_until("clickstream up to be ready", ready, READY_TIMEOUT_S)
    except pytest.fail.Exception:
        pytest.fail(f"clickstream up not ready after {READY_TIMEOUT_S}s:\n{up.log_path.read_text()}")


@pytest.fixture
def start_up(tmp_path):
    """Starts ``$CLICKSTREAM_BIN up`` with ``env`` added to the environment, in a data dir
    of its own under the test's tmp dir, and returns a :class:`Clickstream` once every role
    is ready. With ``ca_file`` (the CA that signed the certificate ``env`` gives it), its
    URLs are HTTPS and trust that CA. Everything started is stopped when the test ends."""
    binary = os.environ.get("CLICKSTREAM_BIN")
    if not binary:
        pytest.fail("CLICKSTREAM_BIN must name the clickstream binary")
    started = []

    def start(env: dict | None = None, ca_file: Path | None = None) -> Clickstream:
        data_dir = tmp_path / f"up-{len(started)}"
        data_dir.mkdir()
        api_port, registry_port = free_port(), free_port()
        scheme = "https" if ca_file else "http"
        up = Clickstream(
            base=f"{scheme}://127.0.0.1:{api_port}",
            registry_url=f"{scheme}://127.0.0.1:{registry_port}",
            data_dir=data_dir,
            log_path=data_dir / "server.log",
            ssl_context=ssl.create_default_context(cafile=str(ca_file)) if ca_file else None,
        )
        full_env = dict(
            os.environ,
            CLICKSTREAM_INGEST__HOST="127.0.0.1",
            CLICKSTREAM_REGISTRY__HOST="127.0.0.1",
            **(env or {}),
        )
        with open(up.log_path, "wb") as log:
            process = subprocess.Popen(
                [
                    binary,
                    "--data-dir",
                    str(data_dir),
                    "up",
                    "--api-port",
                    str(api_port),
                    "--registry-port",
                    str(registry_port),
                    "--ui-port",
                    "0",
                    "--rest-proxy-port",
                    "0",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=full_env,
            )
        started.append(process)
        _wait_ready(up, process)
        return up

    yield start
    for process in started:
        process.terminate()
    for process in started:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class MockKafka:
    """A librdkafka mock cluster: its bootstrap servers and the client hosting it."""

    bootstrap_servers: str
    host: object


@pytest.fixture
def mock_kafka():
    """A three-broker librdkafka mock cluster with the pipeline's topics.

    There is no Kafka broker on the test machine; librdkafka ships mock brokers that speak
    the wire protocol, started by any client given ``test.mock.num.brokers`` and alive as
    long as that client. The mock brokers do not implement CreateTopics, so the topics are
    made the way a broker with ``auto.create.topics.enable`` makes them: a metadata request
    for each (the mock's default of 4 partitions); ``clickstream up`` then finds them and
    creates nothing."""
    from confluent_kafka import Producer

    host = Producer({"test.mock.num.brokers": 3})
    brokers = host.list_topics(timeout=10).brokers.values()
    bootstrap = ",".join(f"{b.host}:{b.port}" for b in sorted(brokers, key=lambda b: b.id))
    for topic in PIPELINE_TOPICS:
        found = host.list_topics(topic=topic, timeout=10).topics[topic]
        assert found.error is None and found.partitions, f"mock cluster did not create {topic}: {found.error}"
    yield MockKafka(bootstrap, host)
    host.flush(10)
