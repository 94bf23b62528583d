// The listener's queue lanes: a fixed-capacity FIFO that refuses instead of growing.

/** Fixed-capacity FIFO ring: push fails instead of growing. */
export class Ring<T> {
  private readonly items: Array<T | undefined>;
  private head = 0;
  length = 0;
  constructor(readonly capacity: number) {
    this.items = new Array<T | undefined>(capacity);
  }
  push(item: T): boolean {
    if (this.length === this.capacity) return false;
    this.items[(this.head + this.length) % this.capacity] = item;
    this.length++;
    return true;
  }
  shift(): T | undefined {
    if (this.length === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) % this.capacity;
    this.length--;
    return item;
  }
  clear(): number {
    const n = this.length;
    while (this.length > 0) this.shift();
    return n;
  }
}
