// Segment's own JavaScript libraries send to `clickstream up` (debug build, free ports, temp
// dir) exactly as they would send to Segment, configured as docs/design/segment-wire.md §2-3
// says, and every call lands once in the lake with what was sent:
// - @segment/analytics-node (exact-pinned in package.json): the six call types, and a batch
//   whose answer is lost on the way back (a proxy closes the connection after clickstream
//   answered), which the library sends again: it lands once, the copies in
//   segment_duplicates.
// - @segment/analytics-next, the npm package's browser build, in headless Chromium on a page
//   served from another loopback origin (so every send is a CORS request with a preflight):
//   it fetches its settings document from us, sends nothing anywhere else, and each call
//   lands once with the browser's anonymousId and user agent; identities links that id to
//   the user id. Once with standard delivery (one POST per call to /v1/{p,t,i,a,g,s}) and
//   once with batching (POST /v1/b), and once losing a call's answer in the browser.
//
// Run by scripts/test with the other browser tests; alone: `npm ci`, then
// `CLICKSTREAM_BIN=… node --test segment.test.mjs` in this directory.

import {test, before, after} from "node:test";
import assert from "node:assert/strict";
import {existsSync, mkdtempSync, readFileSync} from "node:fs";
import {createServer} from "node:http";
import {createRequire} from "node:module";
import {tmpdir} from "node:os";
import {dirname, join} from "node:path";
import {Analytics} from "@segment/analytics-node";
import {chromium} from "playwright-core";
import {BIN, CHROMIUM, CHROMIUM_ARGS, cleanUp, eventually, startPipeline} from "./harness.mjs";

const require = createRequire(import.meta.url);
const NODE_PACKAGE = JSON.parse(readFileSync(require.resolve("@segment/analytics-node/package.json"), "utf8"));
const BROWSER_PACKAGE_DIR = dirname(require.resolve("@segment/analytics-next/package.json"));
const BROWSER_PACKAGE = JSON.parse(readFileSync(join(BROWSER_PACKAGE_DIR, "package.json"), "utf8"));
const BROWSER_BUNDLE = readFileSync(join(BROWSER_PACKAGE_DIR, "dist/umd/index.js"));

// One write key per library; the key names the source (`source` in the lake).
const NODE_KEY = "wk_node_library_test";
const WEB_KEY = "wk_browser_library_test";
const LAND_MS = 60_000;

const ORDER = {
  revenue: 42.5, currency: "EUR", "order id": "o-2002",
  products: [{sku: "boot-1", price: 19.99, quantity: 2, tags: ["winter"]}, {sku: "sock-7", price: 2.52, quantity: 1}],
  shipping: {method: "express", address: {city: "Zürich", zip: "8001"}},
  coupon: null, "first order": true,
};
const TRAITS = {email: "ada@example.com", name: "Ada", plan: "pro", logins: 3, address: {city: "London"}};

let server, work, ingest, ui, browser;

before(async () => {
  assert.ok(existsSync(CHROMIUM), `Chromium is missing at ${CHROMIUM}: apt-get install chromium`);
  assert.ok(existsSync(BIN), `the clickstream binary is missing at ${BIN}: cargo build -p clickstream`);
  work = mkdtempSync(join(tmpdir(), "clickstream-segment-"));
  const started = await startPipeline(join(work, "data"), {
    CLICKSTREAM_AUTH__WRITE_KEYS__SERVER: NODE_KEY,
    CLICKSTREAM_AUTH__WRITE_KEYS__WEB: WEB_KEY,
  });
  server = started.child;
  ingest = started.ingest.replace(/\/$/, "");
  ui = started.ui.replace(/\/$/, "");
  browser = await chromium.launch({executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS});
});

after(() => cleanUp(browser, server, work));

