"""Segment's own Python library (`segment-analytics-python`, pinned in requirements.txt)
sends to a running `clickstream up` exactly as it would send to Segment: configured only
with a write key and ``host`` (docs/design/segment-wire.md §1), it posts its batches to
``/v1/batch``, and every call lands once in ``segment_events`` with what was sent; the
``identities`` table links the ids that identify and alias join.

Exactly once under the library's own retries: a forwarding proxy between the library and
clickstream lets clickstream take the first batch and answer it, then closes the
library's connection without the answer, as a network failure would. The library sends
the same batch again (``X-Retry-Count: 1``); each call lands once and the copies are in
``segment_duplicates``.

The server is `$CLICKSTREAM_BIN up` in a temp dir on free loopback ports (conftest's
``start_up``), with one write key configured, so the key the library sends is checked.
"""

import gzip as gzip_module
import http.client
import json
import threading
import urllib.error
import urllib.request
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from segment.analytics import Client
from segment.analytics.version import VERSION

WRITE_KEY = "wk_python_library_test"
# The source the key belongs to: `source` in the lake says which key a call came with.
SOURCE = "backend"
KEYS = {f"CLICKSTREAM_AUTH__WRITE_KEYS__{SOURCE.upper()}": WRITE_KEY}

# What a server-side caller passes along; the library adds `library`.
CONTEXT = {
    "ip": "81.2.69.142",
    "locale": "de-DE",
    "timezone": "Europe/Berlin",
    "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
}

ORDER = {
    "revenue": 42.5,
    "currency": "EUR",
    "order id": "o-1001",
    "products": [
        {"sku": "boot-1", "price": 19.99, "quantity": 2, "tags": ["winter", "leather"]},
        {"sku": "sock-7", "price": 2.52, "quantity": 1, "tags": []},
    ],
    "shipping": {"method": "express", "address": {"city": "Zürich", "zip": "8001"}},
    "coupon": None,
    "first order": True,
    "big": 9007199254740993,
}
TRAITS = {"email": "ada@example.com", "name": "Ada", "plan": "pro", "logins": 3, "address": {"city": "London"}}
GROUP_TRAITS = {"name": "Acme Inc", "employees": 120, "industry": "retail"}


def send_every_call(client: Client, prefix: str) -> dict:
    """The six calls of a visit that ends in a login, as the library queues them (with the
    messageId, timestamp and context it gave each), by type."""
    anonymous, user = f"{prefix}-anon", f"{prefix}-user"
    calls = {
        "page": client.page(
            anonymous_id=anonymous,
            category="Shop",
            name="Boots",
            properties={"url": "https://shop.example/boots", "path": "/boots", "title": "Boots"},
            context=dict(CONTEXT),
        ),
        "track": client.track(
            anonymous_id=anonymous, event="Order Completed", properties=ORDER, context=dict(CONTEXT)
        ),
        "identify": client.identify(user_id=user, anonymous_id=anonymous, traits=TRAITS, context=dict(CONTEXT)),
        "group": client.group(user_id=user, group_id=f"{prefix}-group", traits=GROUP_TRAITS),
        "screen": client.screen(user_id=user, category="App", name="Cart", properties={"items": 2}),
        "alias": client.alias(previous_id=f"{prefix}-old", user_id=user),
    }
    for call_type, (queued, message) in calls.items():
        assert queued, f"the library did not queue the {call_type} call"
        assert message["type"] == call_type
    return {call_type: message for call_type, (_, message) in calls.items()}


def in_list(messages: dict) -> str:
    return ", ".join(f"'{m['messageId']}'" for m in messages.values())


