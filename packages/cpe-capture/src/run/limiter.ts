// A small FIFO concurrency limiter (starts are bounded; stops never wait behind starts).
export class Limiter {
  private active = 0;
  private readonly queue: (() => void)[] = [];
  constructor(private readonly max: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    // A freed slot passes straight to the first waiter (active stays counted), so a caller arriving
    // before that waiter resumes cannot take it: strict FIFO, e.g. device stops in alarm order.
    if (this.active >= this.max) await new Promise<void>((r) => this.queue.push(r));
    else this.active++;
    try {
      return await fn();
    } finally {
      const next = this.queue.shift();
      if (next) next();
      else this.active--;
    }
  }
}
