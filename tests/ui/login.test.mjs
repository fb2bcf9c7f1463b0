// The web UI behind an admin token, in headless Chromium: a logged-out browser gets the
// login page (not the browser's own credentials prompt), a wrong token is refused with the
// server's reason, the right one shows the data, and logging out closes it again.

import {test, before, after} from "node:test";
import assert from "node:assert/strict";
import {existsSync, mkdirSync, mkdtempSync} from "node:fs";
import {tmpdir} from "node:os";
import {join} from "node:path";
import {chromium} from "playwright-core";
import {ARTIFACTS, BIN, CHROMIUM, CHROMIUM_ARGS, cleanUp, eventually, startPipeline} from "./harness.mjs";

const TOKEN = "browser-test-admin-token-0123456789";
let server, context, page, work, ui;

before(async () => {
  assert.ok(existsSync(CHROMIUM), `Chromium is missing at ${CHROMIUM}: apt-get install chromium`);
  assert.ok(existsSync(BIN), `the clickstream binary is missing at ${BIN}: cargo build -p clickstream`);
  mkdirSync(ARTIFACTS, {recursive: true});
  work = mkdtempSync(join(tmpdir(), "clickstream-ui-login-"));
  const started = await startPipeline(join(work, "data"), {CLICKSTREAM_ADMIN_TOKEN: TOKEN});
  server = started.child;
  ui = started.ui;
  context = await chromium.launchPersistentContext(join(work, "chromium-profile"), {
    executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: {width: 1200, height: 800},
  });
  page = context.pages()[0] || await context.newPage();
  page.on("pageerror", (error) => { throw error; });
  // A Basic challenge would open the browser's own prompt, which a page cannot style.
  page.on("dialog", (dialog) => { throw new Error(`unexpected dialog: ${dialog.message()}`); });
});

after(() => cleanUp(context, server, work));

test("the UI's data needs the token: login page, refusal, access, logout", async () => {
  const anonymous = await fetch(`${ui}/api/ui/overview`);
  assert.equal(anonymous.status, 401);
  assert.match(anonymous.headers.get("www-authenticate"), /^Bearer/);
  assert.match((await anonymous.json()).message, /admin token/);

  await page.goto(`${ui}/#/sql`);
  await page.waitForSelector('[data-testid="login-form"]');
  assert.match(page.url(), /#\/login\?next=/);

  await page.fill('[data-testid="login-token"]', "not-the-token-at-all-0000");
  await page.click('[data-testid="login-submit"]');
  await eventually("the refusal is shown", async () =>
    /not the admin token/.test(await page.textContent('[data-testid="login-message"]')));

  await page.fill('[data-testid="login-token"]', TOKEN);
  await page.click('[data-testid="login-submit"]');
  await page.waitForSelector('[data-testid="sql-editor"]');
  assert.match(page.url(), /#\/sql$/, "back on the page that asked for the login");
  await eventually("a query runs with the session", async () =>
    /events/.test(await page.textContent('[data-testid="sql-result"]')));
  const cookies = await context.cookies(ui);
  const session = cookies.find((c) => c.name === "clickstream_session");
  assert.ok(session && session.httpOnly && session.sameSite === "Strict", JSON.stringify(cookies));
  await page.screenshot({path: join(ARTIFACTS, "logged-in.png")});

  await page.click('[data-testid="logout"]');
  await page.waitForSelector('[data-testid="login-form"]');
  await page.goto(`${ui}/#/overview`);
  await page.waitForSelector('[data-testid="login-form"]');
});
