// The feed: newest posts first, thumbnails loaded as they come near the
// screen, more pages as the end comes near, pull down (or the button) to
// refresh, and live counts for the posts on screen.

import { ApiError, listPosts, type Post } from "../api";
import type { App, View } from "../app";
import { h, icon, timeAgo, toast } from "../dom";
import { likeControl, type LikeControl } from "./like-button";

const PAGE_SIZE = 10;
const PULL_TRIGGER_PX = 64;
const PULL_MAX_PX = 96;

interface Card {
  element: HTMLElement;
  like: LikeControl;
}

export class FeedView implements View {
  readonly element: HTMLElement;
  readonly title = "Feed";
  readonly actions: HTMLElement;
  private list: HTMLElement;
  private status: HTMLElement;
  private sentinel: HTMLElement;
  private pull: HTMLElement;
  private cards = new Map<number, Card>();
  private cursor: string | null = null;
  private ended = false;
  private loading = false;
  private generation = 0;
  private visible = new Set<number>();
  private shown = false;
  private cardObserver: IntersectionObserver;
  private endObserver: IntersectionObserver;

  constructor(private app: App) {
    this.pull = h("div", { class: "pull", "aria-hidden": "true" }, icon("refresh"), h("span", {}, "Pull to refresh"));
    this.list = h("ol", { class: "feed", "aria-label": "Posts", "data-testid": "feed" });
    this.status = h("p", { class: "feed-status", role: "status" });
    this.sentinel = h("div", { class: "sentinel", "aria-hidden": "true" });
    this.element = h("section", { class: "view view-feed" }, this.pull, this.list, this.status, this.sentinel);
    this.actions = h(
      "button",
      { type: "button", class: "icon-button", "aria-label": "Refresh feed", onclick: () => void this.refresh() },
      icon("refresh"),
    );

    // Posts on screen, or about to be, get live counts.
    this.cardObserver = new IntersectionObserver((entries) => this.onCardsSeen(entries), {
      rootMargin: "200px 0px",
    });
    // An entry describes the page when it was queued, which may be before
    // the first page filled it: check where the end is now.
    this.endObserver = new IntersectionObserver(
      (entries) => {
        if (entries.some((entry) => entry.isIntersecting)) this.loadMoreIfNear();
      },
      { rootMargin: "800px 0px" },
    );
    this.endObserver.observe(this.sentinel);
    this.setUpPull();
  }

  show(): void {
    this.shown = true;
    if (this.cards.size === 0 && !this.loading) void this.refresh();
    this.app.live.want("feed", [...this.visible], 0);
  }

  hide(): void {
    this.shown = false;
    this.app.live.drop("feed");
  }

  // Loads the first page again: new posts on top, fresh counts.
  async refresh(): Promise<void> {
    const generation = ++this.generation;
    this.loading = true;
    this.setStatus(this.cards.size === 0 ? "Loading…" : "Refreshing…");
    try {
      await this.app.session.ensureUser().catch(() => undefined);
      const page = await listPosts(this.app.session.token, null, PAGE_SIZE);
      if (generation !== this.generation) return;
      this.clear();
      this.cursor = page.next_cursor;
      this.ended = page.next_cursor === null;
      this.addPosts(page.posts);
      this.setStatus(this.endText());
    } catch (error) {
      if (generation === this.generation) this.showError(error);
    } finally {
      if (generation === this.generation) this.loading = false;
    }
    // The end of a short first page may already be on screen.
    if (generation === this.generation && !this.ended) this.loadMoreIfNear();
  }

  private async loadMore(): Promise<void> {
    if (this.loading || this.ended || this.cursor === null || !this.shown) return;
    const generation = this.generation;
    this.loading = true;
    this.setStatus("Loading more…");
    try {
      const page = await listPosts(this.app.session.token, this.cursor, PAGE_SIZE);
      if (generation !== this.generation) return;
      this.cursor = page.next_cursor;
      this.ended = page.next_cursor === null;
      this.addPosts(page.posts);
      this.setStatus(this.endText());
    } catch (error) {
      if (generation === this.generation) this.showError(error);
    } finally {
      if (generation === this.generation) this.loading = false;
    }
    if (generation === this.generation) this.loadMoreIfNear();
  }

