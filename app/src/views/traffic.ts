// The traffic screen: choose how many virtual users, how fast and for how
// long, start, and watch the requests, their latency and the live count of
// the target post. The session stops by itself, or at Stop.

import { listPosts, type Post } from "../api";
import type { App, View } from "../app";
import { h } from "../dom";
import { CountChart } from "../traffic/chart";
import { LIMITS, TrafficRun, type Plan, type Snapshot } from "../traffic/run";

const CHART_SAMPLE_MS = 250;

function numberField(id: string, label: string, value: number, max: number, unit: string): HTMLElement {
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    h("input", { id, name: id, type: "number", inputmode: "numeric", min: 1, max, step: 1, value, required: true }),
    h("span", { class: "hint" }, unit),
  );
}

function stat(name: string, label: string): HTMLElement {
  return h("div", { class: "stat" }, h("dt", {}, label), h("dd", { "data-stat": name, "data-testid": "stat-" + name }, "–"));
}

function ms(value: number): string {
  if (!Number.isFinite(value)) return "–";
  return value < 10 ? value.toFixed(1) + " ms" : Math.round(value) + " ms";
}

export class TrafficView implements View {
  readonly element: HTMLElement;
  readonly title = "Traffic";
  private form: HTMLFormElement;
  private target: HTMLSelectElement;
  private startButton: HTMLButtonElement;
  private stopButton: HTMLButtonElement;
  private phase: HTMLElement;
  private making: HTMLProgressElement;
  private stats: HTMLElement;
  private chart = new CountChart("Live like count of the target post during the session");
  private run: TrafficRun | null = null;
  private sampler: number | undefined;
  private liveCount: number | null = null;
  private requestedPost = 0;

