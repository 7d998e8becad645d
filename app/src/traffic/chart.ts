// A small line chart of the live count of a post over a traffic session,
// with the count the session expects as a dashed line. Canvas, redrawn on
// each new point.

interface Point {
  seconds: number;
  count: number;
  expected: number | null;
}

export class CountChart {
  readonly element: HTMLCanvasElement;
  private points: Point[] = [];
  private spanSeconds = 10;

  constructor(label: string) {
    this.element = document.createElement("canvas");
    this.element.className = "chart";
    this.element.setAttribute("role", "img");
    this.element.setAttribute("aria-label", label);
    this.element.dataset.testid = "traffic-chart";
  }

  reset(spanSeconds: number): void {
    this.points = [];
    this.spanSeconds = Math.max(1, spanSeconds);
    this.draw();
  }

  add(seconds: number, count: number, expected: number | null): void {
    const last = this.points[this.points.length - 1];
    if (last && last.count === count && last.expected === expected && seconds - last.seconds < 0.5) return;
    this.points.push({ seconds, count, expected });
    if (seconds > this.spanSeconds) this.spanSeconds = seconds;
    this.draw();
  }

  draw(): void {
    const canvas = this.element;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || 320;
    const height = canvas.clientHeight || 160;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const context = canvas.getContext("2d");
    if (!context) return;
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, width, height);

    const style = getComputedStyle(canvas);
    const ink = style.getPropertyValue("--chart-ink").trim() || "#888";
    const line = style.getPropertyValue("--chart-line").trim() || "#e0245e";
    const pad = { left: 40, right: 10, top: 10, bottom: 22 };
    const plotWidth = width - pad.left - pad.right;
    const plotHeight = height - pad.top - pad.bottom;

    let low = Infinity;
    let high = -Infinity;
    for (const point of this.points) {
      low = Math.min(low, point.count, point.expected ?? point.count);
      high = Math.max(high, point.count, point.expected ?? point.count);
    }
    if (!Number.isFinite(low)) {
      low = 0;
      high = 10;
    }
    if (high - low < 4) high = low + 4;
    const x = (seconds: number) => pad.left + (seconds / this.spanSeconds) * plotWidth;
    const y = (count: number) => pad.top + plotHeight - ((count - low) / (high - low)) * plotHeight;

    context.strokeStyle = ink;
    context.fillStyle = ink;
    context.lineWidth = 1;
    context.globalAlpha = 0.35;
    context.beginPath();
    context.moveTo(pad.left, pad.top);
    context.lineTo(pad.left, pad.top + plotHeight);
    context.lineTo(pad.left + plotWidth, pad.top + plotHeight);
    context.stroke();
    context.globalAlpha = 1;
    context.font = "11px system-ui, sans-serif";
    context.textAlign = "right";
    context.textBaseline = "middle";
    context.fillText(String(high), pad.left - 6, pad.top);
    context.fillText(String(low), pad.left - 6, pad.top + plotHeight);
    context.textAlign = "center";
    context.textBaseline = "top";
    context.fillText("0 s", pad.left, pad.top + plotHeight + 6);
    context.fillText(Math.round(this.spanSeconds) + " s", pad.left + plotWidth - 8, pad.top + plotHeight + 6);

    const withExpected = this.points.filter((point) => point.expected !== null);
    if (withExpected.length > 0) {
      context.setLineDash([4, 4]);
      context.strokeStyle = ink;
      this.path(context, withExpected.map((point) => [x(point.seconds), y(point.expected!)]));
      context.setLineDash([]);
    }
    context.strokeStyle = line;
    context.lineWidth = 2;
    this.path(context, this.points.map((point) => [x(point.seconds), y(point.count)]));
  }

  // A step line: a count holds until the next one arrives.
  private path(context: CanvasRenderingContext2D, points: number[][]): void {
    if (points.length === 0) return;
    context.beginPath();
    context.moveTo(points[0][0], points[0][1]);
    for (let i = 1; i < points.length; i++) {
      context.lineTo(points[i][0], points[i - 1][1]);
      context.lineTo(points[i][0], points[i][1]);
    }
    context.stroke();
  }
}
