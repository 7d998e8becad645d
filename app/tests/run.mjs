// Runs the browser tests of the app against a running stack:
//
//   node app/tests/run.mjs                    every test_*.mjs here
//   node app/tests/run.mjs test_traffic.mjs   one file
//
// The stack is the one LIKES_HTTP_PORT (or LIKES_APP_URL) points at, and
// must serve the built app. Screenshots go to LIKES_RUN_DIR/screenshots.

import { readdirSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { BASE_URL, launchBrowser, runSuites } from "./harness.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const chosen = process.argv.slice(2);
const files = chosen.length > 0 ? chosen : readdirSync(here).filter((name) => /^test_.*\.mjs$/.test(name)).sort();

async function main() {
  const page = await fetch(BASE_URL + "/").catch((error) => ({ status: 0, error }));
  if (page.status !== 200) {
    console.log("not ok - app: " + BASE_URL + "/ does not serve the app (status " + page.status + "); build it with make app");
    return 1;
  }

  for (const file of files) await import(pathToFileURL(here + "/" + file).href);

  let browser;
  try {
    browser = await launchBrowser();
  } catch (error) {
    console.log("not ok - app: Chromium did not start: " + String(error.message).split("\n")[0]);
    return 1;
  }
  try {
    return await runSuites(browser);
  } finally {
    await browser.close();
  }
}

// A run that hangs is a failure too: every test is bounded, and so is the whole.
const limit = setTimeout(() => {
  console.log("not ok - app: the browser tests did not finish within 10 minutes");
  process.exit(1);
}, 10 * 60 * 1000);
limit.unref();

main().then(
  (failed) => process.exit(failed > 0 ? 1 : 0),
  (error) => {
    console.log("not ok - app: " + String(error?.message ?? error).split("\n")[0]);
    process.exit(1);
  },
);
