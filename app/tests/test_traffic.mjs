// The traffic screen: virtual users made in a batch, likes and unlikes at
// the chosen rate for the chosen time, the live count of the target
// climbing to exactly what the acknowledged requests imply, and Stop.

import { check, checkEqual, eventually, newPhone, newPost, newUser, screenshot, serverPost, suite } from "./harness.mjs";

const state = {};

async function stat(page, name) {
  return page.getByTestId("stat-" + name).textContent();
}

async function phase(page) {
  return page.locator(".view-traffic").getAttribute("data-phase");
}

async function startSession(page, postId, users, rate, seconds) {
  await page.goto("/#/traffic?post=" + postId);
  await eventually("the target in the list", () => page.getByLabel("Target post", { exact: true }).inputValue(), (value) => value === String(postId));
  await page.getByLabel("Virtual users", { exact: true }).fill(String(users));
  await page.getByLabel("Rate", { exact: true }).fill(String(rate));
  await page.getByLabel("Duration", { exact: true }).fill(String(seconds));
  await page.getByRole("button", { name: "Start" }).click();
}

// A canvas with nothing drawn is all transparent.
async function chartHasInk(page) {
  return page.getByTestId("traffic-chart").evaluate((canvas) => {
    const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let inked = 0;
    for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) inked++;
    return inked;
  });
}

suite(import.meta.url, (test) => {
  test("a session of 20 users reaches exactly the count its answers imply", async ({ browser }) => {
    state.phone = await newPhone(browser);
    const page = (state.page = await state.phone.newPage());
    await page.goto("/");
    const author = await newUser("traffic target");
    const post = await newPost(author.token, "coffee.png", "coffee under load");
    state.postId = post.id;

    // 60 requests over 3 s: each user likes, unlikes and likes again.
    const started = Date.now();
    await startSession(page, post.id, 20, 20, 3);
    await eventually("the session to end", () => phase(page), (value) => value === "done", 30000);
    check(Date.now() - started < 20000, "the session took " + (Date.now() - started) + " ms");

    checkEqual("60", await stat(page, "sent"), "sent");
    checkEqual("60", await stat(page, "accepted"), "accepted");
    checkEqual("0", await stat(page, "failed"), "failed");
    checkEqual("20", await stat(page, "expected"), "expected");
    for (const name of ["p50", "p90", "p99"]) {
      check(/^\d+(\.\d)? ms$/.test(await stat(page, name)), name + " is " + (await stat(page, name)));
    }

    await eventually("the live count", () => stat(page, "live"), (text) => text === "20", 15000);
    checkEqual(20, (await serverPost(post.id)).like_count, "the server's count");
    check((await chartHasInk(page)) > 0, "nothing drawn on the chart");
    await screenshot(page, "traffic", { fullPage: true });
  });

  test("a session of hundreds of users makes them first, with progress", async () => {
    const page = state.page;
    const author = await newUser("traffic target");
    const post = await newPost(author.token, "camera.png", "many hands");

    // 300 users, 100 requests: the first 100 users like once each.
    await startSession(page, post.id, 300, 50, 2);
    await eventually("the users being made", () => page.getByTestId("traffic-phase").textContent(), (text) => text.startsWith("Making virtual users:"), 5000);
    check(await page.getByLabel("Virtual users made", { exact: true }).isVisible(), "no progress while making users");
    await eventually("the session to end", () => phase(page), (value) => value === "done", 60000);

    checkEqual("100", await stat(page, "accepted"), "accepted");
    checkEqual("100", await stat(page, "expected"), "expected");
    await eventually("the live count", () => stat(page, "live"), (text) => text === "100", 15000);
    checkEqual(100, (await serverPost(post.id)).like_count, "the server's count");
  });

  test("stop ends a session at once, and the count still matches", async () => {
    const page = state.page;
    const author = await newUser("traffic target");
    const post = await newPost(author.token, "rocket.jpg", "stop me");

    // 10 users for a minute, stopped after a few requests.
    await startSession(page, post.id, 10, 5, 60);
    await eventually("a few requests", () => stat(page, "accepted"), (text) => Number(text) >= 3, 15000);
    await page.getByRole("button", { name: "Stop" }).click();
    await eventually("the session to stop", () => phase(page), (value) => value === "stopped", 5000);

    const sent = Number(await stat(page, "sent"));
    check(sent >= 3 && sent < 30, "sent " + sent);
    checkEqual(String(sent), await stat(page, "accepted"), "accepted");
    const expected = await stat(page, "expected");
    await eventually("the live count", () => stat(page, "live"), (text) => text === expected, 15000);
    checkEqual(Number(expected), (await serverPost(post.id)).like_count, "the server's count");
    check(await page.getByRole("button", { name: "Start" }).isEnabled(), "Start is not enabled again");
  });

  test("no page logged an error", async () => {
    checkEqual([], state.phone.problems, "problems");
    await state.phone.close();
  });
});
