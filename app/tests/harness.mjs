// A small harness for the browser tests, whose output test/run.sh counts:
// one line per test, "ok - FILE: NAME" or "not ok - FILE: NAME: why".
//
// Tests run in order within a file and may build on each other. The
// browser is Debian's Chromium, driven by playwright-core: no browser is
// ever downloaded.

import { mkdirSync, readFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const BASE_URL = process.env.LIKES_APP_URL || "http://127.0.0.1:" + (process.env.LIKES_HTTP_PORT || "8080");
export const SCREENSHOTS = process.env.LIKES_SCREENSHOT_DIR || join(process.env.LIKES_RUN_DIR || join(ROOT, "run"), "screenshots");
export const IMAGES = join(ROOT, "test/data/images");
const CHROMIUM = process.env.LIKES_CHROMIUM || "/usr/bin/chromium";

const suites = [];

// Registers the tests of one file: suite(import.meta.url, (test) => { test("name", async () => …) }).
export function suite(fileUrl, define) {
  const tests = [];
  define((name, body) => tests.push({ name, body }));
  suites.push({ file: basename(fileURLToPath(fileUrl)), tests });
}

export function check(condition, message) {
  if (!condition) throw new Error(message);
}

export function checkEqual(expected, actual, what) {
  if (JSON.stringify(expected) !== JSON.stringify(actual)) {
    throw new Error(what + ": expected " + JSON.stringify(expected) + ", got " + JSON.stringify(actual));
  }
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Polls `probe` until it returns a value that `accept` takes, or throws
// with the last value after `timeoutMs`.
export async function eventually(what, probe, accept, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await probe();
    if (accept(last)) return last;
    if (Date.now() > deadline) throw new Error(what + ": still " + JSON.stringify(last) + " after " + timeoutMs + " ms");
    await sleep(100);
  }
}

export async function launchBrowser() {
  // playwright-core gives every launch a fresh, temporary user data
  // directory of its own.
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

// A phone: 390×844 CSS pixels, touch, mobile layout. Console errors and
// uncaught exceptions of its pages are collected in `context.problems`.
export async function newPhone(browser) {
  const context = await browser.newContext({
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
    baseURL: BASE_URL,
  });
  context.problems = [];
  context.on("page", (page) => watchPage(context, page));
  return context;
}

function watchPage(context, page) {
  page.on("console", (message) => {
    // The browser logs every failed request; the tests cause some on purpose.
    if (message.type() === "error" && !message.text().startsWith("Failed to load resource"))
      context.problems.push("console: " + message.text());
  });
  page.on("pageerror", (error) => context.problems.push("exception: " + error.message));
}

export async function screenshot(page, name, options = {}) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, name + ".png"), ...options });
}

// The API straight from node, for setting the scene and checking the server.
export async function api(method, path, { token, body, form } = {}) {
  const headers = {};
  if (token) headers.Authorization = "Bearer " + token;
  let payload;
  if (form) {
    payload = form;
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const response = await fetch(BASE_URL + path, { method, headers, body: payload });
  const text = await response.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: response.status, json, text, headers: response.headers };
}

export async function newUser(name = "") {
  const reply = await api("POST", "/v1/users", { body: { display_name: name } });
  checkEqual(201, reply.status, "status of POST /v1/users");
  return reply.json;
}

export async function newPost(token, image = "horse.png", caption = "") {
  const form = new FormData();
  form.append("caption", caption);
  form.append("image", new Blob([readFileSync(join(IMAGES, image))]), image);
  const reply = await api("POST", "/v1/posts", { token, form });
  checkEqual(201, reply.status, "status of POST /v1/posts");
  return reply.json;
}

export async function serverPost(id, token) {
  const reply = await api("GET", "/v1/posts/" + id, { token });
  checkEqual(200, reply.status, "status of GET /v1/posts/" + id);
  return reply.json;
}

// Runs every registered suite; returns the number of failures.
export async function runSuites(browser) {
  let failed = 0;
  for (const { file, tests } of suites) {
    for (const { name, body } of tests) {
      const started = Date.now();
      try {
        await body({ browser });
        console.log("ok - " + file + ": " + name + " (" + ((Date.now() - started) / 1000).toFixed(1) + "s)");
      } catch (error) {
        failed++;
        const why = String(error?.message ?? error).replace(/\s+/g, " ").slice(0, 2000);
        console.log("not ok - " + file + ": " + name + ": " + why);
        if (error?.stack) console.log(error.stack.split("\n").slice(1, 6).join("\n"));
      }
    }
  }
  return failed;
}