  private loadMoreIfNear(): void {
    const rect = this.sentinel.getBoundingClientRect();
    if (rect.top < window.innerHeight + 800) void this.loadMore();
  }

  private endText(): string {
    if (this.cards.size === 0) return "No posts yet. Post the first photo!";
    return this.ended ? "You have seen every post." : "";
  }

  private showError(error: unknown): void {
    const message = error instanceof ApiError ? error.message : String(error);
    this.status.replaceChildren(
      "Could not load the feed: " + message + ". ",
      h("button", { type: "button", class: "link", onclick: () => void this.refresh() }, "Try again"),
    );
    if (error instanceof ApiError && error.status === 401) {
      toast("Your user is no longer valid here; making a new one", "error");
      void this.app.session.startOver().then(() => this.refresh());
    }
  }

  private setStatus(text: string): void {
    this.status.textContent = text;
  }

  private clear(): void {
    for (const card of this.cards.values()) {
      card.like.release();
      this.cardObserver.unobserve(card.element);
    }
    this.cards.clear();
    this.visible.clear();
    this.list.replaceChildren();
  }

  private addPosts(posts: Post[]): void {
    for (const post of posts) {
      if (this.cards.has(post.id)) continue;
      this.app.store.put(post);
      const card = this.card(post);
      this.cards.set(post.id, card);
      this.list.appendChild(card.element);
      this.cardObserver.observe(card.element);
    }
  }

  private card(post: Post): Card {
    const label = post.caption || "Photo " + post.id;
    const image = h("img", {
      src: post.thumb_url,
      alt: label,
      width: post.width,
      height: post.height,
      loading: "lazy",
      decoding: "async",
    });
    const like = likeControl(this.app, post.id);
    const mine = post.author_id === this.app.session.user?.id;
    const element = h(
      "li",
      { class: "card", "data-post-id": post.id, "data-testid": "post" },
      h("a", { class: "card-photo", href: "#/post/" + post.id, "aria-label": "Open post: " + label }, image),
      h(
        "div",
        { class: "card-bar" },
        like.element,
        h("span", { class: "card-meta" }, (mine ? "by you" : "by user " + post.author_id) + " · " + timeAgo(post.created_at)),
      ),
      post.caption ? h("p", { class: "caption" }, post.caption) : null,
    );
    return { element, like };
  }

  private onCardsSeen(entries: IntersectionObserverEntry[]): void {
    for (const entry of entries) {
      const id = Number((entry.target as HTMLElement).dataset.postId);
      if (entry.isIntersecting) this.visible.add(id);
      else this.visible.delete(id);
    }
    if (this.shown) this.app.live.want("feed", [...this.visible], 0);
  }

  // Pull to refresh: a touch that starts at the top of the page and drags
  // down far enough refreshes on release.
  private setUpPull(): void {
    let startY: number | null = null;
    let distance = 0;

    const reset = () => {
      startY = null;
      distance = 0;
      this.pull.style.height = "0px";
      this.pull.classList.remove("ready");
    };

    this.element.addEventListener(
      "touchstart",
      (event) => {
        startY = window.scrollY <= 0 && event.touches.length === 1 ? event.touches[0].clientY : null;
      },
      { passive: true },
    );
    this.element.addEventListener(
      "touchmove",
      (event) => {
        if (startY === null) return;
        distance = Math.min(PULL_MAX_PX, Math.max(0, (event.touches[0].clientY - startY) / 2));
        if (distance > 0 && event.cancelable) event.preventDefault();
        this.pull.style.height = distance + "px";
        this.pull.classList.toggle("ready", distance >= PULL_TRIGGER_PX);
        this.pull.lastElementChild!.textContent = distance >= PULL_TRIGGER_PX ? "Release to refresh" : "Pull to refresh";
      },
      { passive: false },
    );
    const end = () => {
      const trigger = distance >= PULL_TRIGGER_PX;
      reset();
      if (trigger) void this.refresh();
    };
    this.element.addEventListener("touchend", end);
    this.element.addEventListener("touchcancel", reset);
  }
}