def sql_time(text: str) -> datetime:
    """A timestamp as /api/sql or the library writes it (`Z` or an offset)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def assert_landed_as_sent(up, messages: dict, prefix: str) -> None:
    """Every call is in segment_events once, with the type, ids, properties, traits and
    context it was sent with; identities links the anonymous and the previous id to the
    user id."""
    up.wait_for_count(f"SELECT count(*) AS n FROM segment_events WHERE message_id IN ({in_list(messages)})", 6)
    rows = up.sql(
        "SELECT message_id, type, event, name, category, user_id, anonymous_id, previous_id, group_id, "
        "properties, traits, source, ip, user_agent, browser_family, context_locale, context_timezone, "
        'context_library, original_timestamp, sent_at, received_at, "timestamp" '
        f"FROM segment_events WHERE message_id IN ({in_list(messages)})"
    )
    by_id = {row["message_id"]: row for row in rows}
    assert len(by_id) == 6, rows
    for call_type, sent in messages.items():
        row = by_id[sent["messageId"]]
        assert row["type"] == call_type
        assert row["source"] == SOURCE, "the write key in Basic auth names the source"
        for column, field in [
            ("event", "event"),
            ("name", "name"),
            ("category", "category"),
            ("user_id", "userId"),
            ("anonymous_id", "anonymousId"),
            ("previous_id", "previousId"),
            ("group_id", "groupId"),
        ]:
            assert row[column] == sent.get(field), f"{call_type}.{column}: {row[column]!r} != {sent.get(field)!r}"
        for column in ("properties", "traits"):
            if column in sent:
                assert row[column] is not None, f"{call_type}: {column} lost"
                assert json.loads(row[column]) == sent[column], f"{call_type}.{column}"
            else:
                assert row[column] is None, f"{call_type}: {column} {row[column]!r} never sent"
        assert row["context_library"] == {"name": "analytics-python", "version": VERSION}
        # The library's `timestamp` is the call's time on the client: kept as sent.
        assert sql_time(row["original_timestamp"]) == sql_time(sent["timestamp"])
        assert row["sent_at"] is not None and row["received_at"] is not None and row["timestamp"] is not None
        if "ip" in sent["context"]:
            assert row["ip"] == CONTEXT["ip"]
            assert row["user_agent"] == CONTEXT["userAgent"]
            assert row["browser_family"] == "Chrome"
            assert (row["context_locale"], row["context_timezone"]) == ("de-DE", "Europe/Berlin")

    user = f"{prefix}-user"
    up.wait_for_count(f"SELECT count(*) AS n FROM identities WHERE user_id = '{user}'", 2)
    links = up.sql(
        "SELECT link, anonymous_id, previous_id, message_id FROM identities "
        f"WHERE user_id = '{user}' ORDER BY link"
    )
    assert links == [
        {"link": "alias", "anonymous_id": None, "previous_id": f"{prefix}-old", "message_id": messages["alias"]["messageId"]},
        {
            "link": "identify",
            "anonymous_id": f"{prefix}-anon",
            "previous_id": None,
            "message_id": messages["identify"]["messageId"],
        },
    ]


def assert_each_once(up, messages: dict, copies: int) -> None:
    """No messageId twice in segment_events; ``copies`` of each in segment_duplicates (once
    those are all in, every request the library made has been processed)."""
    up.wait_for_count(
        f"SELECT count(*) AS n FROM segment_duplicates WHERE message_id IN ({in_list(messages)})",
        copies * len(messages),
    )
    assert up.sql(
        f"SELECT message_id FROM segment_events WHERE message_id IN ({in_list(messages)}) "
        "GROUP BY message_id HAVING count(*) > 1"
    ) == []
    up.wait_for_count(f"SELECT count(*) AS n FROM segment_events WHERE message_id IN ({in_list(messages)})", 6)
    assert up.sql("SELECT count(*) AS n FROM segment_invalid_events") == [{"n": 0}]


class Errors:
    """What the library reports to ``on_error`` (calls it gave up on). Not a list: the
    library calls ``on_error`` only when it is truthy, and an empty list is not."""

    def __init__(self):
        self.seen: list[tuple[str, list]] = []

    def __call__(self, error, batch):
        self.seen.append((repr(error), [m.get("messageId") for m in batch]))


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
def test_every_call_type_lands_once_as_sent(start_up, gzip):
    up = start_up(KEYS)
    errors = Errors()
    client = Client(WRITE_KEY, host=up.base, gzip=gzip, on_error=errors, max_retries=3)
    prefix = f"py-{'gzip' if gzip else 'plain'}"
    messages = send_every_call(client, prefix)
    client.flush()
    client.join()
    assert errors.seen == []

    assert_landed_as_sent(up, messages, prefix)
    assert_each_once(up, messages, copies=0)


def test_a_call_with_an_unknown_write_key_is_refused_and_not_retried(start_up):
    up = start_up(KEYS)
    errors = Errors()
    with ForwardingProxy(up.base, lose_first_answer=False) as proxy:
        client = Client("wk_not_configured", host=proxy.url, on_error=errors, max_retries=3)
        _, message = client.track(anonymous_id="a", event="Nope", properties={"n": 1})
        client.flush()
        client.join()
    assert [(p["status"], p["retry_count"]) for p in proxy.posts] == [(401, None)], proxy.posts
    # 401 with Segment's error body: the library gives up at once (no retry storm).
    assert len(errors.seen) == 1, errors.seen
    [(error, batch)] = errors.seen
    assert "401" in error and "unauthorized" in error and batch == [message["messageId"]], errors.seen
    assert up.sql(f"SELECT count(*) AS n FROM segment_events WHERE message_id = '{message['messageId']}'") == [
        {"n": 0}
    ]


class ForwardingProxy:
    """A forwarding HTTP proxy in front of clickstream that records each POST: its
    headers, its (decompressed) body, clickstream's status and whether the answer was
    lost. With ``lose_first_answer`` it loses the answer to the first POST: clickstream
    takes and answers it, the proxy closes the client's connection without passing the
    answer on. Every other request is forwarded both ways."""

    def __init__(self, upstream: str, lose_first_answer: bool):
        host, port = upstream.removeprefix("http://").split(":")
        self.posts: list[dict] = []
        lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                connection = http.client.HTTPConnection(host, int(port), timeout=30)
                connection.request("POST", self.path, body=body, headers=headers)
                answer = connection.getresponse()
                answer_body = answer.read()
                connection.close()
                with lock:
                    lose = lose_first_answer and not proxy.posts
                    plain = gzip_module.decompress(body) if self.headers.get("Content-Encoding") == "gzip" else body
                    proxy.posts.append(
                        {
                            "path": self.path,
                            "retry_count": self.headers.get("X-Retry-Count"),
                            "content_encoding": self.headers.get("Content-Encoding"),
                            "body": json.loads(plain),
                            "status": answer.status,
                            "lost": lose,
                        }
                    )
                if lose:
                    # No status line at all: the client sees the connection closed.
                    self.close_connection = True
                    return
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("connection", "transfer-encoding", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer_body)))
                self.end_headers()
                self.wfile.write(answer_body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
def test_a_batch_retried_after_a_lost_answer_lands_once(start_up, gzip):
    up = start_up(KEYS)
    errors = Errors()
    prefix = f"py-retry-{'gzip' if gzip else 'plain'}"
    with ForwardingProxy(up.base, lose_first_answer=True) as proxy:
        client = Client(WRITE_KEY, host=proxy.url, gzip=gzip, on_error=errors, max_retries=3)
        messages = send_every_call(client, prefix)
        client.flush()
        client.join()
    assert errors.seen == []

    # The library sent the batch, clickstream took it (200), the answer was lost, and the
    # library sent the very same batch again, which was answered.
    posts = proxy.posts
    assert [(p["path"], p["status"], p["lost"], p["retry_count"]) for p in posts] == [
        ("/v1/batch", 200, True, None),
        ("/v1/batch", 200, False, "1"),
    ], posts
    assert all(p["content_encoding"] == ("gzip" if gzip else None) for p in posts)
    first, retry = (p["body"]["batch"] for p in posts)
    assert first == retry, "a retry resends the same calls"
    assert sorted(m["messageId"] for m in first) == sorted(m["messageId"] for m in messages.values())

    assert_each_once(up, messages, copies=1)
    assert_landed_as_sent(up, messages, prefix)
    duplicates = up.sql(
        f"SELECT message_id, type FROM segment_duplicates WHERE message_id IN ({in_list(messages)}) ORDER BY type"
    )
    assert [d["type"] for d in duplicates] == sorted(messages)


def test_the_settings_document_points_the_browser_library_at_this_port(start_up):
    """What analytics-next fetches before it sends anything (segment-wire.md §3): its
    calls go to the host the page reached us at, and nothing else is loaded."""
    up = start_up(KEYS)
    with urllib.request.urlopen(f"{up.base}/v1/projects/{WRITE_KEY}/settings", timeout=10) as response:
        assert response.status == 200
        settings = json.loads(response.read())
    host = up.base.removeprefix("http://")
    assert settings["integrations"] == {
        "Segment.io": {
            **settings["integrations"]["Segment.io"],
            "apiKey": WRITE_KEY,
            "apiHost": f"{host}/v1",
            "protocol": "http",
        }
    }
    assert settings["remotePlugins"] == [] and settings["metrics"] == {"sampleRate": 0}
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{up.base}/v1/projects/wk_unknown/settings", timeout=10)
    assert refused.value.code == 404
