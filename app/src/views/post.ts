// One post on its own: the display image, its caption and a live count.
// A double tap on the photo likes it.

import { ApiError, getPost, type Post } from "../api";
import type { App, View } from "../app";
import { append, h, icon, timeAgo } from "../dom";
import { likeControl, type LikeControl } from "./like-button";

const DOUBLE_TAP_MS = 350;

export class PostView implements View {
  readonly element: HTMLElement;
  title = "Post";
  private body: HTMLElement;
  private like: LikeControl | null = null;
  private postId = 0;

  constructor(private app: App) {
    this.body = h("div", { class: "post-body" });
    this.element = h(
      "section",
      { class: "view view-post" },
      h("a", { class: "back", href: "#/" }, icon("back"), "Feed"),
      this.body,
    );
  }

  show(params: URLSearchParams): void {
    const id = Number(params.get("id"));
    this.release();
    this.postId = id;
    this.body.replaceChildren(h("p", { class: "feed-status", role: "status" }, "Loading…"));
    if (!Number.isSafeInteger(id) || id <= 0) {
      this.body.replaceChildren(h("p", { class: "feed-status" }, "No such post."));
      return;
    }
    this.app.live.want("post", [id], 10);

    const known = this.app.store.get(id);
    if (known) this.render(known);
    getPost(id, this.app.session.token).then(
      (post) => {
        if (this.postId !== id) return;
        this.app.store.put(post);
        if (!known) this.render(this.app.store.get(id)!);
      },
      (error) => {
        if (this.postId !== id || known) return;
        const text = error instanceof ApiError && error.status === 404 ? "No such post." : "Could not load the post.";
        this.body.replaceChildren(h("p", { class: "feed-status" }, text));
      },
    );
  }

  hide(): void {
    this.release();
    this.postId = 0;
    this.app.live.drop("post");
  }

  private release(): void {
    this.like?.release();
    this.like = null;
  }

  private render(post: Post): void {
    this.release();
    this.like = likeControl(this.app, post.id);
    const image = h("img", {
      src: post.image_url,
      alt: post.caption || "Photo " + post.id,
      width: post.width,
      height: post.height,
      decoding: "async",
    });
    const photo = h("div", { class: "post-photo", "data-testid": "post-photo" }, image);
    const heart = h("div", { class: "burst", "aria-hidden": "true" }, icon("heart", "icon heart"));
    photo.appendChild(heart);

    // Two taps close together like the post; a second double tap changes
    // nothing, since it only ever likes.
    let lastTap = 0;
    photo.addEventListener("pointerup", () => {
      const now = performance.now();
      if (now - lastTap < DOUBLE_TAP_MS) {
        lastTap = 0;
        this.app.store.like(post.id);
        heart.classList.remove("show");
        void heart.offsetWidth;
        heart.classList.add("show");
      } else {
        lastTap = now;
      }
    });

    const mine = post.author_id === this.app.session.user?.id;
    this.body.replaceChildren();
    append(
      this.body,
      photo,
      h(
        "div",
        { class: "card-bar" },
        this.like.element,
        h("span", { class: "card-meta" }, (mine ? "by you" : "by user " + post.author_id) + " · " + timeAgo(post.created_at)),
      ),
      post.caption ? h("p", { class: "caption" }, post.caption) : null,
      h("a", { class: "link", href: "#/traffic?post=" + post.id }, "Send traffic to this post"),
    );
  }
}