async function sql(query) {
  const response = await fetch(`${ingest}/api/sql`, {
    method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify({sql: query}),
  });
  const text = await response.text();
  assert.equal(response.status, 200, `${query}: ${text}`);
  return JSON.parse(text).rows;
}

/** Polls `query` (one row, column `n`) until it says `expected`; fails at once past it. */
async function waitForCount(query, expected) {
  await eventually(`${query} = ${expected}`, async () => {
    const [{n}] = await sql(query);
    if (n > expected) throw new assert.AssertionError({message: `${query}: ${n}, more than ${expected}`});
    return n === expected;
  }, LAND_MS);
}

const inList = (ids) => ids.map((id) => `'${id.replaceAll("'", "''")}'`).join(", ");

/**
 * Waits until each of `sent` (the calls as the library put them on the wire) is in
 * segment_events, checks each is there once with its type, ids, properties and traits, and
 * returns the rows by messageId.
 */
async function assertLandedAsSent(sent, {source, library}) {
  const ids = sent.map((call) => call.messageId);
  assert.equal(new Set(ids).size, ids.length, "each call has a messageId of its own");
  await waitForCount(`SELECT count(*) AS n FROM segment_events WHERE message_id IN (${inList(ids)})`, ids.length);
  const rows = await sql(`SELECT message_id, type, event, name, category, user_id, anonymous_id, previous_id,
      group_id, properties, traits, source, user_agent, ip, context_library, context_locale, context_page,
      original_timestamp FROM segment_events WHERE message_id IN (${inList(ids)})`);
  const byId = new Map(rows.map((row) => [row.message_id, row]));
  assert.equal(byId.size, ids.length, JSON.stringify(rows));
  for (const call of sent) {
    const row = byId.get(call.messageId);
    const what = `${call.type} ${call.messageId}`;
    assert.equal(row.type, call.type, what);
    assert.equal(row.source, source, `${what}: the write key names the source`);
    for (const [column, field] of [["event", "event"], ["name", "name"], ["category", "category"],
      ["user_id", "userId"], ["anonymous_id", "anonymousId"], ["previous_id", "previousId"], ["group_id", "groupId"]]) {
      assert.equal(row[column], call[field] ?? null, `${what}: ${column}`);
    }
    for (const column of ["properties", "traits"]) {
      if (call[column] === undefined) {
        assert.equal(row[column], null, `${what}: ${column} was not sent`);
      } else {
        assert.notEqual(row[column], null, `${what}: ${column} lost`);
        assert.deepEqual(JSON.parse(row[column]), call[column], `${what}: ${column}`);
      }
    }
    assert.deepEqual(row.context_library, library, `${what}: context_library`);
    assert.equal(new Date(row.original_timestamp).getTime(), new Date(call.timestamp).getTime(), `${what}: timestamp`);
  }
  return byId;
}

/** No messageId twice in segment_events; `copies` of each in segment_duplicates. */
async function assertEachOnce(ids, copies) {
  await waitForCount(`SELECT count(*) AS n FROM segment_duplicates WHERE message_id IN (${inList(ids)})`,
    copies * ids.length);
  assert.deepEqual(await sql(`SELECT message_id FROM segment_events WHERE message_id IN (${inList(ids)})
    GROUP BY message_id HAVING count(*) > 1`), []);
  await waitForCount(`SELECT count(*) AS n FROM segment_events WHERE message_id IN (${inList(ids)})`, ids.length);
}

/**
 * Checks the identities table against the calls (the rule of `identity_link` in
 * crates/process/src/segment.rs): an alias links its previous id to the user id; an
 * identify that carried a user id and an anonymous id links those; other calls link
 * nothing; the call's type is `link`.
 */
