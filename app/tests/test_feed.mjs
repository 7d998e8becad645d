// A person on a phone: a user at once, a name, a photo posted with
// progress, refusals explained, likes that show at once and settle on the
// server's count, a second phone's like arriving live, the feed paging
// and refreshing, and a service worker that keeps the shell and never the
// API.

import { join } from "node:path";
import { deflateSync } from "node:zlib";
import {
  IMAGES,
  api,
  check,
  checkEqual,
  eventually,
  newPhone,
  newPost,
  newUser,
  screenshot,
  serverPost,
  sleep,
  suite,
} from "./harness.mjs";

const state = {};

async function storedUser(page) {
  return page.evaluate(() => JSON.parse(localStorage.getItem("likes.user") ?? "null"));
}

function tab(page, name) {
  return page.getByRole("navigation", { name: "Screens" }).getByRole("link", { name, exact: true });
}

function card(page, postId) {
  return page.locator('[data-testid="post"][data-post-id="' + postId + '"]');
}

async function cardView(page, postId) {
  const item = card(page, postId);
  return {
    pressed: await item.getByTestId("like").getAttribute("aria-pressed"),
    count: await item.getByTestId("like-count").textContent(),
  };
}

async function waitForCard(page, postId, pressed, count, timeoutMs = 10000) {
  return eventually(
    "post " + postId + " on screen",
    () => cardView(page, postId),
    (view) => view.pressed === pressed && view.count === count,
    timeoutMs,
  );
}

// Waits until the server counts `count` likes on the post and says whether
// the user of `token` is one of them.
async function waitForServer(postId, token, likedByMe, count) {
  return eventually(
    "post " + postId + " on the server",
    async () => {
      const post = await serverPost(postId, token);
      return { liked_by_me: post.liked_by_me, like_count: post.like_count };
    },
    (post) => post.liked_by_me === likedByMe && post.like_count === count,
  );
}

// Waits until the page's stream of live counts is open and covers the post.
async function waitForLive(page, postId) {
  return eventually(
    "live counts of post " + postId,
    () => page.getByTestId("live-state").evaluate((node) => ({ state: node.dataset.state, posts: node.dataset.posts })),
    (live) => live.state === "live" && live.posts.split(",").includes(String(postId)),
  );
}

// A finger dragging down the screen from (x, fromY) to (x, toY).
async function dragDown(context, page, x, fromY, toY) {
  const cdp = await context.newCDPSession(page);
  await cdp.send("Input.dispatchTouchEvent", { type: "touchStart", touchPoints: [{ x, y: fromY }] });
  for (let y = fromY; y <= toY; y += 20) {
    await cdp.send("Input.dispatchTouchEvent", { type: "touchMove", touchPoints: [{ x, y }] });
  }
  await cdp.send("Input.dispatchTouchEvent", { type: "touchEnd", touchPoints: [] });
  await cdp.detach();
}

// A blank PNG of side × side pixels, one bit each: a small file with too
// many pixels for the server.
function blankPng(side) {
  const table = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc32 = (bytes) => {
    let c = 0xffffffff;
    for (const byte of bytes) c = table[(c ^ byte) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
    const out = Buffer.alloc(body.length + 8);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body), body.length + 4);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(side, 0);
  header.writeUInt32BE(side, 4);
  header[8] = 1; // one bit per pixel, grey
  const rows = Buffer.alloc((1 + Math.ceil(side / 8)) * side);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header),
    chunk("IDAT", deflateSync(rows, { level: 9 })),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

