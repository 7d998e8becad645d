// The app's start: the user, the shared state, the screens and the routes
// between them (#/, #/post/ID, #/new, #/traffic, #/me).

import "./style.css";
import type { App, View } from "./app";
import { h, icon } from "./dom";
import { LiveCounts } from "./live";
import { Session } from "./session";
import { PostStore } from "./store";
import { FeedView } from "./views/feed";
import { MeView } from "./views/me";
import { PostView } from "./views/post";
import { TrafficView } from "./views/traffic";
import { UploadView } from "./views/upload";

const session = new Session();
const live = new LiveCounts();
const store = new PostStore(session);
live.onCount((postId, count) => store.liveCount(postId, count));

const app: App = {
  session,
  store,
  live,
  navigate(hash: string) {
    if (location.hash === hash) route();
    else location.hash = hash;
  },
};

const feed = new FeedView(app);
const views: Record<string, View> = {
  feed,
  post: new PostView(app),
  new: new UploadView(app, () => {
    app.navigate("#/");
    void feed.refresh();
  }),
  traffic: new TrafficView(app),
  me: new MeView(app),
};

const title = h("h1", { class: "title" }, "likes");
const headerActions = h("div", { class: "header-actions" });
const liveDot = h("span", { class: "live-dot", role: "img", "data-testid": "live-state", title: "Live counts" });
const who = h("a", { class: "who", href: "#/me", "data-testid": "who" });
const main = h("main", { id: "main" });

const tabs: [string, string, Parameters<typeof icon>[0]][] = [
  ["feed", "Feed", "home"],
  ["new", "Post", "plus"],
  ["traffic", "Traffic", "bolt"],
  ["me", "You", "person"],
];
const nav = h(
  "nav",
  { class: "tabs", "aria-label": "Screens" },
  ...tabs.map(([name, label, iconName]) =>
    h("a", { href: name === "feed" ? "#/" : "#/" + name, "data-tab": name }, icon(iconName), h("span", {}, label)),
  ),
);

document.getElementById("app")!.replaceChildren(
  h("header", { class: "top" }, title, liveDot, who, headerActions),
  main,
  nav,
  h("div", { id: "toast", role: "status", "aria-live": "polite", hidden: true }),
);

live.onState((state) => {
  liveDot.dataset.state = state;
  liveDot.dataset.posts = live.posts;
  liveDot.setAttribute("aria-label", "Live counts: " + state);
});

function showWho(): void {
  who.textContent = session.user ? session.displayName : "…";
}
// A new user sees the feed again with its own likes.
let shownUserId = session.user?.id;
session.onChange((user) => {
  showWho();
  if (user?.id !== shownUserId) {
    shownUserId = user?.id;
    void feed.refresh();
  }
});

let current: View | null = null;

function route(): void {
  const [path, query = ""] = location.hash.replace(/^#/, "").split("?");
  const parts = path.split("/").filter(Boolean);
  const params = new URLSearchParams(query);
  let name = parts[0] ?? "feed";
  if (name === "post") params.set("id", parts[1] ?? "");
  if (!(name in views)) name = "feed";

  const next = views[name];
  if (current && current !== next) {
    current.hide();
    current.element.remove();
  }
  if (current !== next) main.replaceChildren(next.element);
  current = next;
  title.textContent = name === "feed" ? "likes" : next.title;
  document.title = name === "feed" ? "likes" : next.title + " · likes";
  headerActions.replaceChildren(...(next.actions ? [next.actions] : []));
  for (const tab of nav.querySelectorAll<HTMLAnchorElement>("a")) {
    if (tab.dataset.tab === name) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
  next.show(params);
}

window.addEventListener("hashchange", route);
showWho();

// The user first: the feed says which posts are liked only with a token.
session.ensureUser().then(
  (user) => {
    shownUserId = user.id;
    showWho();
    route();
  },
  () => {
    who.textContent = "offline";
    route();
  },
);

if ("serviceWorker" in navigator && import.meta.env.PROD) {
  window.addEventListener("load", () => {
    navigator.serviceWorker.register("/sw.js").catch(() => {
      // the app works without it, only not offline
    });
  });
}
