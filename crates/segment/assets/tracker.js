/*! clickstream.js: the first-party browser tracker, served by clickstream's ingest at
 * /tracker.js. No dependencies; plain ES2017.
 *
 *   <script src="https://ingest.example/tracker.js" data-write-key="WRITE_KEY" defer></script>
 *
 * Attributes of the script tag (all optional):
 *   data-write-key       the write key, sent in the body as `writeKey`
 *   data-endpoint        where calls go (default: the origin this file came from)
 *   data-auto-pageviews  "off" to send no page view on load and on history changes (default on)
 *   data-auto-clicks     "on" to track clicks on a, button and [data-track] (default off)
 *   data-respect-dnt     "off" to ignore Do Not Track / Global Privacy Control (default on)
 *   data-consent         "required": nothing is stored or sent until clickstream.consent(true);
 *                        consent(false) stops everything; either choice is kept (cs_consent)
 *   data-flush-interval  ms between sends (default 2000); data-flush-at: calls that send at once (20)
 *
 * API (also callable as clickstream("track", ...) through the snippet below, before load):
 *   clickstream.track(event, properties)   clickstream.page(name, properties)
 *   clickstream.identify(userId, traits)   clickstream.reset()
 *   clickstream.consent(true | false)      clickstream.flush() -> Promise
 *   clickstream.anonymousId()              clickstream.userId()
 *
 *   <script>window.clickstream=window.clickstream||function(){(clickstream.q=clickstream.q||[]).push(arguments)}</script>
 *
 * Every call is a Segment call (type, messageId, anonymousId, userId, timestamp, context,
 * properties / traits) posted to <endpoint>/v1/batch as text/plain (no CORS preflight).
 * Calls wait in localStorage (cs_queue) until ingest answers 2xx, so a reload or an offline
 * spell loses nothing; retries resend the same messageIds and ingest keeps each once. On
 * pagehide the queue goes by navigator.sendBeacon. The anonymous id is first-party:
 * localStorage cs_anonymous_id, or a cookie of that name where localStorage is unavailable.
 */
