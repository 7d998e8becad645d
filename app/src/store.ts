// Posts and their like state, shared by every screen that shows a post.
//
// A tap changes the heart and the count at once; the request follows.
// For each post the store keeps what the server last said (`count`, and
// `counted`: whether that count includes this user's like) and what the
// person wants (`wanted`). The count shown is the server's, moved by one
// when the two differ, so however often the heart is tapped it moves the
// count by at most one.
//
// One request per post is in flight at a time; when it ends, the newest
// wish is sent if the server does not have it yet. Failures of the network
// and 503s are retried with exponential backoff. Once a like or unlike is
// acknowledged, the store waits for the server to count it: a live count
// of the post (or a timer, when no stream runs) triggers a read of the
// post, whose like_count and liked_by_me settle the screen.

import { ApiError, getPost, setLike, type Post } from "./api";
import type { Session } from "./session";
import { toast } from "./dom";

export interface LikeView {
  liked: boolean;
  count: number;
  // a request is in flight or waiting for a retry
  pending: boolean;
}

type Watcher = (view: LikeView, post: Post) => void;

interface Entry {
  post: Post;
  count: number;
  counted: boolean;
  wanted: boolean;
  inFlight: boolean;
  // the last action answered 202 that the server has not shown yet
  acknowledged: boolean | null;
  failures: number;
  retryTimer: number | undefined;
  settleTimer: number | undefined;
  acknowledgedAt: number;
  reading: boolean;
  readAgain: boolean;
  watchers: Set<Watcher>;
}

const RETRY_BASE_MS = 300;
const RETRY_MAX_MS = 8000;
const RETRY_LIMIT = 8;
const SETTLE_FALLBACK_MS = 1500;
const SETTLE_GIVE_UP_MS = 15000;

export function backoffDelay(failures: number, random = Math.random()): number {
  const ceiling = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (failures - 1));
  return Math.round(ceiling / 2 + (ceiling / 2) * random);
}

export class PostStore {
  private entries = new Map<number, Entry>();

  constructor(private session: Session) {}

  get(id: number): Post | undefined {
    return this.entries.get(id)?.post;
  }

  view(id: number): LikeView | undefined {
    const entry = this.entries.get(id);
    return entry ? viewOf(entry) : undefined;
  }

  // Takes a post as the server listed it. Its count and liked_by_me are
  // the truth unless this user has a change on the way.
  put(post: Post): void {
    let entry = this.entries.get(post.id);
    if (!entry) {
      entry = {
        post,
        count: post.like_count,
        counted: post.liked_by_me === true,
        wanted: post.liked_by_me === true,
        inFlight: false,
        acknowledged: null,
        failures: 0,
        retryTimer: undefined,
        settleTimer: undefined,
        acknowledgedAt: 0,
        reading: false,
        readAgain: false,
        watchers: new Set(),
      };
      this.entries.set(post.id, entry);
      return;
    }
    entry.post = post;
    this.takeServerState(entry, post);
    this.notify(entry);
  }

  watch(id: number, watcher: Watcher): () => void {
    const entry = this.entries.get(id);
    if (!entry) return () => {};
    entry.watchers.add(watcher);
    watcher(viewOf(entry), entry.post);
    return () => entry.watchers.delete(watcher);
  }

  // A live count from the event stream.
  liveCount(id: number, count: number): void {
    const entry = this.entries.get(id);
    if (!entry) return;
    if (this.busy(entry)) {
      // Whether this count includes the change on the way is unknown
      // until the post is read with liked_by_me.
      this.readPost(entry);
      return;
    }
    entry.count = count;
    this.notify(entry);
  }

  toggle(id: number): void {
    const entry = this.entries.get(id);
    if (!entry) return;
    this.want(entry, !entry.wanted);
  }

  // A double tap on a photo likes it and never takes a like back.
  like(id: number): void {
    const entry = this.entries.get(id);
    if (entry && !entry.wanted) this.want(entry, true);
  }

  private want(entry: Entry, liked: boolean): void {
    if (!this.session.token) return;
    entry.wanted = liked;
    this.notify(entry);
    this.pump(entry);
  }

  private busy(entry: Entry): boolean {
    return (
      entry.inFlight ||
      entry.retryTimer !== undefined ||
      entry.acknowledged !== null ||
      entry.wanted !== entry.counted
    );
  }