async function assertIdentities(sent) {
  const link = (call) => {
    if (call.type === "alias") return call.previousId ? {anonymous_id: null, previous_id: call.previousId} : null;
    if (call.type === "identify") return call.anonymousId ? {anonymous_id: call.anonymousId, previous_id: null} : null;
    return null;
  };
  const expected = sent.filter((call) => call.userId && link(call))
    .map((call) => ({link: call.type, user_id: call.userId, ...link(call), message_id: call.messageId}))
    .sort((a, b) => (a.message_id < b.message_id ? -1 : 1));
  const ids = inList(sent.map((call) => call.messageId));
  await waitForCount(`SELECT count(*) AS n FROM identities WHERE message_id IN (${ids})`, expected.length);
  const links = await sql(`SELECT link, user_id, anonymous_id, previous_id, message_id FROM identities
    WHERE message_id IN (${ids}) ORDER BY message_id`);
  assert.deepEqual(links, expected);
  return links;
}

/**
 * A forwarding proxy in front of clickstream that records each POST (path, retry header,
 * body, clickstream's status) and, with `loseFirstAnswer`, loses the answer to the first:
 * clickstream takes and answers it, the proxy destroys the client's connection instead of
 * passing the answer on.
 */
async function forwardingProxy({loseFirstAnswer}) {
  const posts = [];
  const proxy = createServer(async (request, response) => {
    const chunks = [];
    for await (const chunk of request) chunks.push(chunk);
    const body = Buffer.concat(chunks);
    const headers = {...request.headers};
    for (const hop of ["host", "connection", "content-length", "keep-alive"]) delete headers[hop];
    const answer = await fetch(`${ingest}${request.url}`, {method: request.method, headers, body});
    const answerBody = Buffer.from(await answer.arrayBuffer());
    const lose = loseFirstAnswer && posts.length === 0;
    posts.push({path: request.url, retryCount: request.headers["x-retry-count"] ?? null,
      body: JSON.parse(body.toString("utf8")), status: answer.status, lost: lose});
    if (lose) {
      request.socket.destroy();
      return;
    }
    response.writeHead(answer.status, {"content-type": answer.headers.get("content-type") ?? "application/json"});
    response.end(answerBody);
  });
  await new Promise((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  return {url: `http://127.0.0.1:${proxy.address().port}`, posts,
    close: () => new Promise((resolve) => { proxy.closeAllConnections(); proxy.close(resolve); })};
}

/** The six calls of a visit that ends in a login, through analytics-node. */
function sendEveryCall(analytics, prefix) {
  const anonymousId = `${prefix}-anon`, userId = `${prefix}-user`;
  const context = {ip: "81.2.69.142", locale: "de-DE", timezone: "Europe/Berlin"};
  analytics.page({anonymousId, category: "Shop", name: "Boots",
    properties: {url: "https://shop.example/boots", path: "/boots"}, context});
  analytics.track({anonymousId, event: "Order Completed", properties: ORDER, context});
  analytics.identify({userId, anonymousId, traits: TRAITS, context});
  analytics.group({userId, groupId: `${prefix}-group`, traits: {name: "Acme Inc", employees: 120}});
  analytics.screen({userId, category: "App", name: "Cart", properties: {items: 2}});
  analytics.alias({userId, previousId: `${prefix}-old`});
}

const NODE_LIBRARY = {name: "@segment/analytics-node", version: NODE_PACKAGE.version};

/** Runs analytics-node against `host` and returns what it put on the wire and its errors. */
async function runNodeLibrary(host, prefix) {
  const analytics = new Analytics({writeKey: NODE_KEY, host, flushAt: 6, flushInterval: 60_000, maxRetries: 3});
  const errors = [], requests = [], responses = [];
  analytics.on("error", (error) => errors.push(error));
  analytics.on("http_request", (request) => requests.push(request));
  analytics.on("http_response", (response) => responses.push(response.status));
  sendEveryCall(analytics, prefix);
  await analytics.closeAndFlush({timeout: 30_000});
  return {errors, requests, responses};
}

test("@segment/analytics-node: every call type lands once as sent, identities linked", async () => {
  const {errors, requests, responses} = await runNodeLibrary(ingest, "node");
  assert.deepEqual(errors, []);
  assert.deepEqual(responses, [200], "one batch of six, answered 200");
  const [request] = requests;
  assert.equal(request.url, `${ingest}/v1/batch`);
  assert.equal(request.headers.Authorization, `Basic ${Buffer.from(`${NODE_KEY}:`).toString("base64")}`);
  const sent = JSON.parse(request.body).batch;
  assert.deepEqual(sent.map((call) => call.type), ["page", "track", "identify", "group", "screen", "alias"]);
  assert.deepEqual(sent[1].properties, ORDER, "the library sends the properties as given");

  const rows = await assertLandedAsSent(sent, {source: "server", library: NODE_LIBRARY});
  const track = rows.get(sent[1].messageId);
  assert.equal(track.ip, "81.2.69.142", "context.ip is the call's ip");
  assert.equal(track.context_locale, "de-DE");
  await assertEachOnce(sent.map((call) => call.messageId), 0);

  // identify links the anonymous id, alias the previous id, to the user id.
  const links = await assertIdentities(sent);
  assert.deepEqual(links.map((l) => [l.link, l.anonymous_id ?? l.previous_id, l.user_id]).sort(),
    [["alias", "node-old", "node-user"], ["identify", "node-anon", "node-user"]]);
});

test("@segment/analytics-node: a batch whose answer is lost is sent again and lands once", async () => {
  const proxy = await forwardingProxy({loseFirstAnswer: true});
  let run;
  try {
    run = await runNodeLibrary(proxy.url, "node-retry");
  } finally {
    await proxy.close();
  }
  assert.deepEqual(run.errors, []);
  // Taken by clickstream (200), answer lost; the same batch again, answered.
  assert.deepEqual(proxy.posts.map((p) => [p.path, p.status, p.lost, p.retryCount]),
    [["/v1/batch", 200, true, null], ["/v1/batch", 200, false, "1"]]);
  const [first, retry] = proxy.posts.map((p) => p.body.batch);
  assert.deepEqual(retry, first, "a retry resends the same calls");

  const ids = first.map((call) => call.messageId);
  await assertEachOnce(ids, 1);
  await assertLandedAsSent(first, {source: "server", library: NODE_LIBRARY});
  const duplicates = await sql(`SELECT type FROM segment_duplicates WHERE message_id IN (${inList(ids)}) ORDER BY type`);
  assert.deepEqual(duplicates.map((d) => d.type), ["alias", "group", "identify", "page", "screen", "track"]);
  await assertIdentities(first);
});

/**
 * A page on a loopback origin of its own (not ingest's): `/` is an empty page that loads
 * the npm package's browser build from `/analytics-next/index.js`.
 */
async function pageServer() {
  const pages = createServer((request, response) => {
    if (request.url === "/analytics-next/index.js") {
      response.writeHead(200, {"content-type": "text/javascript"});
      response.end(BROWSER_BUNDLE);
    } else if (request.url === "/" || request.url.startsWith("/shop")) {
      response.writeHead(200, {"content-type": "text/html; charset=utf-8"});
      response.end(`<!doctype html><html><head><title>Boots</title>
        <script src="/analytics-next/index.js"></script></head><body><h1>Boots</h1></body></html>`);
    } else if (request.url === "/favicon.ico") {
      response.writeHead(204).end();
    } else {
      response.writeHead(404).end();
    }
  });
  await new Promise((resolve) => pages.listen(0, "127.0.0.1", resolve));
  return {origin: `http://127.0.0.1:${pages.address().port}`,
    close: () => new Promise((resolve) => { pages.closeAllConnections(); pages.close(resolve); })};
}

/**
 * Opens the shop page in a fresh browser context, loads analytics-next pointed at us
 * (segment-wire.md §3: settings from `cdnURL`, calls to `apiHost` over `protocol`), makes
 * the calls and returns: every request the page made, every POST (body and status), the
 * calls' messageIds by type, the browser's anonymousId and user agent, the page's errors.
 * `route`, if given, is installed on the context before the page opens.
 */
async function runBrowserLibrary({deliveryStrategy, route} = {}) {
  const site = await pageServer();
  const context = await browser.newContext();
  const requests = [], failed = [], errors = [], posts = [];
  try {
    if (route) await route(context);
    const page = await context.newPage();
    const postOf = new Map();
    page.on("request", (request) => {
      requests.push({url: request.url(), method: request.method()});
      if (request.method() === "POST") {
        const post = {url: request.url(), body: JSON.parse(request.postData()), status: null};
        postOf.set(request, post);
        posts.push(post);
      }
    });
    page.on("requestfinished", async (request) => {
      const post = postOf.get(request);
      if (post) post.status = (await request.response())?.status() ?? null;
    });
    page.on("requestfailed", (request) => failed.push(`${request.url()}: ${request.failure()?.errorText}`));
    page.on("pageerror", (error) => errors.push(String(error)));
    page.on("console", (message) => {
      if (message.type() === "error") errors.push(`${message.text()} (${message.location().url})`);
    });
    const settingsAnswer = page.waitForResponse((response) => response.url().includes("/settings"));
    await page.goto(`${site.origin}/shop/boots?utm_source=news&utm_medium=email`);
    const apiHost = `${new URL(ingest).host}/v1`;
    const called = await page.evaluate(async ({writeKey, cdnURL, apiHost, deliveryStrategy}) => {
      const analytics = window.AnalyticsNext.AnalyticsBrowser.load({writeKey, cdnURL},
        {integrations: {"Segment.io": {apiHost, protocol: "http", ...(deliveryStrategy ? {deliveryStrategy} : {})}}});
      const [instance] = await analytics;
      const ids = {};
      const keep = (ctx) => { ids[ctx.event.type] = ctx.event.messageId; };
      // One after the other, as a page's handlers would call them.
      keep(await analytics.page());
      keep(await analytics.track("Order Completed", {revenue: 12.5, currency: "EUR", items: [{sku: "boot-1"}]}));
      keep(await analytics.identify("user-1", {email: "ada@example.com", plan: "pro"}));
      keep(await analytics.alias("user-1", "legacy-42"));
      keep(await analytics.group("org-1", {name: "Acme Inc"}));
      keep(await analytics.screen("Checkout", {step: 2}));
      return {ids, anonymousId: instance.user().anonymousId(), userAgent: navigator.userAgent};
    }, {writeKey: WEB_KEY, cdnURL: ingest, apiHost, deliveryStrategy});
    // The calls' promises may resolve before their POST is answered (batching, retries):
    // the page stays open until each call has been answered 200.
    await eventually("every call answered 200", () => Object.values(called.ids).every((id) =>
      posts.some((post) => post.status === 200 && (post.body.batch ?? [post.body]).some((c) => c.messageId === id))),
    LAND_MS);
    const settings = await settingsAnswer;
    return {...called, requests, posts, failed, errors, site, settingsUrl: settings.url(),
      settingsStatus: settings.status()};
  } finally {
    await context.close();
    await site.close();
  }
}

/** The calls as they went to us: from the POST bodies, one entry per messageId. */
function callsOnTheWire(posts) {
  const calls = new Map();
  for (const {body} of posts) {
    for (const call of body.batch ?? [body]) {
      if (call.messageId && !calls.has(call.messageId)) calls.set(call.messageId, call);
    }
  }
  return calls;
}

/** The checks every browser run passes, whatever the delivery. */
async function assertBrowserRun(run, {callPaths, pageErrors = []}) {
  assert.deepEqual(run.errors, pageErrors, "no other error on the page");
  const origins = new Set(run.requests.map((r) => new URL(r.url).origin));
  assert.deepEqual([...origins].sort(), [run.site.origin, new URL(ingest).origin].sort(),
    `every request goes to the page's own server or to ingest: ${JSON.stringify(run.requests)}`);
  assert.ok(!run.requests.some((r) => /segment\.(com|io)/.test(r.url)));
  assert.equal(run.settingsUrl, `${ingest}/v1/projects/${WEB_KEY}/settings`);
  assert.equal(run.settingsStatus, 200);
  const posted = [...new Set(run.posts.map((p) => new URL(p.url).pathname))].sort();
  assert.deepEqual(posted, callPaths, "the paths the calls were posted to");

  const types = Object.keys(run.ids).sort();
  assert.deepEqual(types, ["alias", "group", "identify", "page", "screen", "track"]);
  const wire = callsOnTheWire(run.posts);
  const sent = types.map((type) => {
    const call = wire.get(run.ids[type]);
    assert.ok(call, `the ${type} call was posted`);
    return call;
  });
  const library = {name: "analytics.js", version: `next-${BROWSER_PACKAGE.version}`};
  for (const call of sent) {
    assert.deepEqual(call.context.library, library);
    assert.equal(call.anonymousId, run.anonymousId, "every call carries the browser's anonymousId");
  }
  const byType = Object.fromEntries(sent.map((call) => [call.type, call]));
  assert.deepEqual(byType.track.properties, {revenue: 12.5, currency: "EUR", items: [{sku: "boot-1"}]});
  assert.deepEqual(byType.identify.traits, {email: "ada@example.com", plan: "pro"});

  const rows = await assertLandedAsSent(sent, {source: "web", library});
  for (const call of sent) {
    const row = rows.get(call.messageId);
    assert.equal(row.anonymous_id, run.anonymousId);
    assert.equal(row.user_agent, run.userAgent, "the browser's user agent");
    assert.equal(row.ip, "127.0.0.1", "the connection's address");
  }
  const page = rows.get(run.ids.page);
  assert.equal(page.context_page.url, `${run.site.origin}/shop/boots?utm_source=news&utm_medium=email`);
  assert.equal(page.context_page.path, "/shop/boots");
  assert.equal(page.context_page.title, "Boots");
  const campaign = await sql(`SELECT utm_source, utm_medium FROM segment_events WHERE message_id = '${run.ids.track}'`);
  assert.deepEqual(campaign, [{utm_source: "news", utm_medium: "email"}]);
  return sent;
}

/** identities links this browser's anonymousId to user-1, from identify on. */
async function assertBrowserIdentities(run, sent) {
  const links = await assertIdentities(sent);
  const byLink = Object.fromEntries(links.map((l) => [l.link, l]));
  assert.equal(byLink.identify?.anonymous_id, run.anonymousId, JSON.stringify(links));
  assert.equal(byLink.identify.user_id, "user-1");
  assert.equal(byLink.alias?.previous_id, "legacy-42", JSON.stringify(links));
  assert.equal(byLink.alias.user_id, "user-1");
  assert.ok(!byLink.page && !byLink.track, "no link before the user is known");
}

test("@segment/analytics-next in Chromium, standard delivery: settings from us, each call once", async () => {
  const run = await runBrowserLibrary();
  assert.deepEqual(run.failed, [], "no request failed (a CORS refusal would)");
  const sent = await assertBrowserRun(run, {callPaths: ["/v1/a", "/v1/g", "/v1/i", "/v1/p", "/v1/s", "/v1/t"]});
  // One POST per call: nothing was retried, so every answer passed CORS and said 200.
  assert.equal(run.posts.length, sent.length, JSON.stringify(run.posts.map((p) => p.url)));
  await assertEachOnce(sent.map((call) => call.messageId), 0);
  await assertBrowserIdentities(run, sent);
});

test("@segment/analytics-next in Chromium, batching delivery: one POST to /v1/b, each call once", async () => {
  const run = await runBrowserLibrary({deliveryStrategy: {strategy: "batching", config: {size: 6, timeout: 500}}});
  assert.deepEqual(run.failed, []);
  const sent = await assertBrowserRun(run, {callPaths: ["/v1/b"]});
  await assertEachOnce(sent.map((call) => call.messageId), 0);
  await assertBrowserIdentities(run, sent);
});

test("@segment/analytics-next in Chromium: a call whose answer is lost is sent again and lands once", async () => {
  // The first POST of the track call goes to clickstream (which takes it and answers), then
  // the browser is told the connection failed; the library sends it again itself.
  let lost = null;
  const route = (context) => context.route(`${ingest}/v1/t`, async (route) => {
    if (lost === null && route.request().method() === "POST") {
      const answer = await route.fetch();
      lost = {status: answer.status(), messageId: JSON.parse(route.request().postData()).messageId};
      await route.abort("connectionreset");
      return;
    }
    await route.continue();
  });
  const run = await runBrowserLibrary({route});
  assert.deepEqual(lost, {status: 200, messageId: run.ids.track}, "clickstream took the first attempt");
  assert.equal(run.failed.length, 1, `one failed attempt: ${run.failed}`);
  // The library's retry comes after the call's promise resolved: wait for it.
  const sent = await assertBrowserRun(run, {callPaths: ["/v1/a", "/v1/g", "/v1/i", "/v1/p", "/v1/s", "/v1/t"],
    pageErrors: [`Failed to load resource: net::ERR_CONNECTION_RESET (${ingest}/v1/t)`]});
  await waitForCount(`SELECT count(*) AS n FROM segment_duplicates WHERE message_id = '${run.ids.track}'`, 1);
  await assertEachOnce(sent.map((call) => call.messageId).filter((id) => id !== run.ids.track), 0);
  await assertEachOnce([run.ids.track], 1);
  await assertBrowserIdentities(run, sent);
});

test("the UI shows the Segment stream beside the original: overview card, processors, message browser", async () => {
  // One event of the original stream and one Segment call that is refused, beside the
  // calls the tests above sent.
  const raw = {id: 990001, type: "page_view", event: {user_agent: "Mozilla/5.0 (X11; Linux x86_64; rv:133.0)",
    ip: "81.2.69.142", customer_id: 7, timestamp: "2026-12-06T10:00:00.000000", page: "https://shop.example/"}};
  const auth = {authorization: `Basic ${Buffer.from(`${NODE_KEY}:`).toString("base64")}`};
  const collected = await fetch(`${ingest}/collect`, {method: "POST",
    headers: {"content-type": "application/json", ...auth}, body: JSON.stringify([raw])});
  assert.equal(collected.status, 200, await collected.text());
  const refused = await fetch(`${ingest}/v1/track`, {method: "POST",
    headers: {"content-type": "application/json", ...auth},
    body: JSON.stringify({anonymousId: "ui-anon", event: 42, properties: {}})});
  assert.equal(refused.status, 400);
  const refusal = await refused.json();
  assert.equal(refusal.success, false);
  assert.match(refusal.refused?.[0]?.reason ?? "", /event/, JSON.stringify(refusal));
  await waitForCount("SELECT count(*) AS n FROM segment_invalid_events", 1);
  await waitForCount("SELECT count(*) AS n FROM events WHERE id = 990001", 1);

  // What the lake holds now; every accepted call is in segment_events or kept apart as a
  // retry, so the topic holds their sum.
  const [{calls, retries, links, refusals}] = await sql(`SELECT
      (SELECT count(*) FROM segment_events) AS calls, (SELECT count(*) FROM segment_duplicates) AS retries,
      (SELECT count(*) FROM identities) AS links, (SELECT count(*) FROM segment_invalid_events) AS refusals`);
  assert.ok(calls >= 24 && links >= 8, `the tests above landed their calls: ${calls} calls, ${links} links`);

  const page = await browser.newPage();
  try {
    page.on("pageerror", (error) => { throw error; });
    await page.goto(`${ui}/#/overview`);
    const card = '[data-testid="total-segment"]';
    // The UI samples once a second, and the page may have loaded a snapshot taken before the
    // refusal above: wait for the whole card, not only its total (which that call leaves as it was).
    const expected = `${calls} in the lake, ${retries} retries kept apart, ${refusals} refused, ${links} identity links`;
    await eventually("the Segment card counts every call taken, refused and linked", async () => {
      const total = Number(await page.getAttribute(card, "data-value"));
      const sub = await page.textContent(`.card:has(${card}) .sub`);
      if (total === calls + retries && sub === expected) return true;
      throw new Error(`the card shows ${total} taken, "${sub}"; expected ${calls + retries}, "${expected}"`);
    }, LAND_MS);
    assert.equal(Number(await page.getAttribute('[data-testid="total-valid"]', "data-value")), 1,
      "the original stream's card beside it");
    const components = await eventually("both processors caught up", async () => {
      const all = await page.$$eval('[data-testid="components"] li', (items) =>
        items.map((li) => [li.dataset.component, li.dataset.status, li.textContent]));
      return all.filter(([, status, text]) => status === "ok" && /caught up/.test(text)).length === 2 && all;
    }, LAND_MS);
    assert.deepEqual(components.map(([name]) => name).sort(),
      ["lake", "log", "processor", "registry", "segment_processor"]);
    assert.match(components.find(([name]) => name === "segment_processor")[2], /clickstream-segment-processor/);

    // The message browser decodes a Segment call through the registry, like a raw event.
    await page.goto(`${ui}/#/topics/${encodeURIComponent("acme.clickstream.segment.events")}`);
    const rows = await eventually("the Segment topic's records listed", async () => {
      const n = await page.$$eval('[data-testid="messages"] tbody tr', (trs) => trs.length);
      return n === calls + retries ? n : 0;
    }, LAND_MS);
    assert.ok(rows > 0);
    assert.match(await page.textContent('[data-testid="messages"] tbody tr:first-child'), /avro · schema \d+/);
    const first = '[data-testid="messages"] tbody tr:first-child';
    const [partition, offset] = [Number(await page.getAttribute(first, "data-partition")),
      Number(await page.getAttribute(first, "data-offset"))];
    await page.click(first);
    const decoded = JSON.parse(await page.textContent('[data-testid="decoded"]'));
    assert.deepEqual(Object.keys(decoded).slice(0, 2), ["message_id", "type"], "fields in schema order");
    // The row this record became: a retry is kept apart under its own log position (and
    // analytics-next may send a retry with fields the first attempt lacked, such as a user id
    // set in between); a first copy is in segment_events under its message id.
    const messageId = decoded.message_id.replaceAll("'", "''");
    const [retry] = await sql(`SELECT message_id, type, anonymous_id, user_id FROM segment_duplicates
      WHERE source_partition = ${partition} AND source_offset = ${offset}`);
    const [landed] = retry ? [retry] : await sql(`SELECT message_id, type, anonymous_id, user_id
      FROM segment_events WHERE message_id = '${messageId}'`);
    assert.ok(landed, `the decoded call ${decoded.message_id} (${partition}:${offset}) is in the lake`);
    assert.deepEqual([decoded.message_id, decoded.type, decoded.anonymous_id, decoded.user_id],
      [landed.message_id, landed.type, landed.anonymous_id, landed.user_id]);

    // And the refused call, on its own topic, with its reason.
    await page.goto(`${ui}/#/topics/${encodeURIComponent("acme.clickstream.segment.invalid")}`);
    await eventually("the refused call listed", async () =>
      (await page.$$eval('[data-testid="messages"] tbody tr', (trs) => trs.length)) === 1, LAND_MS);
  } finally {
    await page.close();
  }
});
