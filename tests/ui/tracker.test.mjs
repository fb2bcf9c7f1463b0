// The first-party tracker (/tracker.js, served by ingest) in headless Chromium, against the
// real `clickstream up`: a shop page served from another origin loads the tracker from
// ingest, and what it sends is checked where it lands, in the lake's `segment_events` and
// `identities`, through the SQL API. Page views, a click, track and identify; a page left
// before the flush timer (the last batch goes by beacon); an offline spell and a blocked one
// across a reload (everything queued lands, each call once); 503, 429 with Retry-After and
// 400 answers; Do Not Track; consent; the demo shop ingest serves at /demo.
//
// CLICKSTREAM_TRACKER_JS=<path of tracker.js> (development only) answers the browser's
// requests for ingest's /tracker.js and /demo with that file and the demo.html beside it,
// for a binary built before they existed; unset, both come from ingest itself.

import {test, before, after} from "node:test";
import assert from "node:assert/strict";
import {existsSync, mkdirSync, mkdtempSync, readFileSync} from "node:fs";
import {createServer} from "node:http";
import {tmpdir} from "node:os";
import {dirname, join} from "node:path";
import {chromium} from "playwright-core";
import {ARTIFACTS, BIN, CHROMIUM, CHROMIUM_ARGS, cleanUp, eventually, startPipeline} from "./harness.mjs";

const WRITE_KEY = "tracker-test-write-key-0123456789";
const DEV_TRACKER = process.env.CLICKSTREAM_TRACKER_JS;

let server, siteServer, site, browser, work, ingest, ui;

/** The rows of `sql` through the UI port's SQL API. */
async function sqlRows(sql) {
  const response = await fetch(`${ui}/api/sql`, {method: "POST", headers: {"content-type": "application/json"},
    body: JSON.stringify({sql})});
  const text = await response.text();
  assert.equal(response.status, 200, `${sql}: ${text}`);
  return JSON.parse(text).rows;
}

const quoted = (s) => `'${String(s).replaceAll("'", "''")}'`;

/** Polls until `sql` returns exactly `n` rows; returns them. */
function rowsOf(what, sql, n, ms = 45_000) {
  return eventually(what, async () => {
    const rows = await sqlRows(sql);
    if (rows.length > n) assert.fail(`${what}: ${rows.length} rows, expected ${n}: ${JSON.stringify(rows)}`);
    return rows.length === n ? rows : null;
  }, ms);
}

/** Each of `ids` lands once in segment_events (and no other call of `anonymousId`'s does). */
async function landedOnce(what, ids) {
  const list = ids.map(quoted).join(", ");
  const rows = await rowsOf(what, `SELECT message_id, count(*) AS n FROM segment_events
    WHERE message_id IN (${list}) GROUP BY message_id`, ids.length);
  for (const row of rows) assert.equal(Number(row.n), 1, `${row.message_id} landed ${row.n} times`);
}

/** The site: a shop page loading the tracker from ingest (another origin), and a page to
 * leave to. The query picks the run (in the URL, so rows can be told apart), the flush
 * interval, consent, and whether the snippet queues a call before the tracker loads. */
function sitePage(url) {
  if (url.pathname === "/elsewhere") {
    return "<!doctype html><title>Elsewhere</title><p id=elsewhere>No tracker here.</p>";
  }
  const query = url.searchParams;
  const attributes = {"data-write-key": WRITE_KEY, "data-endpoint": ingest, "data-auto-clicks": "on"};
  if (query.get("flush")) attributes["data-flush-interval"] = query.get("flush");
  if (query.get("consent")) attributes["data-consent"] = query.get("consent");
  const attrs = Object.entries(attributes).map(([k, v]) => `${k}="${v}"`).join(" ");
  const snippet = query.get("snippet") ? 'clickstream("track", "Snippet Queued", {early: true});' : "";
  return `<!doctype html><html><head><title>Shop ${query.get("run")}</title>
<script>window.clickstream=window.clickstream||function(){(clickstream.q=clickstream.q||[]).push(arguments)};${snippet}</script>
<script src="${ingest}/tracker.js" ${attrs} defer></script></head>
<body><h1>Shop</h1>
<button id="buy" class="primary big" data-track="Buy">Buy <b>now</b></button>
<a id="leave" href="/elsewhere">Leave</a>
</body></html>`;
}

