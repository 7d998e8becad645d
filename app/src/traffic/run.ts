// A traffic session: virtual users that like and unlike one post at a
// chosen rate for a chosen time, then stop by themselves.
//
// Each virtual user is a real user of the API, made first in a batch of
// bounded concurrency. Request i goes to user i mod N, and a user's own
// requests alternate like, unlike, like…, one at a time, so its last
// acknowledged action is what the server ends up with: the count the post
// should reach is its count at the start plus the users whose last
// acknowledged action is a like. That is exact when nothing failed; a
// request that failed may or may not have been counted.
//
// A browser keeps at most six connections to one server over HTTP/1.1,
// and the app needs one for live counts, so at most MAX_IN_FLIGHT requests
// run at once: a rate beyond what they carry falls behind, and the screen
// shows the rate reached.

import { ApiError, createUser, getPost, setLike } from "../api";
import { Histogram } from "./histogram";

export const LIMITS = {
  users: 5000,
  rate: 1000,
  seconds: 300,
};

export interface Plan {
  users: number;
  rate: number; // requests per second, all users together
  seconds: number;
  postId: number;
}

export type Phase = "idle" | "creating" | "running" | "finishing" | "done" | "stopped" | "failed";

export interface Snapshot {
  phase: Phase;
  usersMade: number;
  usersWanted: number;
  planned: number;
  sent: number;
  accepted: number;
  failed: number;
  notSent: number;
  inFlight: number;
  failures: Record<string, number>;
  p50: number;
  p90: number;
  p99: number;
  startCount: number | null;
  expectedCount: number | null;
  elapsedMs: number;
  rate: number; // requests answered per second: over the last second, or the whole session once over
  error: string;
}

const MAX_IN_FLIGHT = 4;
const CREATE_CONCURRENCY = 4;
const CREATE_ATTEMPTS = 3;
const REQUEST_TIMEOUT_MS = 15000;
// After the chosen duration, requests still queued get this long to go out.
const FINISH_GRACE_MS = 5000;
const TICK_MS = 20;

interface VirtualUser {
  token: string;
  actions: number; // actions handed to it so far
  queued: number; // handed to it, not yet sent
  busy: boolean;
  liked: boolean; // its last acknowledged action
}

export class TrafficRun {
  private users: VirtualUser[] = [];
  private ready: number[] = []; // users with queued actions, none busy
  private histogram = new Histogram();
  private answeredAt: number[] = [];
  private timer: number | undefined;
  private started = 0;
  private stopping = false;
  private stoppedByPerson = false;
  private handedOut = 0;
  private likedUsers = 0;
  private abort = new AbortController();
  private snapshot: Snapshot;
  private resolveDone!: () => void;
  readonly done: Promise<void>;

  constructor(
    readonly plan: Plan,
    private onChange: (snapshot: Snapshot) => void,
  ) {
    this.snapshot = {
      phase: "idle",
      usersMade: 0,
      usersWanted: plan.users,
      planned: Math.round(plan.rate * plan.seconds),
      sent: 0,
      accepted: 0,
      failed: 0,
      notSent: 0,
      inFlight: 0,
      failures: {},
      p50: NaN,
      p90: NaN,
      p99: NaN,
      startCount: null,
      expectedCount: null,
      elapsedMs: 0,
      rate: 0,
      error: "",
    };
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  get state(): Snapshot {
    return this.snapshot;
  }

  async start(): Promise<void> {
    try {
      this.setPhase("creating");
      await this.makeUsers();
      if (this.stopping) return this.end("stopped");

      const post = await getPost(this.plan.postId);
      this.snapshot.startCount = post.like_count;
      this.snapshot.expectedCount = post.like_count;
      if (this.stopping) return this.end("stopped");

      this.setPhase("running");
      this.started = performance.now();
      this.timer = window.setInterval(() => this.tick(), TICK_MS);
    } catch (error) {
      if (this.stoppedByPerson) return this.end("stopped");
      this.snapshot.error = error instanceof Error ? error.message : String(error);
      this.end("failed");
    }
  }

  // Stops handing out requests; those in flight finish (each within its
  // timeout), so that the expected count stays exact.
  stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    this.stoppedByPerson = true;
    if (this.snapshot.phase === "creating") {
      this.abort.abort();
      return;
    }
    if (this.snapshot.phase === "running" || this.snapshot.phase === "finishing") this.dropQueued();
    this.maybeEnd();
  }

  private async makeUsers(): Promise<void> {
    const session = Math.random().toString(36).slice(2, 6);
    let next = 0;
    const worker = async () => {
      while (!this.stopping) {
        const index = next++;
        if (index >= this.plan.users) return;
        const user = await this.makeUser("traffic " + session + "-" + (index + 1));
        this.users.push({ token: user.token, actions: 0, queued: 0, busy: false, liked: false });
        this.snapshot.usersMade = this.users.length;
        this.emit();
      }
    };
    await Promise.all(Array.from({ length: Math.min(CREATE_CONCURRENCY, this.plan.users) }, worker));
  }

