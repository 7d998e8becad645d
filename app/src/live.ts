// Live like counts from GET /v1/stream, server-sent events of the form
//
//   event: count
//   data: {"post_id":3,"like_count":18}
//
// Screens say which posts they show; the app keeps one stream for all of
// them (at most STREAM_MAX_POSTS posts, the screens of higher priority
// first). A browser opens few connections to one server over HTTP/1.1, so
// one stream leaves the others to the rest of the app.

import { STREAM_MAX_POSTS } from "./api";

export type LiveState = "off" | "connecting" | "live" | "retrying";
type CountListener = (postId: number, count: number) => void;
type StateListener = (state: LiveState) => void;

const RECONNECT_DEBOUNCE_MS = 250;
const RETRY_MIN_MS = 2000;
const RETRY_MAX_MS = 30000;

interface Want {
  ids: number[];
  priority: number;
}

export class LiveCounts {
  private wants = new Map<string, Want>();
  private source: EventSource | null = null;
  private openKey = "";
  private debounceTimer: number | undefined;
  private retryTimer: number | undefined;
  private failures = 0;
  private latest = new Map<number, number>();
  private countListeners = new Set<CountListener>();
  private stateListeners = new Set<StateListener>();
  private currentState: LiveState = "off";

  constructor() {
    // A hidden page needs no live counts; a visible one gets the current
    // counts again on reconnecting.
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) this.close();
      this.schedule();
    });
  }

  get state(): LiveState {
    return this.currentState;
  }

  // The posts of the open stream, "1,2,3", or "".
  get posts(): string {
    return this.openKey;
  }

  // The posts a screen shows; `priority` orders screens when there are
  // more posts than one stream takes (higher first).
  want(owner: string, ids: number[], priority = 0): void {
    this.wants.set(owner, { ids, priority });
    this.schedule();
  }

  drop(owner: string): void {
    if (this.wants.delete(owner)) this.schedule();
  }

  // The last count the stream gave for a post, if any.
  count(postId: number): number | undefined {
    return this.latest.get(postId);
  }

  onCount(listener: CountListener): () => void {
    this.countListeners.add(listener);
    return () => this.countListeners.delete(listener);
  }

  onState(listener: StateListener): () => void {
    this.stateListeners.add(listener);
    listener(this.currentState);
    return () => this.stateListeners.delete(listener);
  }

  private schedule(): void {
    window.clearTimeout(this.debounceTimer);
    this.debounceTimer = window.setTimeout(() => this.connect(), RECONNECT_DEBOUNCE_MS);
  }

  private wantedIds(): number[] {
    const ordered = [...this.wants.values()].sort((a, b) => b.priority - a.priority);
    const ids = new Set<number>();
    for (const want of ordered) {
      for (const id of want.ids) {
        if (ids.size >= STREAM_MAX_POSTS) break;
        ids.add(id);
      }
    }
    return [...ids].sort((a, b) => a - b);
  }

  private connect(): void {
    const key = document.hidden ? "" : this.wantedIds().join(",");
    if (key === this.openKey && (this.source || key === "")) return;

    this.close();
    if (key === "") return;

    this.openKey = key;
    const source = new EventSource("/v1/stream?posts=" + key);
    this.source = source;
    this.setState("connecting");

    source.addEventListener("open", () => {
      this.failures = 0;
      this.setState("live");
    });
    source.addEventListener("count", (event) => this.take((event as MessageEvent).data));
    source.addEventListener("error", () => {
      if (source !== this.source) return;
      if (source.readyState === EventSource.CLOSED) {
        // Refused (say, a post that no longer exists) or cut for good: the
        // browser will not try again by itself.
        this.close();
        this.retryLater();
      } else {
        this.setState("retrying");
      }
    });
  }

  private retryLater(): void {
    this.failures++;
    const delay = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** (this.failures - 1));
    this.setState("retrying");
    window.clearTimeout(this.retryTimer);
    this.retryTimer = window.setTimeout(() => this.connect(), delay);
  }

  private take(data: string): void {
    let event: { post_id?: unknown; like_count?: unknown };
    try {
      event = JSON.parse(data);
    } catch {
      return;
    }
    if (typeof event.post_id !== "number" || typeof event.like_count !== "number") return;
    this.latest.set(event.post_id, event.like_count);
    for (const listener of this.countListeners) listener(event.post_id, event.like_count);
  }

  private close(): void {
    window.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.source?.close();
    this.source = null;
    this.openKey = "";
    this.setState("off");
  }

  private setState(state: LiveState): void {
    if (state === this.currentState) return;
    this.currentState = state;
    for (const listener of this.stateListeners) listener(state);
  }
}