/** A fresh browser context (its own storage) on the site, with every request it makes to
 * ingest's calls path recorded (`requests`, `failed`). */
async function open(options = {}) {
  const context = await browser.newContext(options);
  if (DEV_TRACKER) {
    await context.route(`${ingest}/tracker.js`, (route) =>
      route.fulfill({body: readFileSync(DEV_TRACKER, "utf8"), contentType: "application/javascript; charset=utf-8"}));
    await context.route(/\/demo(\?.*)?$/, (route) => route.request().url().startsWith(ingest)
      ? route.fulfill({body: readFileSync(join(dirname(DEV_TRACKER), "demo.html"), "utf8"),
        contentType: "text/html; charset=utf-8"})
      : route.fallback());
  }
  const requests = [];
  const failed = [];
  context.on("request", (request) => {
    if (request.url().startsWith(`${ingest}/v1/`)) requests.push(request);
  });
  context.on("requestfailed", (request) => {
    if (request.url().startsWith(`${ingest}/v1/`)) failed.push(request);
  });
  // Beacons are sent by the browser process as the page goes: Playwright's request events
  // and routes never see them. The page notes each sendBeacon call and its answer in
  // sessionStorage, which the next page of the same origin in the tab reads (`beacons`).
  await context.addInitScript(() => {
    const send = navigator.sendBeacon.bind(navigator);
    navigator.sendBeacon = (url, data) => {
      const ok = send(url, data);
      const log = JSON.parse(sessionStorage.getItem("test_beacons") || "[]");
      sessionStorage.setItem("test_beacons", JSON.stringify(log.concat([{url, ok}])));
      return ok;
    };
  });
  const page = await context.newPage();
  page.on("pageerror", (error) => { throw error; });
  return {context, page, requests, failed};
}

/** The beacons the tab's pages of the site sent so far. */
const beacons = async (page) => JSON.parse(await page.evaluate(() => sessionStorage.getItem("test_beacons")) || "[]");

/** Loads `path` of the site and waits for the tracker. */
async function visit(page, path) {
  await page.goto(`${site}${path}`);
  await page.waitForFunction(() => window.clickstream && window.clickstream.version);
}

const stored = (page, key) => page.evaluate((k) => localStorage.getItem(k), key);
const queued = async (page) => JSON.parse((await stored(page, "cs_queue")) || "[]");
const properties = (row) => JSON.parse(row.properties);

before(async () => {
  assert.ok(existsSync(CHROMIUM), `Chromium is missing at ${CHROMIUM}: apt-get install chromium`);
  assert.ok(existsSync(BIN), `the clickstream binary is missing at ${BIN}: cargo build -p clickstream`);
  mkdirSync(ARTIFACTS, {recursive: true});
  work = mkdtempSync(join(tmpdir(), "clickstream-ui-tracker-"));
  const started = await startPipeline(join(work, "data"), {CLICKSTREAM_AUTH__WRITE_KEYS__WEB: WRITE_KEY});
  server = started.child;
  ingest = started.ingest;
  ui = started.ui;
  siteServer = createServer((request, response) => {
    response.writeHead(200, {"content-type": "text/html; charset=utf-8"});
    response.end(sitePage(new URL(request.url, "http://site.invalid")));
  });
  await new Promise((resolve) => siteServer.listen(0, "127.0.0.1", resolve));
  site = `http://127.0.0.1:${siteServer.address().port}`;
  assert.notEqual(new URL(site).origin, new URL(ingest).origin);
  browser = await chromium.launch({executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS});
});

after(async () => {
  siteServer?.closeAllConnections();
  siteServer?.close();
  await cleanUp(browser, server, work);
});

test("ingest serves the tracker as JavaScript, cacheable, and lets it read Retry-After", {skip: DEV_TRACKER && "CLICKSTREAM_TRACKER_JS is set"}, async () => {
  const response = await fetch(`${ingest}/tracker.js`);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "application/javascript; charset=utf-8");
  assert.equal(response.headers.get("cache-control"), "public, max-age=300");
  const source = await response.text();
  assert.match(source, /clickstream\.js/);
  const demo = await fetch(`${ingest}/demo`);
  assert.equal(demo.status, 200);
  assert.match(demo.headers.get("content-type"), /^text\/html/);
  assert.match(await demo.text(), /\/tracker\.js/);
  // A 429's or 503's Retry-After is readable by a page's script: CORS exposes it.
  const call = await fetch(`${ingest}/v1/batch`, {method: "POST",
    headers: {"origin": "http://site.example", "content-type": "text/plain"},
    body: JSON.stringify({writeKey: WRITE_KEY, batch: [{type: "track", event: "Probe", anonymousId: "probe"}]})});
  assert.equal(call.status, 200);
  assert.equal(call.headers.get("access-control-allow-origin"), "*");
  assert.match(call.headers.get("access-control-expose-headers") ?? "", /retry-after/i);
});