  private async makeUser(name: string) {
    for (let attempt = 1; ; attempt++) {
      try {
        return await createUser(name, this.abort.signal);
      } catch (error) {
        const transient = error instanceof ApiError && error.transient;
        if (!transient || attempt >= CREATE_ATTEMPTS || this.stopping) throw error;
        await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
      }
    }
  }

  private tick(): void {
    const elapsed = performance.now() - this.started;
    this.snapshot.elapsedMs = elapsed;

    if (!this.stopping) {
      // Every request whose time has come, at even spacing from the start.
      const due = Math.min(this.snapshot.planned, Math.floor((elapsed * this.plan.rate) / 1000) + 1);
      while (this.handedOut < due) this.handOut();
      if (this.handedOut >= this.snapshot.planned && this.snapshot.phase === "running") this.setPhase("finishing");
      if (elapsed > this.plan.seconds * 1000 + FINISH_GRACE_MS) {
        this.stopping = true;
        this.dropQueued();
      }
    }

    this.dispatch();
    this.measure();
    this.maybeEnd();
    this.emit();
  }

  private handOut(): void {
    const index = this.handedOut++ % this.users.length;
    const user = this.users[index];
    user.queued++;
    if (user.queued === 1 && !user.busy) this.ready.push(index);
  }

  private dispatch(): void {
    while (this.snapshot.inFlight < MAX_IN_FLIGHT && this.ready.length > 0) {
      const index = this.ready.shift()!;
      void this.send(this.users[index], index);
    }
  }

  private async send(user: VirtualUser, index: number): Promise<void> {
    user.queued--;
    user.busy = true;
    const like = user.actions++ % 2 === 0;
    this.snapshot.sent++;
    this.snapshot.inFlight++;

    const timeout = new AbortController();
    const timer = window.setTimeout(() => timeout.abort(), REQUEST_TIMEOUT_MS);
    const begun = performance.now();
    try {
      await setLike(this.plan.postId, like, user.token, timeout.signal);
      this.histogram.record(performance.now() - begun);
      this.snapshot.accepted++;
      if (user.liked !== like) this.likedUsers += like ? 1 : -1;
      user.liked = like;
      this.snapshot.expectedCount = (this.snapshot.startCount ?? 0) + this.likedUsers;
    } catch (error) {
      if (error instanceof ApiError && error.status > 0) this.histogram.record(performance.now() - begun);
      const reason = error instanceof ApiError ? (error.status > 0 ? String(error.status) : "network") : "timeout";
      this.snapshot.failures[reason] = (this.snapshot.failures[reason] ?? 0) + 1;
      this.snapshot.failed++;
    } finally {
      window.clearTimeout(timer);
    }

    this.answeredAt.push(performance.now());
    this.snapshot.inFlight--;
    user.busy = false;
    if (user.queued > 0) this.ready.push(index);
    this.dispatch();
    this.maybeEnd();
  }

  private dropQueued(): void {
    for (const user of this.users) {
      this.snapshot.notSent += user.queued;
      user.queued = 0;
    }
    this.ready = [];
    this.snapshot.notSent += this.snapshot.planned - this.handedOut;
    this.handedOut = this.snapshot.planned;
  }

  private measure(): void {
    const now = performance.now();
    while (this.answeredAt.length > 0 && this.answeredAt[0] < now - 1000) this.answeredAt.shift();
    this.snapshot.rate = this.answeredAt.length;
    this.snapshot.p50 = this.histogram.quantile(0.5);
    this.snapshot.p90 = this.histogram.quantile(0.9);
    this.snapshot.p99 = this.histogram.quantile(0.99);
  }

  private maybeEnd(): void {
    const phase = this.snapshot.phase;
    if (phase !== "running" && phase !== "finishing") return;
    const allOut = this.handedOut >= this.snapshot.planned && this.ready.length === 0;
    if (allOut && this.snapshot.inFlight === 0) this.end(this.stoppedByPerson ? "stopped" : "done");
  }

  private end(phase: Phase): void {
    window.clearInterval(this.timer);
    this.timer = undefined;
    this.measure();
    if (this.started > 0) {
      // Once over, the rate is that of the whole session.
      this.snapshot.elapsedMs = performance.now() - this.started;
      const answered = this.snapshot.accepted + this.snapshot.failed;
      this.snapshot.rate = Math.round(answered / Math.max(0.001, this.snapshot.elapsedMs / 1000));
    }
    this.setPhase(phase);
    this.resolveDone();
  }

  private setPhase(phase: Phase): void {
    this.snapshot.phase = phase;
    this.emit();
  }

  private emit(): void {
    this.onChange(this.snapshot);
  }
}