(() => {
  "use strict";

  const VERSION = "1.0.0";
  const LIBRARY = {name: "clickstream.js", version: VERSION};
  const KEY = {anon: "cs_anonymous_id", user: "cs_user_id", queue: "cs_queue", consent: "cs_consent"};
  const MAX_QUEUE = 1000; // calls kept while ingest is unreachable; beyond it the oldest go
  const MAX_BATCH = 100; // calls in one request
  const MAX_BATCH_BYTES = 500000; // and their size (ingest takes 10 MiB by default)
  const BEACON_BYTES = 60000; // browsers allow 64 KiB of beacons in flight per page
  const BACKOFF_MS = 1000; // first retry, doubled per failure, with jitter...
  const MAX_BACKOFF_MS = 60000; // ...up to this; a Retry-After up to 5 minutes wins
  const TIMEOUT_MS = 15000; // a request not answered by then is retried
  const TEXT_CAP = 100; // characters of a clicked element's text

  const stub = window.clickstream;
  if (stub && stub.version) return; // loaded twice

  // Configuration: the script tag's data-* attributes.
  const script = document.currentScript || document.querySelector('script[src*="tracker.js"]');
  const attr = (name) => {
    const value = script && script.getAttribute("data-" + name);
    return value == null || value === "" ? null : value.trim();
  };
  const flag = (name, fallback) => (attr(name) == null ? fallback : !/^(off|false|no|0)$/i.test(attr(name)));
  const count = (name, fallback) => {
    const n = Number(attr(name));
    return Number.isFinite(n) && n > 0 ? n : fallback;
  };
  const origin = script && script.src ? new URL(script.src, location.href).origin : location.origin;
  const config = {
    writeKey: attr("write-key"),
    url: (attr("endpoint") || origin).replace(/\/+$/, "") + "/v1/batch",
    autoPageviews: flag("auto-pageviews", true),
    autoClicks: flag("auto-clicks", false),
    consentRequired: attr("consent") === "required",
    flushInterval: count("flush-interval", 2000),
    flushAt: count("flush-at", 20),
  };
  const dnt = flag("respect-dnt", true) && (navigator.doNotTrack === "1" || window.doNotTrack === "1" ||
    navigator.msDoNotTrack === "1" || navigator.globalPrivacyControl === true);

  // Storage: localStorage, else a first-party cookie for the ids and memory for the queue.
  // Under Do Not Track it is not even probed.
  const storage = dnt ? null : (() => {
    try {
      const s = window.localStorage;
      s.setItem("cs_probe", "1");
      s.removeItem("cs_probe");
      return s;
    } catch (e) {
      return null;
    }
  })();
  const cookie = {
    get: (name) => {
      const found = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
      return found ? decodeURIComponent(found.slice(name.length + 1)) : null;
    },
    set: (name, value, maxAge) => {
      const secure = location.protocol === "https:" ? "; Secure" : "";
      document.cookie = `${name}=${encodeURIComponent(value)}; path=/; max-age=${maxAge}; SameSite=Lax${secure}`;
    },
  };
  const read = (key) => {
    try {
      return storage ? storage.getItem(key) : cookie.get(key);
    } catch (e) {
      return null;
    }
  };
  const write = (key, value) => {
    try {
      if (storage) value == null ? storage.removeItem(key) : storage.setItem(key, value);
      else if (key !== KEY.queue) cookie.set(key, value == null ? "" : value, value == null ? 0 : 31536000);
    } catch (e) {
      return false; // full or forbidden: memory is all there is
    }
    return true;
  };

  // Consent: "granted", "denied" (remembered either way), or not given yet.
  let choice = dnt ? null : read(KEY.consent);
  let granted = !dnt && choice !== "denied" && (!config.consentRequired || choice === "granted");
  let anonymousId = null;
  let userId = granted ? read(KEY.user) : null;
  let held = []; // calls made before consent, in memory only
  let memoryQueue = [];
  let storeQueue = true; // false once localStorage refused the queue

  const uuid = () => {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const b = new Uint8Array(16);
    if (window.crypto && crypto.getRandomValues) crypto.getRandomValues(b);
    else for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  };
  const anonymous = () => {
    if (!anonymousId) {
      anonymousId = (granted && read(KEY.anon)) || uuid();
      if (granted) write(KEY.anon, anonymousId);
    }
    return anonymousId;
  };

  // The queue: localStorage is the truth (shared by the site's tabs), memory the fallback.
  const load = () => {
    if (!storage || !storeQueue) return memoryQueue;
    try {
      const q = JSON.parse(storage.getItem(KEY.queue) || "[]");
      return Array.isArray(q) ? q.filter((call) => call && typeof call === "object") : [];
    } catch (e) {
      return [];
    }
  };
  const save = (q) => {
    memoryQueue = q.length > MAX_QUEUE ? q.slice(q.length - MAX_QUEUE) : q;
    if (!storage || !storeQueue) return;
    if (!write(KEY.queue, memoryQueue.length ? JSON.stringify(memoryQueue) : null)) {
      storeQueue = false;
      write(KEY.queue, null);
    }
  };
  const remove = (ids) => save(load().filter((call) => !ids.has(call.messageId)));

  // The page as it is now; after a history change the referrer is the previous URL.
  let referrer = document.referrer;
  const pageInfo = () => ({
    url: location.href,
    path: location.pathname,
    referrer,
    title: document.title,
    search: location.search,
  });
  const CAMPAIGN = {utm_campaign: "name", utm_source: "source", utm_medium: "medium", utm_term: "term", utm_content: "content"};
  const context = () => {
    const ctx = {page: pageInfo(), userAgent: navigator.userAgent, locale: navigator.language, library: LIBRARY};
    try {
      ctx.timezone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    } catch (e) { /* no Intl */ }
    if (window.screen) ctx.screen = {width: screen.width, height: screen.height, density: window.devicePixelRatio};
    const params = new URLSearchParams(location.search);
    for (const [param, field] of Object.entries(CAMPAIGN)) {
      if (params.get(param)) (ctx.campaign = ctx.campaign || {})[field] = params.get(param);
    }
    return ctx;
  };
  const object = (value) => (value && typeof value === "object" && !Array.isArray(value) ? value : {});

  const record = (type, fields) => {
    if (dnt || choice === "denied") return;
    let call = Object.assign({type, messageId: uuid(), anonymousId: anonymous(),
      timestamp: new Date().toISOString(), context: context()}, fields);
    if (userId != null) call.userId = userId;
    try {
      call = JSON.parse(JSON.stringify(call)); // as sent, whatever the caller changes later
    } catch (e) {
      return console.warn(`clickstream.js: ${type} call dropped, not JSON: ${e}`);
    }
    if (!granted) {
      if (held.length < MAX_BATCH) held.push(call);
      return;
    }
    const q = load();
    q.push(call);
    save(q);
    schedule(q.length >= config.flushAt ? 0 : config.flushInterval);
  };

  // Sending: one request at a time; a call leaves the queue on 2xx (delivered) or on a 4xx
  // other than 408/429 (refused: ingest keeps it with its reason); otherwise it stays and
  // is retried with backoff. Retries carry the same messageIds: ingest lands each once.
  let timer = null;
  let due = 0;
  let failures = 0;
  let retryAt = 0;
  let inflight = null;
  let again = false;
  let warned = false;

  const schedule = (delay) => {
    const at = Math.max(Date.now() + delay, retryAt);
    if (timer && due <= at) return;
    clearTimeout(timer);
    due = at;
    timer = setTimeout(() => {
      timer = null;
      flush();
    }, at - Date.now());
  };
  const envelope = (batch) => {
    const body = {batch, sentAt: new Date().toISOString()};
    if (config.writeKey) body.writeKey = config.writeKey;
    return JSON.stringify(body);
  };
  const encoder = typeof TextEncoder === "function" ? new TextEncoder() : null;
  const take = (q, maxCalls, maxBytes) => {
    const batch = [];
    let bytes = 0;
    for (const call of q) {
      const text = JSON.stringify(call);
      const size = (encoder ? encoder.encode(text).length : text.length * 3) + 1;
      if (batch.length && (batch.length >= maxCalls || bytes + size > maxBytes)) break;
      batch.push(call);
      bytes += size;
    }
    return batch;
  };
  const retryAfter = (response) => {
    const value = response.headers.get("Retry-After");
    if (!value) return 0;
    const ms = /^\d+$/.test(value) ? Number(value) * 1000 : Date.parse(value) - Date.now();
    return Number.isFinite(ms) && ms > 0 ? Math.min(ms, 300000) : 0;
  };
  const backoff = () => {
    const ms = Math.min(MAX_BACKOFF_MS, BACKOFF_MS * 2 ** (failures - 1));
    return ms / 2 + Math.random() * (ms / 2);
  };
  const post = async (batch) => {
    const abort = typeof AbortController === "function" ? new AbortController() : null;
    const timeout = setTimeout(() => abort && abort.abort(), TIMEOUT_MS);
    try {
      const response = await fetch(config.url, {method: "POST", body: envelope(batch), mode: "cors",
        credentials: "omit", headers: {"Content-Type": "text/plain"}, signal: abort && abort.signal});
      const status = response.status;
      if (status >= 200 && status < 300) return {status: "sent"};
      if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
        if (!warned) {
          warned = true;
          const answer = await response.json().catch(() => ({}));
          console.warn(`clickstream.js: ingest refused ${batch.length} call(s) (${status}): ${answer.message || ""}`);
        }
        return {status: "refused"};
      }
      return {status: "retry", wait: retryAfter(response)};
    } catch (e) {
      return {status: "retry", wait: 0}; // offline, blocked, timed out, CORS
    } finally {
      clearTimeout(timeout);
    }
  };
  const drain = async () => {
    while (granted && navigator.onLine !== false && Date.now() >= retryAt) {
      const batch = take(load(), MAX_BATCH, MAX_BATCH_BYTES);
      if (!batch.length) return;
      const outcome = await post(batch);
      if (outcome.status === "retry") {
        failures += 1;
        retryAt = Date.now() + Math.max(outcome.wait, backoff());
        break;
      }
      failures = 0;
      remove(new Set(batch.map((call) => call.messageId)));
    }
    // Offline: the `online` event sends; in backoff: the timer does.
    if (granted && navigator.onLine !== false && load().length) schedule(0);
  };
  const flush = () => {
    if (inflight) {
      again = true;
      return inflight;
    }
    clearTimeout(timer);
    timer = null;
    const done = () => {
      inflight = null;
      if (again) {
        again = false;
        schedule(0);
      }
    };
    inflight = drain().then(done, done);
    return inflight;
  };

  // Leaving the page: what is queued goes by beacon (a keepalive fetch where refused).
  // Beaconed calls leave the queue only while ingest was answering; otherwise they stay
  // for the next page, and a copy that did arrive is kept once by ingest. Offline or
  // while backing off (as a 429's Retry-After asks), the queue just waits for the next page.
  const beaconed = new Set();
  const leave = () => {
    if (!granted || navigator.onLine === false || Date.now() < retryAt) return;
    let q = load().filter((call) => !beaconed.has(call.messageId));
    const sent = new Set();
    while (q.length) {
      const batch = take(q, MAX_BATCH, BEACON_BYTES);
      const body = envelope(batch);
      let ok = false;
      try {
        ok = navigator.sendBeacon(config.url, new Blob([body], {type: "text/plain"}));
      } catch (e) { /* no sendBeacon */ }
      if (!ok) {
        try {
          const ids = new Set(batch.map((call) => call.messageId));
          fetch(config.url, {method: "POST", body, keepalive: true, mode: "cors", credentials: "omit",
            headers: {"Content-Type": "text/plain"}})
            .then((response) => response.ok && remove(ids), () => {});
        } catch (e) { /* over the keepalive quota: left for the next page */ }
        break;
      }
      for (const call of batch) {
        beaconed.add(call.messageId);
        sent.add(call.messageId);
      }
      q = q.slice(batch.length);
    }
    if (sent.size && failures === 0) remove(sent);
  };

  // Automatic page views: on load, and when the URL (but its hash) changes through history.
  let lastUrl = null;
  const autoPage = () => {
    const url = location.href.split("#")[0];
    if (url === lastUrl) return;
    if (lastUrl) referrer = lastUrl;
    lastUrl = url;
    api.page();
  };

  // Automatic clicks: a, button and [data-track] elements (not inside [data-no-track]).
  const esc = window.CSS && CSS.escape ? CSS.escape : (s) => s;
  const selector = (element) => {
    const parts = [];
    for (let n = element; n && n.nodeType === 1 && parts.length < 5; n = n.parentElement) {
      const tag = n.tagName.toLowerCase();
      if (n.id) {
        parts.unshift(`${tag}#${esc(n.id)}`);
        break;
      }
      let part = tag + Array.from(n.classList).slice(0, 2).map((c) => "." + esc(c)).join("");
      const siblings = n.parentElement ? Array.from(n.parentElement.children).filter((c) => c.tagName === n.tagName) : [];
      if (siblings.length > 1) part += `:nth-of-type(${siblings.indexOf(n) + 1})`;
      parts.unshift(part);
      if (tag === "body") break;
    }
    return parts.join(" > ");
  };
  const clicked = (event) => {
    const target = event.target && event.target.closest ? event.target : event.target && event.target.parentElement;
    const element = target && target.closest("a, button, [data-track]");
    if (!element || element.closest("[data-no-track]")) return;
    const properties = {
      tag: element.tagName.toLowerCase(),
      text: (element.innerText || element.textContent || "").replace(/\s+/g, " ").trim().slice(0, TEXT_CAP),
      selector: selector(element),
    };
    if (typeof element.href === "string" && element.href) properties.href = element.href;
    if (element.id) properties.id = element.id;
    if (element.classList.length) properties.classes = Array.from(element.classList);
    if (element.getAttribute("data-track")) properties.track = element.getAttribute("data-track");
    api.track("Element Clicked", properties);
  };

  // The API.
  const api = function clickstream(method, ...args) {
    if (typeof api[method] === "function") return api[method](...args);
    console.warn(`clickstream.js: no method ${method}`);
    return undefined;
  };
  Object.assign(api, {
    version: VERSION,
    track(event, properties) {
      if (typeof event !== "string" || !event) return console.warn("clickstream.js: track needs an event name");
      return record("track", {event, properties: object(properties)});
    },
    page(name, properties) {
      if (name && typeof name === "object") [name, properties] = [null, name];
      const fields = {properties: Object.assign(pageInfo(), object(properties))};
      if (name) fields.name = String(name);
      return record("page", fields);
    },
    identify(id, traits) {
      if (id && typeof id === "object") [id, traits] = [null, id];
      if (id != null && id !== "") {
        userId = String(id);
        if (granted) write(KEY.user, userId);
      }
      return record("identify", {traits: object(traits)});
    },
    reset() {
      if (dnt) return;
      anonymousId = null;
      userId = null;
      write(KEY.anon, null);
      write(KEY.user, null);
    },
    consent(yes) {
      if (dnt) return;
      granted = yes !== false;
      choice = granted ? "granted" : "denied";
      write(KEY.consent, choice);
      if (!granted) {
        held = [];
        save([]);
        clearTimeout(timer);
        timer = null;
        api.reset();
        return;
      }
      if (anonymousId) write(KEY.anon, anonymousId);
      if (userId != null) write(KEY.user, userId);
      const q = load().concat(held);
      held = [];
      save(q);
      schedule(0);
    },
    flush: () => (inflight ? inflight.then(api.flush) : flush()),
    anonymousId: () => (dnt ? null : anonymous()),
    userId: () => userId,
  });
  window.clickstream = api;

  if (!dnt) {
    addEventListener("pagehide", leave);
    document.addEventListener("visibilitychange", () => document.visibilityState === "hidden" && leave());
    addEventListener("online", () => {
      failures = 0;
      retryAt = 0;
      schedule(0);
    });
    if (config.autoClicks) document.addEventListener("click", clicked, true);
    if (config.autoPageviews) {
      for (const method of ["pushState", "replaceState"]) {
        const original = history[method];
        history[method] = function (...args) {
          const result = original.apply(this, args);
          setTimeout(autoPage, 0); // once the app has set the new page's title
          return result;
        };
      }
      addEventListener("popstate", autoPage);
    }
  }
  if (granted && load().length) schedule(0); // left by an earlier page
  // Calls made through the snippet before this file loaded, in order; then the page view.
  for (const args of (stub && stub.q) || []) api(...args);
  if (!dnt && config.autoPageviews) autoPage();
})();