test("page view, a click and track land once, from the page's anonymous id", async () => {
  const {context, page, requests} = await open();
  try {
    await visit(page, "/shop?run=s1&snippet=1");
    const anonymousId = await stored(page, "cs_anonymous_id");
    assert.match(anonymousId, /^[0-9a-f-]{36}$/);
    assert.equal(await page.evaluate(() => clickstream.anonymousId()), anonymousId);
    await page.click("#buy");
    await page.evaluate(() => clickstream.track("Order Completed", {revenue: 9.5}));
    const rows = await rowsOf("four calls land", `SELECT message_id, type, event, properties, anonymous_id,
        user_agent, context_library.name AS library, context_library.version AS version,
        context_page.url AS url, context_page.title AS title, context_locale, source
      FROM segment_events WHERE anonymous_id = ${quoted(anonymousId)}`, 4);
    const userAgent = await page.evaluate(() => navigator.userAgent);
    assert.match(userAgent, /Chrome\//);
    for (const row of rows) {
      assert.equal(row.library, "clickstream.js");
      assert.match(row.version, /^\d+\.\d+\.\d+$/);
      assert.equal(row.user_agent, userAgent);
      assert.equal(row.url, `${site}/shop?run=s1&snippet=1`);
      assert.equal(row.title, "Shop s1");
      assert.equal(row.source, "web", "the write key in the body names the source");
    }
    assert.deepEqual(rows.map((r) => r.type).sort(), ["page", "track", "track", "track"]);
    const page_ = rows.find((r) => r.type === "page");
    assert.equal(properties(page_).path, "/shop");
    assert.equal(properties(page_).search, "?run=s1&snippet=1");
    assert.deepEqual(properties(rows.find((r) => r.event === "Snippet Queued")), {early: true});
    const click = properties(rows.find((r) => r.event === "Element Clicked"));
    assert.equal(click.tag, "button");
    assert.equal(click.text, "Buy now");
    assert.equal(click.id, "buy");
    assert.deepEqual(click.classes, ["primary", "big"]);
    assert.equal(click.track, "Buy");
    assert.equal(click.selector, "button#buy");
    assert.deepEqual(properties(rows.find((r) => r.event === "Order Completed")), {revenue: 9.5});
    assert.equal(new Set(rows.map((r) => r.message_id)).size, 4);
    // Sent as text/plain with the key in the body: a simple request, no preflight.
    assert.ok(requests.length >= 1);
    for (const request of requests) {
      assert.equal(request.method(), "POST");
      assert.equal(request.url(), `${ingest}/v1/batch`);
      assert.match(request.headers()["content-type"], /^text\/plain/);
      assert.equal(request.headers().authorization, undefined);
      assert.equal(JSON.parse(request.postData()).writeKey, WRITE_KEY);
    }
    await eventually("the queue empties once ingest answered", async () => (await queued(page)).length === 0);
  } finally {
    await context.close();
  }
});

test("identify links the anonymous id to the user id, and later calls carry it", async () => {
  const {context, page} = await open();
  try {
    await visit(page, "/shop?run=s2");
    const anonymousId = await stored(page, "cs_anonymous_id");
    await page.evaluate(() => clickstream.identify("u-1", {email: "u1@example.com"}));
    await page.evaluate(() => clickstream.track("After Login"));
    assert.equal(await stored(page, "cs_user_id"), "u-1");
    const links = await rowsOf("the identity link", `SELECT link, anonymous_id, user_id FROM identities
      WHERE user_id = 'u-1' AND link = 'identify'`, 1);
    assert.equal(links[0].link, "identify");
    assert.equal(links[0].anonymous_id, anonymousId);
    const rows = await rowsOf("identify and the later track", `SELECT type, traits, user_id, anonymous_id
      FROM segment_events WHERE anonymous_id = ${quoted(anonymousId)} AND type <> 'page' ORDER BY type`, 2);
    assert.deepEqual(JSON.parse(rows[0].traits), {email: "u1@example.com"});
    assert.deepEqual(rows.map((r) => [r.type, r.user_id]), [["identify", "u-1"], ["track", "u-1"]]);
    // reset() forgets both ids: the next call is another visitor's.
    await page.evaluate(() => clickstream.reset());
    assert.equal(await stored(page, "cs_user_id"), null);
    const next = await page.evaluate(() => clickstream.anonymousId());
    assert.notEqual(next, anonymousId);
    assert.equal(await stored(page, "cs_anonymous_id"), next);
  } finally {
    await context.close();
  }
});

test("a page left before the flush timer delivers its last calls by beacon", async () => {
  const {context, page, requests} = await open();
  try {
    // A flush interval far beyond the test's deadline: only the unload can send.
    await visit(page, "/shop?run=s3&flush=600000");
    const anonymousId = await stored(page, "cs_anonymous_id");
    await page.evaluate(() => clickstream.track("Left Quickly", {step: 3}));
    assert.equal((await queued(page)).length, 2, "the page view and the track wait for the timer");
    assert.equal(requests.length, 0);
    await page.click("#leave"); // an "Element Clicked" too, then the page is gone
    await page.waitForSelector("#elsewhere");
    const rows = await rowsOf("the calls of the page left", `SELECT type, event FROM segment_events
      WHERE anonymous_id = ${quoted(anonymousId)} ORDER BY type, event`, 3);
    assert.deepEqual(rows.map((r) => `${r.type}:${r.event ?? ""}`), ["page:", "track:Element Clicked", "track:Left Quickly"]);
    // Same origin as the shop: its storage tells how they went.
    assert.deepEqual(await beacons(page), [{url: `${ingest}/v1/batch`, ok: true}]);
    assert.equal(requests.length, 0, "no fetch: the timer never fired");
    assert.equal(await stored(page, "cs_queue"), null, "beaconed calls left the queue");
  } finally {
    await context.close();
  }
});

test("offline, and blocked across a reload: everything queued lands once when back", async () => {
  const {context, page, requests, failed} = await open();
  try {
    await visit(page, "/shop?run=s4");
    const anonymousId = await stored(page, "cs_anonymous_id");
    await rowsOf("the first page view", `SELECT message_id FROM segment_events
      WHERE anonymous_id = ${quoted(anonymousId)}`, 1);
    await eventually("the first page view left the queue", async () => (await queued(page)).length === 0);

    // Offline (navigator.onLine false): nothing is attempted, the calls wait in localStorage.
    await context.setOffline(true);
    const sentBefore = requests.length;
    await page.evaluate(() => { for (let i = 1; i <= 3; i++) clickstream.track("Offline Call", {i}); });
    await page.evaluate(() => clickstream.flush());
    const offline = await queued(page);
    assert.deepEqual(offline.map((c) => c.properties.i), [1, 2, 3]);
    assert.equal(requests.length, sentBefore, "no request while offline");
    const ids = offline.map((c) => quoted(c.messageId)).join(", ");
    const landed = await sqlRows(`SELECT count(*) AS n FROM segment_events WHERE message_id IN (${ids})`);
    assert.equal(Number(landed[0].n), 0, "nothing landed while offline");
    await context.setOffline(false); // the `online` event sends them
    await landedOnce("the offline calls", offline.map((c) => c.messageId));
    await eventually("the queue empties", async () => (await queued(page)).length === 0);

    // Requests to ingest fail (server unreachable) while the page is reloaded: the queue
    // survives the reload, and what both pages queued lands once the requests go through.
    await context.route(`${ingest}/v1/**`, (route) => route.abort("connectionrefused"));
    const failedBefore = failed.length;
    await page.evaluate(() => { clickstream.track("Blocked Call", {i: 1}); clickstream.track("Blocked Call", {i: 2}); });
    await page.evaluate(() => clickstream.flush());
    await eventually("a send and a retry failed", async () => failed.length >= failedBefore + 2);
    const blocked = await queued(page);
    assert.deepEqual(blocked.map((c) => c.event), ["Blocked Call", "Blocked Call"]);
    await page.reload();
    await page.waitForFunction(() => window.clickstream && window.clickstream.version);
    const kept = await queued(page);
    const keptIds = kept.map((c) => c.messageId);
    for (const call of blocked) assert.ok(keptIds.includes(call.messageId), "kept across the reload");
    assert.ok(kept.some((c) => c.type === "page"), "the reloaded page's view is queued too");
    await context.unroute(`${ingest}/v1/**`);
    await landedOnce("the calls queued while blocked", keptIds);
    await eventually("the queue empties", async () => (await queued(page)).length === 0);
    // Retries resent the same messageIds: ingest kept one of each, the rest as duplicates.
    const all = await sqlRows(`SELECT message_id, count(*) AS n FROM segment_events
      WHERE anonymous_id = ${quoted(anonymousId)} GROUP BY message_id`);
    assert.equal(all.length, 1 + offline.length + kept.length);
    assert.ok(all.every((r) => Number(r.n) === 1), JSON.stringify(all));
  } finally {
    await context.close();
  }
});

test("ingest's answers: 503 and 429 are retried, waiting as Retry-After says; a 400 drops the batch", async () => {
  const {context, page} = await open();
  const plan = [ // answers for the next requests to /v1/batch; then they go through to ingest
    {status: 503, code: "unavailable"},
    {status: 429, code: "rate_limited", headers: {"retry-after": "3"}},
  ];
  const seen = [];
  await context.route(`${ingest}/v1/batch`, async (route) => {
    const ids = JSON.parse(route.request().postData()).batch.map((call) => call.messageId);
    const answer = plan.shift();
    seen.push({at: Date.now(), ids, status: answer ? answer.status : "ingest"});
    if (!answer) return route.continue();
    // As ingest answers (the script may read Retry-After: it is exposed to CORS).
    return route.fulfill({status: answer.status, contentType: "application/json",
      headers: {"access-control-allow-origin": "*", "access-control-expose-headers": "Retry-After", ...answer.headers},
      body: JSON.stringify({success: false, code: answer.code, message: `test ${answer.status}`})});
  });
  const warnings = [];
  page.on("console", (message) => message.text().startsWith("clickstream.js:") && warnings.push(message.text()));
  try {
    await visit(page, "/shop?run=s7");
    const anonymousId = await stored(page, "cs_anonymous_id");
    await rowsOf("the page view, after a 503 and a 429", `SELECT message_id FROM segment_events
      WHERE anonymous_id = ${quoted(anonymousId)}`, 1);
    assert.deepEqual(seen.map((s) => s.status), [503, 429, "ingest"]);
    assert.ok(seen.every((s) => JSON.stringify(s.ids) === JSON.stringify(seen[0].ids)), "the same messageIds resent");
    const waited = seen[2].at - seen[1].at;
    assert.ok(waited >= 2900, `retried ${waited} ms after a 429 with Retry-After: 3`);

    plan.push({status: 400, code: "invalid_request"});
    await page.evaluate(() => clickstream.track("Refused Call"));
    await page.evaluate(() => clickstream.flush());
    assert.equal((await queued(page)).length, 0, "a refused batch is dropped");
    await eventually("the refusal is logged", async () => warnings.some((w) => /refused 1 call\(s\) \(400\): test 400/.test(w)));
    await page.evaluate(() => clickstream.track("After Refusal"));
    await page.evaluate(() => clickstream.flush());
    await rowsOf("the next call", `SELECT event FROM segment_events
      WHERE anonymous_id = ${quoted(anonymousId)} AND event = 'After Refusal'`, 1);
    assert.equal(seen.filter((s) => s.status === 400).length, 1, "not retried");
    assert.equal(warnings.length, 1);
  } finally {
    await context.close();
  }
});

test("Do Not Track: nothing is sent or stored", async () => {
  const {context, page, requests} = await open();
  try {
    await context.addInitScript(() => Object.defineProperty(Navigator.prototype, "doNotTrack", {get: () => "1"}));
    await visit(page, "/shop?run=s5");
    await page.click("#buy");
    await page.evaluate(() => clickstream.track("Should Not Leave"));
    await page.evaluate(() => clickstream.identify("u-dnt"));
    await page.evaluate(() => clickstream.flush());
    assert.equal(await page.evaluate(() => clickstream.anonymousId()), null);
    await page.click("#leave"); // the unload path too
    await page.waitForSelector("#elsewhere");
    const keys = await page.evaluate(() => Object.keys(localStorage).concat(document.cookie ? [document.cookie] : []));
    assert.deepEqual(keys, []);
    assert.equal(requests.length, 0, requests.map((r) => r.url()).join("\n"));
    assert.deepEqual(await beacons(page), []);
    const rows = await sqlRows("SELECT count(*) AS n FROM segment_events WHERE context_page.url LIKE '%run=s5%'");
    assert.equal(Number(rows[0].n), 0);
  } finally {
    await context.close();
  }
});

test("consent required: nothing until consent(true), then what was held lands", async () => {
  const {context, page, requests} = await open();
  try {
    await visit(page, "/shop?run=s6&consent=required");
    await page.evaluate(() => clickstream.track("Before Consent"));
    await page.evaluate(() => clickstream.flush());
    assert.deepEqual(await page.evaluate(() => Object.keys(localStorage)), []);
    assert.equal(requests.length, 0);
    await page.evaluate(() => clickstream.consent(true));
    const anonymousId = await stored(page, "cs_anonymous_id");
    assert.ok(anonymousId);
    const rows = await rowsOf("the held calls", `SELECT type, event FROM segment_events
      WHERE anonymous_id = ${quoted(anonymousId)} ORDER BY type`, 2);
    assert.deepEqual(rows.map((r) => r.type), ["page", "track"]);
    // Remembered for the next page of the site.
    await visit(page, "/shop?run=s6&consent=required");
    await rowsOf("the next page's view", `SELECT type FROM segment_events
      WHERE anonymous_id = ${quoted(anonymousId)} AND type = 'page'`, 2);
    // Withdrawn: the ids and the queue are forgotten, and nothing more is sent, here or on
    // the next page.
    await eventually("the queue empties", async () => (await queued(page)).length === 0);
    await page.evaluate(() => clickstream.consent(false));
    assert.deepEqual(await page.evaluate(() => ({...localStorage})), {cs_consent: "denied"});
    const sent = requests.length;
    const beaconed = (await beacons(page)).length;
    await visit(page, "/shop?run=s6&consent=required");
    await page.evaluate(() => clickstream.track("After Withdrawal"));
    await page.evaluate(() => clickstream.flush());
    await page.click("#leave");
    await page.waitForSelector("#elsewhere");
    assert.equal(requests.length, sent);
    assert.equal((await beacons(page)).length, beaconed);
    assert.deepEqual(await page.evaluate(() => ({...localStorage})), {cs_consent: "denied"});
  } finally {
    await context.close();
  }
});

test("the demo shop at /demo sends page views, clicks and its own tracks", async () => {
  const {context, page} = await open();
  try {
    await page.goto(`${ingest}/demo?write_key=${WRITE_KEY}`);
    await page.waitForFunction(() => window.clickstream && window.clickstream.version);
    await page.click('#products a[href*="id=boots"]');
    await page.waitForSelector("#product:not([hidden])");
    await page.click("#add-to-cart");
    await page.click('header a[href="?p=cart"]');
    await page.click("#checkout");
    await page.waitForSelector("#done:not([hidden])");
    await page.click('header a[href="?p=login"]');
    await page.fill('#login-form input[name="email"]', "ada@example.com");
    await page.click('#login-form button[type="submit"]');
    const anonymousId = await page.evaluate(() => clickstream.anonymousId());
    const rows = await eventually("the demo's calls land", async () => {
      const r = await sqlRows(`SELECT type, event, name, properties, context_page.title AS title
        FROM segment_events WHERE anonymous_id = ${quoted(anonymousId)}`);
      const events = new Set(r.map((x) => x.event));
      return ["Product Added", "Order Completed"].every((e) => events.has(e)) &&
        r.some((x) => x.type === "identify") && r.filter((x) => x.type === "page").length >= 5 ? r : null;
    });
    const added = properties(rows.find((r) => r.event === "Product Added"));
    assert.equal(added.product_id, "boots");
    const order = properties(rows.find((r) => r.event === "Order Completed"));
    assert.equal(order.revenue, 129);
    const titles = rows.filter((r) => r.type === "page").map((r) => r.title);
    assert.ok(titles.includes("Trail boots · Demo shop"), titles.join(", "));
    assert.ok(rows.some((r) => r.event === "Element Clicked" && properties(r).track === "Add to Cart"));
    await rowsOf("the demo login's identity", `SELECT anonymous_id FROM identities
      WHERE user_id = 'user-ada' AND link = 'identify'`, 1);
    await page.screenshot({path: join(ARTIFACTS, "tracker-demo.png")});
  } finally {
    await context.close();
  }
});