suite(import.meta.url, (test) => {
  test("opening the app makes a user at once and keeps it", async ({ browser }) => {
    state.phone = await newPhone(browser);
    const page = (state.page = await state.phone.newPage());
    await page.goto("/");

    const user = await eventually("the stored user", () => storedUser(page), (value) => value !== null);
    check(Number.isInteger(user.id) && user.id > 0, "user id " + user.id);
    check(user.token.startsWith(user.id + "."), "token " + user.token);
    await eventually("the name in the header", () => page.getByTestId("who").textContent(), (text) => text === "User " + user.id);

    await page.reload();
    await eventually("the name after a reload", () => page.getByTestId("who").textContent(), (text) => text === "User " + user.id);
    checkEqual(user, await storedUser(page), "the user after a reload");
    state.user = user;
  });

  test("the service worker keeps the app shell and never the API", async () => {
    const page = state.page;
    await page.evaluate(() => navigator.serviceWorker.ready);
    await page.reload();
    await eventually("a controlling service worker", () => page.evaluate(() => navigator.serviceWorker.controller !== null), (on) => on);

    const cached = await page.evaluate(async () => {
      const urls = [];
      for (const name of await caches.keys()) {
        for (const request of await (await caches.open(name)).keys()) urls.push(new URL(request.url).pathname);
      }
      return urls.sort();
    });
    check(cached.includes("/"), "the page is not cached: " + JSON.stringify(cached));
    check(cached.some((path) => /^\/assets\/.+\.js$/.test(path)), "no script cached: " + JSON.stringify(cached));
    check(cached.includes("/manifest.webmanifest"), "the manifest is not cached");
    for (const path of cached) check(!path.startsWith("/v1/") && !path.startsWith("/media/"), "cached " + path);

    // Without a network the shell still opens.
    await state.phone.setOffline(true);
    try {
      await page.reload();
      await eventually("the title offline", () => page.locator("h1").textContent(), (text) => text === "likes");
    } finally {
      await state.phone.setOffline(false);
    }
    await page.reload();
    await eventually("the name back online", () => page.getByTestId("who").textContent(), (text) => text === "User " + state.user.id);

    const manifest = await page.evaluate(async () => {
      const link = document.querySelector('link[rel="manifest"]');
      const response = await fetch(link.href);
      return { type: response.headers.get("Content-Type"), body: await response.json() };
    });
    checkEqual("application/manifest+json", manifest.type, "manifest content type");
    checkEqual("standalone", manifest.body.display, "manifest display");
    check(manifest.body.icons.some((icon) => icon.sizes === "512x512"), "no 512 px icon");
  });

  test("a new name is kept on the phone and given to a new user", async () => {
    const page = state.page;
    await tab(page, "You").click();
    await page.getByLabel("Display name").fill("Ada");
    await page.getByRole("button", { name: "Save name" }).click();
    await eventually("the name in the header", () => page.getByTestId("who").textContent(), (text) => text === "Ada");
    checkEqual(state.user.id, (await storedUser(page)).id, "the user after renaming");

    await page.getByRole("button", { name: "Start over as a new user" }).click();
    const user = await eventually("a new user", () => storedUser(page), (value) => value.id !== state.user.id);
    checkEqual("Ada", user.display_name, "the name the server gave the new user");
    await eventually("the summary", () => page.getByTestId("me-summary").textContent(), (text) => text === "You are Ada (user " + user.id + ").");
    await screenshot(page, "me");
    state.user = user;
  });

  test("a photo uploads with progress and comes first in the feed", async () => {
    const page = state.page;
    await tab(page, "Post").click();

    // A slow uplink, so that the progress has time to show.
    const cdp = await state.phone.newCDPSession(page);
    await cdp.send("Network.enable");
    await cdp.send("Network.emulateNetworkConditions", {
      offline: false,
      latency: 20,
      downloadThroughput: -1,
      uploadThroughput: 150 * 1024,
    });
    await page.evaluate(() => {
      window.progressSeen = [];
      const progress = document.querySelector("progress[aria-label='Upload progress']");
      new MutationObserver(() => window.progressSeen.push(Number(progress.value))).observe(progress, { attributes: true });
      const status = document.querySelector(".progress-row .hint");
      window.statusSeen = [];
      new MutationObserver(() => window.statusSeen.push(status.textContent)).observe(status, { childList: true, characterData: true, subtree: true });
    });

    const caption = "Chelsea on the sofa";
    const newest = (await api("GET", "/v1/posts?limit=1")).json.posts[0]?.id ?? 0;
    await page.getByTestId("gallery-input").setInputFiles(join(IMAGES, "chelsea.png"));
    await page.getByLabel("Caption").fill(caption);
    await page.getByRole("button", { name: "Post", exact: true }).click();
    await eventually("the progress bar", () => page.locator("progress[aria-label='Upload progress']").isVisible(), (shown) => shown, 5000);
    await eventually("some progress", () => page.evaluate(() => document.querySelector(".progress-row .hint").textContent), (text) => /Uploading… [1-9]\d?%/.test(text), 10000);
    await screenshot(page, "upload-progress");

    await eventually("the feed", () => page.evaluate(() => location.hash), (hash) => hash === "#/", 30000);
    await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    await cdp.detach();

    const seen = await page.evaluate(() => window.progressSeen);
    check(seen.some((value) => value > 0 && value < 1), "no partial progress seen: " + JSON.stringify(seen));
    const statuses = await page.evaluate(() => window.statusSeen);
    check(statuses.includes("Processing the photo…"), "no processing step: " + JSON.stringify(statuses));

    const first = page.getByTestId("post").first();
    await eventually("the new post first", () => first.locator(".caption").textContent(), (text) => text === caption);
    state.postId = Number(await first.getAttribute("data-post-id"));
    check(state.postId > newest, "post " + state.postId + " is not new");
    const post = await serverPost(state.postId, state.user.token);
    checkEqual(caption, post.caption, "caption on the server");
    checkEqual(state.user.id, post.author_id, "author on the server");
    checkEqual({ width: 451, height: 300 }, { width: post.width, height: post.height }, "size on the server");
    await waitForCard(page, state.postId, "false", "0");
  });

  test("a refused file gets a clear message", async () => {
    const page = state.page;
    await tab(page, "Post").click();
    const message = page.getByTestId("upload-message");
    const post = page.getByRole("button", { name: "Post", exact: true });

    await page.getByTestId("gallery-input").setInputFiles({ name: "notes.jpg", mimeType: "image/jpeg", buffer: Buffer.from("these are notes, not a photo") });
    await post.click();
    await eventually("the refusal", () => message.textContent(), (text) => text.startsWith("This file is not a photo the server can read."));
    await screenshot(page, "upload-refused");

    await page.getByTestId("gallery-input").setInputFiles({ name: "huge.png", mimeType: "image/png", buffer: blankPng(10000) });
    await post.click();
    await eventually("the refusal", () => message.textContent(), (text) => text === "This photo has too many pixels (at most 40 megapixels).");

    await page.getByTestId("gallery-input").setInputFiles({ name: "big.jpg", mimeType: "image/jpeg", buffer: Buffer.alloc(21 * 1024 * 1024) });
    await eventually("the refusal", () => message.textContent(), (text) => text === "This photo is too large to upload (at most 20 MB).");
    check(await post.isDisabled(), "Post is still enabled for a file over the limit");
  });

  test("a like shows at once and settles on the server's count", async () => {
    const page = state.page;
    await tab(page, "Feed").click();
    await waitForCard(page, state.postId, "false", "0");

    // Hold the request back: the heart and the count must not wait for it.
    let release;
    let passed;
    const held = new Promise((resolve) => (release = resolve));
    const through = new Promise((resolve) => (passed = resolve));
    await page.route("**/v1/posts/*/like", async (route) => {
      await held;
      await route.continue();
      passed();
    });
    await card(page, state.postId).getByTestId("like").click();
    checkEqual({ pressed: "true", count: "1" }, await cardView(page, state.postId), "the post right after the tap");
    const server = await serverPost(state.postId, state.user.token);
    checkEqual(0, server.like_count, "the server's count while the like is held back");
    release();
    await through;
    await page.unroute("**/v1/posts/*/like");

    await waitForServer(state.postId, state.user.token, true, 1);
    await sleep(500);
    checkEqual({ pressed: "true", count: "1" }, await cardView(page, state.postId), "the post once settled");
    await screenshot(page, "feed");
  });

  test("a like is retried when the network fails", async () => {
    const page = state.page;
    let failures = 0;
    await page.route("**/v1/posts/*/like", async (route) => {
      if (failures++ < 2) await route.abort("internetdisconnected");
      else await route.continue();
    });
    await card(page, state.postId).getByTestId("like").click();
    checkEqual({ pressed: "false", count: "0" }, await cardView(page, state.postId), "right after unliking");
    await waitForServer(state.postId, state.user.token, false, 0);
    check(failures >= 3, "tried " + failures + " times");
    await page.unroute("**/v1/posts/*/like");
    await waitForCard(page, state.postId, "false", "0");
  });

  test("double taps never count twice", async () => {
    const page = state.page;
    // Two taps on the heart: liked, then not.
    await card(page, state.postId).getByTestId("like").dblclick();
    await sleep(1500);
    await waitForServer(state.postId, state.user.token, false, 0);
    await waitForCard(page, state.postId, "false", "0");

    // Double taps on the photo only ever like.
    await page.goto("/#/post/" + state.postId);
    const photo = page.getByTestId("post-photo");
    await photo.waitFor();
    const box = await photo.boundingBox();
    const x = box.x + box.width / 2;
    const y = box.y + box.height / 2;
    for (let round = 0; round < 2; round++) {
      await page.touchscreen.tap(x, y);
      await page.touchscreen.tap(x, y);
      const like = page.getByTestId("like");
      checkEqual("true", await like.getAttribute("aria-pressed"), "the heart after double tap " + (round + 1));
      checkEqual("1", await page.getByTestId("like-count").textContent(), "the count after double tap " + (round + 1));
      await sleep(400);
    }
    await waitForServer(state.postId, state.user.token, true, 1);
    await sleep(500);
    checkEqual("1", await page.getByTestId("like-count").textContent(), "the count once settled");
    await screenshot(page, "post");
  });

  test("a like on another phone moves the count here without a reload", async ({ browser }) => {
    const page = state.page;
    await page.goto("/");
    await waitForCard(page, state.postId, "true", "1");
    await waitForLive(page, state.postId);
    await page.evaluate(() => (window.notReloaded = true));

    state.other = await newPhone(browser);
    const other = await state.other.newPage();
    await other.goto("/");
    await waitForCard(other, state.postId, "false", "1");
    await card(other, state.postId).getByTestId("like").click();
    checkEqual({ pressed: "true", count: "2" }, await cardView(other, state.postId), "the other phone after its tap");

    await waitForCard(page, state.postId, "true", "2");
    check(await page.evaluate(() => window.notReloaded === true), "the first phone reloaded");
    await waitForServer(state.postId, state.user.token, true, 2);
    await waitForCard(other, state.postId, "true", "2");

    // And on the post's own page, live too.
    await page.goto("/#/post/" + state.postId);
    await eventually("the count on the post page", () => page.getByTestId("like-count").textContent(), (text) => text === "2");
    await page.evaluate(() => (window.notReloaded = true));
    await waitForLive(page, state.postId);
    await card(other, state.postId).getByTestId("like").click();
    checkEqual({ pressed: "false", count: "1" }, await cardView(other, state.postId), "the other phone after its second tap");
    await waitForServer(state.postId, state.user.token, true, 1);
    await eventually("the count on the post page", () => page.getByTestId("like-count").textContent(), (text) => text === "1", 10000);
    check(await page.evaluate(() => window.notReloaded === true), "the post page reloaded");
    await waitForCard(other, state.postId, "false", "1");
  });

  test("the feed loads more posts as it scrolls, each once, newest first", async () => {
    const author = await newUser("feeder");
    for (let i = 0; i < 30; i++) await newPost(author.token, "horse.png", "horse " + i);
    const listed = (await api("GET", "/v1/posts?limit=30")).json.posts.map((post) => post.id);

    const page = state.page;
    await page.goto("/");
    await eventually("the first page", () => page.getByTestId("post").count(), (count) => count === 10);
    const images = await page.locator('[data-testid="post"] img').evaluateAll((nodes) => nodes.map((node) => node.getAttribute("loading")));
    checkEqual(Array(10).fill("lazy"), images, "loading of the thumbnails");

    // Three pages in, by scrolling alone.
    const shown = () => page.getByTestId("post").evaluateAll((nodes) => nodes.map((node) => Number(node.dataset.postId)));
    await eventually(
      "30 posts after scrolling",
      async () => {
        await page.mouse.wheel(0, 3000);
        return (await shown()).length;
      },
      (count) => count >= 30,
      20000,
    );
    checkEqual(listed, (await shown()).slice(0, 30), "the first 30 posts on screen");
    const ids = await shown();
    checkEqual(ids.length, new Set(ids).size, "posts shown twice");

    const lastImage = page.locator('[data-testid="post"] img').nth(29);
    await lastImage.scrollIntoViewIfNeeded();
    await eventually("the 30th thumbnail", () => lastImage.evaluate((node) => node.complete && node.naturalWidth > 0), (loaded) => loaded);
  });

  test("pulling down at the top shows new posts", async () => {
    const page = state.page;
    await page.evaluate(() => window.scrollTo(0, 0));
    const author = await newUser("newcomer");
    const post = await newPost(author.token, "rocket.jpg", "fresh off the pad");
    await page.evaluate(() => (window.notReloaded = true));

    await dragDown(state.phone, page, 195, 200, 560);
    await eventually("the new post first", () => page.getByTestId("post").first().getAttribute("data-post-id"), (id) => Number(id) === post.id);
    check(await page.evaluate(() => window.notReloaded === true), "the page reloaded");
  });

  test("every button has a label and the like button its pressed state", async () => {
    const page = state.page;
    for (const hash of ["#/", "#/post/" + state.postId, "#/new", "#/traffic", "#/me"]) {
      await page.goto("/" + hash);
      await sleep(500);
      const unlabelled = await page.evaluate(() =>
        [...document.querySelectorAll("button, a, input, select, textarea")]
          .filter((node) => {
            if (node.type === "file") return !node.closest("label")?.textContent.trim();
            if (node.id && document.querySelector('label[for="' + node.id + '"]')) return false;
            return !(node.getAttribute("aria-label") || node.textContent.trim());
          })
          .map((node) => node.outerHTML.slice(0, 120)),
      );
      checkEqual([], unlabelled, "controls without a label on " + hash);
    }
    await page.goto("/#/post/" + state.postId);
    const like = page.getByRole("button", { name: "Like" });
    await like.waitFor();
    check(["true", "false"].includes(await like.getAttribute("aria-pressed")), "no aria-pressed on the like button");
  });

  test("no page logged an error", async () => {
    checkEqual([], state.phone.problems, "problems on the first phone");
    checkEqual([], state.other.problems, "problems on the second phone");
    await state.phone.close();
    await state.other.close();
  });
});
