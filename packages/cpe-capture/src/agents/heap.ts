// A binary min-heap keyed by a number (a due time). The agent client keeps every pending
// request's next resend/deadline here so one timer serves all of them.

export class MinHeap<T> {
  private readonly items: { at: number; value: T }[] = [];

  get size(): number {
    return this.items.length;
  }

  push(at: number, value: T): void {
    const a = this.items;
    a.push({ at, value });
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (a[parent]!.at <= a[i]!.at) break;
      [a[parent], a[i]] = [a[i]!, a[parent]!];
      i = parent;
    }
  }

  peekAt(): number | undefined {
    return this.items[0]?.at;
  }

  pop(): { at: number; value: T } | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (top === undefined || last === undefined || a.length === 0) return top;
    a[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < a.length && a[l]!.at < a[m]!.at) m = l;
      if (r < a.length && a[r]!.at < a[m]!.at) m = r;
      if (m === i) break;
      [a[m], a[i]] = [a[i]!, a[m]!];
      i = m;
    }
    return top;
  }

  /** Keep only entries for which `keep` is true (used to shed lazily-cancelled entries). */
  retain(keep: (value: T) => boolean): void {
    const kept = this.items.filter((e) => keep(e.value));
    this.items.length = 0;
    // Re-heapify by pushing: O(n log n), rare (only when most entries are stale).
    for (const e of kept) this.push(e.at, e.value);
  }

  clear(): void {
    this.items.length = 0;
  }
}
