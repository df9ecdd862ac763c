/**
 * Runs search slices one per event-loop turn, first come first served,
 * across every collection of the process. The CPU backend computes on the
 * calling thread (its worker threads help, the caller waits for them), so a
 * large batch is cut into slices of bounded work; between two slices the
 * event loop polls I/O, and health checks, writes and other requests are
 * answered. Without the shared queue, N searches each yielding with
 * setImmediate would still run N slices back to back in one turn.
 */
export class SliceQueue {
  private readonly waiting: (() => void)[] = [];
  private running = false;

  /** Runs `slice` in its turn; resolves or rejects with it. */
  run<T>(slice: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.waiting.push(() => {
        slice()
          .then(resolve, reject)
          .finally(() => {
            this.running = false;
            this.next();
          });
      });
      this.next();
    });
  }

  /** Slices queued or running. */
  get depth(): number {
    return this.waiting.length + (this.running ? 1 : 0);
  }

  private next(): void {
    if (this.running || this.waiting.length === 0) return;
    this.running = true;
    // setImmediate queued from here runs after the next I/O poll, never in the current turn
    setImmediate(() => this.waiting.shift()!());
  }
}

/** The process-wide queue (one event loop per process). */
export const searchSlices = new SliceQueue();
