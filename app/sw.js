// The service worker of the app. It keeps the app shell (the page, its
// bundles, the manifest and icons) so that the app opens without a
// network, and touches nothing else: the API, the live event stream and
// the photos always go to the network, as if it were not there.
//
// The build fills in SHELL, the files of this build, and VERSION, which
// changes with them, so that a new build replaces the old cache whole.

const VERSION = "__VERSION__";
const SHELL = __SHELL__;
const CACHE = "likes-shell-" + VERSION;

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(SHELL))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) =>
        Promise.all(names.filter((name) => name.startsWith("likes-shell-") && name !== CACHE).map((name) => caches.delete(name))),
      )
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;

  // Opening the app: the network first, so that a new build shows at once;
  // the cached page when there is no network.
  if (request.mode === "navigate") {
    event.respondWith(fetch(request).catch(() => caches.match("/", { cacheName: CACHE })));
    return;
  }

  // The shell's own files: from the cache, which holds exactly this build.
  if (SHELL.includes(url.pathname)) {
    event.respondWith(caches.match(url.pathname, { cacheName: CACHE }).then((cached) => cached || fetch(request)));
  }

  // Anything else (/v1/…, /media/…) is left to the browser.
});
