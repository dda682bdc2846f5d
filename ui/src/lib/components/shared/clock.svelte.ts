// One shared ticking clock for "x s ago" labels: one timer for the whole page, not one per row.
class Clock {
  now = $state(Date.now());
  #timer: ReturnType<typeof setInterval> | null = null;
  #users = 0;

  /** Start ticking while at least one user holds it; returns the release function. */
  hold(): () => void {
    if (this.#users++ === 0) this.#timer = setInterval(() => (this.now = Date.now()), 5000);
    return () => {
      if (--this.#users === 0 && this.#timer) clearInterval(this.#timer);
    };
  }
}

export const clock = new Clock();
