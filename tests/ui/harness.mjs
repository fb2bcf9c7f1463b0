// What the browser tests share: where the binary and Chromium are, starting `clickstream up`
// on free ports, and waiting for a condition.

import assert from "node:assert/strict";
import {spawn} from "node:child_process";
import {rmSync} from "node:fs";
import {dirname, join, resolve} from "node:path";
import {createInterface} from "node:readline";
import {fileURLToPath} from "node:url";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const ARTIFACTS = join(REPO, "test-artifacts", "ui");
export const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
export const BIN = process.env.CLICKSTREAM_BIN ||
  join(process.env.CARGO_TARGET_DIR || join(process.env.HOME, ".cache/clickstream-target"), "debug/clickstream");
export const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"];

/** Polls `check` until it returns a truthy value, or fails after `ms`. */
export async function eventually(what, check, ms = 30_000) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
      last = value;
    } catch (e) { last = e; }
    if (Date.now() > deadline) assert.fail(`${what}: not within ${ms / 1000} s (last: ${last})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Starts `clickstream up` and resolves with its ingest and UI URLs from the startup line. */
export function startPipeline(dataDir, env = {}) {
  const child = spawn(BIN, ["--data-dir", dataDir, "--log-format", "json", "up",
    "--api-port", "0", "--registry-port", "0", "--ui-port", "0", "--rest-proxy-port", "0"], {
    env: {...process.env, CLICKSTREAM_INGEST__HOST: "127.0.0.1", CLICKSTREAM_REGISTRY__HOST: "127.0.0.1",
      CLICKSTREAM_UI__HOST: "127.0.0.1", RUST_LOG: "info", ...env},
    stdio: ["ignore", "ignore", "pipe"],
  });
  const lines = [];
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error(`no startup line in 60 s:\n${lines.join("\n")}`)), 60_000);
    child.on("exit", (code) => reject(new Error(`clickstream exited with ${code}:\n${lines.join("\n")}`)));
    createInterface({input: child.stderr}).on("line", (line) => {
      if (lines.length < 200) lines.push(line);
      let entry;
      try { entry = JSON.parse(line); } catch { return; }
      const fields = entry.fields || {};
      if (String(fields.message).startsWith("clickstream is up")) {
        clearTimeout(timer);
        resolvePromise({child, ingest: fields.ingest, ui: fields.ui, registry: fields.registry});
      }
    });
  });
}


/** Closes the browser, stops `clickstream` (SIGTERM, up to 20 s) and removes `work`. */
export async function cleanUp(browser, child, work) {
  await browser?.close();
  if (child && child.exitCode === null) {
    child.kill("SIGTERM");
    await new Promise((r) => { child.once("exit", r); setTimeout(r, 20_000); });
  }
  if (work) rmSync(work, {recursive: true, force: true});
}
