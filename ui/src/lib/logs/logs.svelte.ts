import type { LogLevel, LogLine } from '../api/types';
import type { Backend, BackendError, LogStreamStatus } from '../backend/backend';

/** Levels from most to least severe; a filter shows its level and every more severe one. */
export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug', 'verbose'];

/** Lines the page keeps (the newest): enough to scroll back, small enough to stay smooth. */
export const KEEP_LINES = 2000;

/** One device's live log view: watching holds the server's log lease (the device sends lines
 *  only while someone watches); `stop()` releases it. Lines arriving faster than the page draws
 *  are queued and shown once per frame, so a chatty device cannot stall the page. */
export class LogView {
  lines = $state.raw<LogLine[]>([]);
  status = $state<LogStreamStatus | 'idle'>('idle');
  refusal = $state<{ code: string; message: string } | null>(null);
  paused = $state(false);
  /** Lines that arrived while paused (shown on resume). */
  held = $state(0);
  level = $state<LogLevel>('verbose');
  search = $state('');
  lagged = $state(false);
  #queue: LogLine[] = [];
  #pausedQueue: LogLine[] = [];
  #flushPending = false;
  #stop: (() => void) | null = null;

  constructor(
    private readonly backend: Backend,
    readonly mac: string,
    private readonly schedule: (f: () => void) => void = (f) =>
      typeof requestAnimationFrame === 'function' ? void requestAnimationFrame(() => f()) : void setTimeout(f, 16),
  ) {}

  /** Start watching (idempotent). */
  start() {
    if (this.#stop) return;
    this.refusal = null;
    this.#stop = this.backend.watchLogs(this.mac, {
      lines: (l) => this.#arrive(l),
      lagged: () => (this.lagged = true),
      status: (s, e?: BackendError) => {
        this.status = s;
        if (s === 'refused' && e) this.refusal = { code: e.code, message: e.message };
      },
    });
  }

  /** Stop watching: the device is told to stop sending soon after the last viewer left. */
  stop() {
    this.#stop?.();
    this.#stop = null;
    this.status = 'idle';
  }

  get watching(): boolean {
    return this.#stop !== null;
  }

  #arrive(l: LogLine[]) {
    if (this.paused) {
      this.#pausedQueue.push(...l);
      if (this.#pausedQueue.length > KEEP_LINES) this.#pausedQueue.splice(0, this.#pausedQueue.length - KEEP_LINES);
      this.held = this.#pausedQueue.length;
      return;
    }
    this.#queue.push(...l);
    if (!this.#flushPending) {
      this.#flushPending = true;
      this.schedule(() => this.#flush());
    }
  }

  #flush() {
    this.#flushPending = false;
    if (this.#queue.length === 0) return;
    const next = this.lines.concat(this.#queue);
    this.#queue = [];
    this.lines = next.length > KEEP_LINES ? next.slice(next.length - KEEP_LINES) : next;
  }

  pause() {
    this.paused = true;
  }

  resume() {
    this.paused = false;
    const held = this.#pausedQueue;
    this.#pausedQueue = [];
    this.held = 0;
    if (held.length) this.#arrive(held);
  }

  /** Clear the page's view (the server keeps its buffer). */
  clear() {
    this.lines = [];
    this.lagged = false;
  }

  /** The lines shown: at the chosen level or more severe, containing the search text. */
  get shown(): LogLine[] {
    const max = LOG_LEVELS.indexOf(this.level);
    const q = this.search.trim().toLowerCase();
    return this.lines.filter(
      (l) =>
        LOG_LEVELS.indexOf(l.level) <= max &&
        (!q || l.text.toLowerCase().includes(q) || (l.scope ?? '').toLowerCase().includes(q)),
    );
  }

  /** The shown lines as text, one per line, for saving. */
  text(): string {
    return this.shown
      .map((l) => `${l.received_at} ${l.level.toUpperCase().padEnd(7)} ${l.scope ? `[${l.scope}] ` : ''}${l.text}`)
      .join('\n');
  }
}
