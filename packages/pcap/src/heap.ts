// A binary min-heap ordered by a caller's `less`: the k-way merges keep their input streams here.
// The root may be re-keyed in place (siftRoot) so a merge pays one sift per refill, not two.

export class BinaryHeap<T> {
  readonly items: T[] = [];

  constructor(private readonly less: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(x: T): void {
    const a = this.items;
    a.push(x);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }

  /** Remove and return the smallest item. */
  pop(): T | undefined {
    const top = this.items[0];
    if (top !== undefined) this.siftRoot(true);
    return top;
  }

  /** Restore order after the root's key grew (or remove the root when `remove`). */
  siftRoot(remove: boolean): void {
    const a = this.items;
    if (remove) {
      const last = a.pop()!;
      if (a.length === 0) return;
      a[0] = last;
    }
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < a.length && this.less(a[l]!, a[m]!)) m = l;
      if (r < a.length && this.less(a[r]!, a[m]!)) m = r;
      if (m === i) return;
      [a[i], a[m]] = [a[m]!, a[i]!];
      i = m;
    }
  }

  /** The smaller child of the root: the next item to compete with the root. */
  runnerUp(): T | undefined {
    const l = this.items[1];
    const r = this.items[2];
    if (l === undefined) return r;
    if (r === undefined) return l;
    return this.less(l, r) ? l : r;
  }

  /** Keep only the items for which `keep` is true. */
  retain(keep: (x: T) => boolean): void {
    const kept = this.items.filter(keep);
    this.items.length = 0;
    for (const x of kept) this.push(x);
  }

  clear(): void {
    this.items.length = 0;
  }
}