  // What the server has of this user, as far as the app knows.
  private serverLiked(entry: Entry): boolean {
    return entry.acknowledged ?? entry.counted;
  }

  private pump(entry: Entry): void {
    if (entry.inFlight || entry.retryTimer !== undefined) return;
    if (entry.wanted === this.serverLiked(entry)) {
      this.notify(entry);
      return;
    }
    this.send(entry, entry.wanted);
  }

  private send(entry: Entry, liked: boolean): void {
    const token = this.session.token;
    if (!token) return;
    entry.inFlight = true;
    this.notify(entry);

    setLike(entry.post.id, liked, token).then(
      () => {
        entry.inFlight = false;
        entry.failures = 0;
        entry.acknowledged = liked;
        entry.acknowledgedAt = Date.now();
        this.scheduleSettle(entry);
        this.pump(entry);
      },
      (error: unknown) => {
        entry.inFlight = false;
        this.failed(entry, error);
      },
    );
  }

  private failed(entry: Entry, error: unknown): void {
    const apiError = error instanceof ApiError ? error : new ApiError(0, "network", String(error));
    if (apiError.transient && ++entry.failures <= RETRY_LIMIT) {
      entry.retryTimer = window.setTimeout(() => {
        entry.retryTimer = undefined;
        this.pump(entry);
      }, backoffDelay(entry.failures));
      this.notify(entry);
      return;
    }

    // Given up: show what the server has, and say so.
    entry.failures = 0;
    entry.wanted = this.serverLiked(entry);
    this.notify(entry);
    if (apiError.status === 401) {
      toast("Your user is no longer valid here; making a new one", "error");
      void this.session.startOver();
    } else if (apiError.transient) {
      toast("Could not reach the server: the like was not saved", "error");
    } else {
      toast("The like was refused: " + apiError.message, "error");
    }
  }

  private scheduleSettle(entry: Entry): void {
    window.clearTimeout(entry.settleTimer);
    entry.settleTimer = window.setTimeout(() => {
      entry.settleTimer = undefined;
      this.readPost(entry);
    }, SETTLE_FALLBACK_MS);
  }

  // Reads the post for its count and liked_by_me, one read at a time.
  private readPost(entry: Entry): void {
    if (entry.reading) {
      entry.readAgain = true;
      return;
    }
    entry.reading = true;
    getPost(entry.post.id, this.session.token).then(
      (post) => {
        entry.reading = false;
        entry.post = post;
        this.takeServerState(entry, post);
        this.notify(entry);
        this.afterRead(entry);
      },
      () => {
        entry.reading = false;
        this.afterRead(entry);
      },
    );
  }

  private afterRead(entry: Entry): void {
    if (entry.readAgain) {
      entry.readAgain = false;
      this.readPost(entry);
    } else if (this.busy(entry) && !entry.inFlight && entry.retryTimer === undefined) {
      if (Date.now() - entry.acknowledgedAt < SETTLE_GIVE_UP_MS) {
        this.scheduleSettle(entry);
      } else {
        // The server keeps saying otherwise: it has the last word.
        entry.acknowledged = null;
        entry.wanted = entry.counted;
        this.notify(entry);
      }
    }
  }

  private takeServerState(entry: Entry, post: Post): void {
    entry.count = post.like_count;
    if (post.liked_by_me !== undefined) entry.counted = post.liked_by_me;
    const idle = !entry.inFlight && entry.retryTimer === undefined;
    if (!idle) return;

    if (entry.acknowledged === null) {
      // Nothing of ours is on the way: the server's word stands.
      entry.wanted = entry.counted;
    } else if (entry.acknowledged === entry.counted) {
      entry.acknowledged = null;
      window.clearTimeout(entry.settleTimer);
      entry.settleTimer = undefined;
    }
  }

  private notify(entry: Entry): void {
    const view = viewOf(entry);
    for (const watcher of entry.watchers) watcher(view, entry.post);
  }
}

function viewOf(entry: Entry): LikeView {
  const shift = (entry.wanted ? 1 : 0) - (entry.counted ? 1 : 0);
  return {
    liked: entry.wanted,
    count: Math.max(0, entry.count + shift),
    pending: entry.inFlight || entry.retryTimer !== undefined,
  };
}