  constructor(private app: App) {
    this.target = h("select", { id: "target", name: "target", required: true });
    this.target.addEventListener("change", () => this.watchTarget());
    this.startButton = h("button", { type: "submit", class: "primary" }, "Start");
    this.stopButton = h("button", { type: "button", class: "danger", disabled: true }, "Stop");
    this.stopButton.addEventListener("click", () => this.run?.stop());

    this.form = h(
      "form",
      { class: "traffic-form" },
      numberField("users", "Virtual users", 50, LIMITS.users, "up to " + LIMITS.users),
      numberField("rate", "Rate", 20, LIMITS.rate, "requests/s"),
      numberField("seconds", "Duration", 5, LIMITS.seconds, "seconds"),
      h("div", { class: "field wide" }, h("label", { for: "target" }, "Target post"), this.target),
      h("div", { class: "actions wide" }, this.startButton, this.stopButton),
    );
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.start();
    });

    this.phase = h("p", { class: "phase", role: "status", "data-testid": "traffic-phase" }, "Ready.");
    this.making = h("progress", { max: 1, value: 0, hidden: true, "aria-label": "Virtual users made" });
    this.stats = h(
      "dl",
      { class: "stats" },
      stat("sent", "Sent"),
      stat("accepted", "Accepted (202)"),
      stat("failed", "Failed"),
      stat("rate", "Rate"),
      stat("p50", "p50"),
      stat("p90", "p90"),
      stat("p99", "p99"),
      stat("in-flight", "In flight"),
      stat("live", "Live count"),
      stat("expected", "Expected"),
    );

    this.element = h(
      "section",
      { class: "view view-traffic" },
      h(
        "p",
        { class: "hint" },
        "Each virtual user is a real user that likes and unlikes the target in turn. The session is bounded by the numbers below and stops by itself.",
      ),
      this.form,
      this.phase,
      this.making,
      this.chart.element,
      this.stats,
    );

    app.live.onCount((postId, count) => {
      if (postId !== this.targetId()) return;
      this.liveCount = count;
      this.setStat("live", String(count));
    });
  }

  show(params: URLSearchParams): void {
    this.requestedPost = Number(params.get("post") ?? 0);
    void this.loadTargets();
    this.watchTarget();
    this.chart.draw();
  }

  hide(): void {
    // A running session goes on, bounded as chosen; its live count too.
    if (!this.run || this.isOver(this.run.state)) this.app.live.drop("traffic");
  }

  private async loadTargets(): Promise<void> {
    let posts: Post[] = [];
    try {
      posts = (await listPosts(this.app.session.token, null, 50)).posts;
    } catch {
      // keep whatever the list had
    }
    const wanted = this.requestedPost || this.targetId();
    if (posts.length === 0 && this.target.options.length > 0) return;
    this.target.replaceChildren(
      ...posts.map((post) => h("option", { value: post.id }, "#" + post.id + (post.caption ? " · " + post.caption.slice(0, 40) : ""))),
    );
    if (wanted && !posts.some((post) => post.id === wanted)) {
      this.target.prepend(h("option", { value: wanted }, "#" + wanted));
    }
    if (wanted) this.target.value = String(wanted);
    if (this.target.options.length === 0) this.phase.textContent = "There is no post yet: post a photo first.";
    this.watchTarget();
  }

  private targetId(): number {
    return Number(this.target.value || 0);
  }

  private watchTarget(): void {
    const id = this.run && !this.isOver(this.run.state) ? this.run.plan.postId : this.targetId();
    if (id > 0) this.app.live.want("traffic", [id], 20);
    this.liveCount = this.app.live.count(id) ?? null;
    this.setStat("live", this.liveCount === null ? "–" : String(this.liveCount));
  }

  private plan(): Plan | null {
    if (!this.form.reportValidity()) return null;
    const value = (name: string) => Number((this.form.elements.namedItem(name) as HTMLInputElement).value);
    const plan = { users: value("users"), rate: value("rate"), seconds: value("seconds"), postId: this.targetId() };
    if (!(plan.postId > 0)) return null;
    return plan;
  }

  private start(): void {
    if (this.run && !this.isOver(this.run.state)) return;
    const plan = this.plan();
    if (!plan) return;

    this.run = new TrafficRun(plan, (snapshot) => this.render(snapshot));
    this.watchTarget();
    this.chart.reset(plan.seconds);
    this.setFormEnabled(false);
    window.clearInterval(this.sampler);
    this.sampler = window.setInterval(() => this.sample(), CHART_SAMPLE_MS);
    void this.run.start();
    void this.run.done.then(() => {
      // A last few samples let the chart show the count arrive.
      window.setTimeout(() => window.clearInterval(this.sampler), 3000);
      this.setFormEnabled(true);
    });
  }

  private sample(): void {
    const run = this.run;
    if (!run || this.liveCount === null) return;
    const state = run.state;
    if (state.phase === "creating" || state.phase === "idle") return;
    this.chart.add(state.elapsedMs / 1000, this.liveCount, state.expectedCount);
  }

  private setFormEnabled(enabled: boolean): void {
    for (const element of Array.from(this.form.elements)) {
      if (element !== this.stopButton) (element as HTMLInputElement).disabled = !enabled;
    }
    this.stopButton.disabled = enabled;
  }

  private isOver(snapshot: Snapshot): boolean {
    return snapshot.phase === "done" || snapshot.phase === "stopped" || snapshot.phase === "failed";
  }

  private render(s: Snapshot): void {
    this.making.hidden = s.phase !== "creating";
    this.making.value = s.usersWanted > 0 ? s.usersMade / s.usersWanted : 0;
    this.element.dataset.phase = s.phase;

    const seconds = (s.elapsedMs / 1000).toFixed(1);
    const phaseText: Record<string, string> = {
      idle: "Ready.",
      creating: "Making virtual users: " + s.usersMade + " of " + s.usersWanted + "…",
      running: "Running: " + seconds + " s, " + s.sent + " of " + s.planned + " requests sent.",
      finishing: "Finishing: waiting for the last answers…",
      done: "Done: " + s.sent + " requests in " + seconds + " s." + (s.notSent > 0 ? " " + s.notSent + " could not be sent in time." : ""),
      stopped: "Stopped: " + s.sent + " requests sent, " + s.notSent + " not sent.",
      failed: "The session could not start: " + s.error,
    };
    this.phase.textContent = phaseText[s.phase];

    const failures = Object.entries(s.failures)
      .map(([reason, count]) => reason + ": " + count)
      .join(", ");
    this.setStat("sent", String(s.sent));
    this.setStat("accepted", String(s.accepted));
    this.setStat("failed", s.failed + (failures ? " (" + failures + ")" : ""));
    this.setStat("rate", s.rate + "/s");
    this.setStat("p50", ms(s.p50));
    this.setStat("p90", ms(s.p90));
    this.setStat("p99", ms(s.p99));
    this.setStat("in-flight", String(s.inFlight));
    this.setStat("expected", s.expectedCount === null ? "–" : String(s.expectedCount) + (s.failed > 0 ? " (±" + s.failed + ")" : ""));
  }

  private setStat(name: string, text: string): void {
    const element = this.stats.querySelector<HTMLElement>('[data-stat="' + name + '"]');
    if (element && element.textContent !== text) element.textContent = text;
  }
}
