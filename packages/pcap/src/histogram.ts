// Bounded-memory delay distribution: exact min/max/mean, quantiles from log buckets (1 % wide
// above 1 µs, 100 ns wide below), so median/p99 are within 1 % (or 100 ns) of the exact value.

const STEP = Math.log(1.01);
const LINEAR = 10; // buckets of 100 ns below 1 µs

function bucketOf(v: number): number {
  const a = Math.abs(v);
  const b = a < 1000 ? Math.floor(a / 100) : LINEAR + Math.floor(Math.log(a / 1000) / STEP);
  return v < 0 ? -b - 1 : b;
}

function valueOf(bucket: number): number {
  const neg = bucket < 0;
  const b = neg ? -bucket - 1 : bucket;
  const v = b < LINEAR ? b * 100 + 50 : 1000 * Math.exp((b - LINEAR + 0.5) * STEP);
  return neg ? -v : v;
}

export interface DelayStats {
  count: number;
  minNanos: number;
  medianNanos: number;
  p99Nanos: number;
  maxNanos: number;
  meanNanos: number;
}

export class DelayHistogram {
  private readonly counts = new Map<number, number>();
  count = 0;
  min = Number.POSITIVE_INFINITY;
  max = Number.NEGATIVE_INFINITY;
  private sum = 0;

  add(v: number): void {
    const b = bucketOf(v);
    this.counts.set(b, (this.counts.get(b) ?? 0) + 1);
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }

  /** Nearest-rank quantile, q in [0, 1]. */
  quantile(q: number): number {
    if (this.count === 0) return Number.NaN;
    if (q <= 0) return this.min;
    if (q >= 1) return this.max;
    const rank = Math.ceil(q * this.count);
    const keys = [...this.counts.keys()].sort((x, y) => valueOf(x) - valueOf(y));
    let seen = 0;
    for (const k of keys) {
      seen += this.counts.get(k)!;
      if (seen >= rank) return Math.min(this.max, Math.max(this.min, valueOf(k)));
    }
    return this.max;
  }

  stats(): DelayStats | null {
    if (this.count === 0) return null;
    return {
      count: this.count,
      minNanos: this.min,
      medianNanos: Math.round(this.quantile(0.5)),
      p99Nanos: Math.round(this.quantile(0.99)),
      maxNanos: this.max,
      meanNanos: Math.round(this.sum / this.count),
    };
  }
}
