import { createHash } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { defineConfig, type Plugin } from "vite";

// Writes sw.js from the hand-written service worker, filling in the files
// of the app shell of this build and a version that changes with them.
function serviceWorker(): Plugin {
  return {
    name: "likes-service-worker",
    apply: "build",
    enforce: "post",
    generateBundle(_options, bundle) {
      const built = Object.keys(bundle).filter((name) => name !== "index.html" && !name.endsWith(".map"));
      const copied = readdirSync("public");
      const shell = ["/", ...built, ...copied].map((name) => (name.startsWith("/") ? name : "/" + name)).sort();

      const hash = createHash("sha256");
      for (const name of Object.keys(bundle).sort()) {
        const output = bundle[name];
        hash.update(name);
        hash.update(output.type === "asset" ? output.source : output.code);
      }
      for (const name of copied) hash.update(readFileSync("public/" + name));
      const version = hash.digest("hex").slice(0, 16);

      const source = readFileSync("sw.js", "utf8")
        .replace('"__VERSION__"', JSON.stringify(version))
        .replace("__SHELL__", JSON.stringify(shell));
      this.emitFile({ type: "asset", fileName: "sw.js", source });
    },
  };
}

// `npm run dev` serves the app with hot reload and passes the API to the
// ingest service of the local stack.
const api = "http://127.0.0.1:" + (process.env.LIKES_HTTP_PORT || "8080");

export default defineConfig({
  plugins: [serviceWorker()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    target: "es2022",
  },
  server: {
    host: "127.0.0.1",
    proxy: { "/v1": api, "/media": api },
  },
});
