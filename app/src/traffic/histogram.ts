// Latencies in logarithmic buckets 5% apart, from 0.05 ms to over a
// minute: fixed memory however long a run lasts, percentiles within 5%.

const FIRST_MS = 0.05;
const GROWTH = 1.05;
const BUCKETS = 300;

export class Histogram {
  private counts = new Uint32Array(BUCKETS);
  private total = 0;

  record(ms: number): void {
    const index = ms <= FIRST_MS ? 0 : Math.ceil(Math.log(ms / FIRST_MS) / Math.log(GROWTH));
    this.counts[Math.min(BUCKETS - 1, index)]++;
    this.total++;
  }

  get count(): number {
    return this.total;
  }

  // The upper bound of the bucket that holds the q-th quantile (0 < q <= 1),
  // or NaN when nothing was recorded.
  quantile(q: number): number {
    if (this.total === 0) return NaN;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i];
      if (seen >= rank) return FIRST_MS * GROWTH ** i;
    }
    return FIRST_MS * GROWTH ** (BUCKETS - 1);
  }
}
