// Batches live events so that hundreds per second cost one store update per animation frame:
// events are queued as they arrive and handed over together when the frame comes.

export type Scheduler = (flush: () => void) => void;

/** requestAnimationFrame where there is one (a hidden tab gets none: fall back to a timer so
 *  the queue cannot grow without bound while the window is in the background). */
export const frameScheduler: Scheduler = (flush) => {
  let done = false;
  const once = () => {
    if (!done) {
      done = true;
      flush();
    }
  };
  if (typeof requestAnimationFrame === 'function') requestAnimationFrame(once);
  setTimeout(once, 250);
};

export class EventBatcher<E> {
  #queue: E[] = [];
  #scheduled = false;

  constructor(
    private readonly sink: (batch: E[]) => void,
    private readonly schedule: Scheduler = frameScheduler,
  ) {}

  push(e: E) {
    this.#queue.push(e);
    if (!this.#scheduled) {
      this.#scheduled = true;
      this.schedule(() => this.flush());
    }
  }

  /** Deliver everything queued now (also used by tests and on teardown). */
  flush() {
    this.#scheduled = false;
    if (this.#queue.length === 0) return;
    const batch = this.#queue;
    this.#queue = [];
    this.sink(batch);
  }
}
