// The custom rollout plan being edited in the deploy dialog: rows of waves (each keeps its tag,
// count and share, so switching a row's kind and back loses nothing) and the plan's settings.
// Empty number fields mean "the server's default" (or "no limit" where the plan allows none).
// The server checks the plan at every dry run and says what is wrong (`invalid_plan`).
import type { RolloutPlan, WaveSpec } from '../api/types';

export type WaveRow = { id: number; by: WaveSpec['by']; tag: string; count: number | null; percent: number | null };

/** Where a custom plan starts when no preset's plan is on screen: the canary shape, whose waves
 *  a person most often adapts. */
export const CUSTOM_START: RolloutPlan = {
  waves: [{ by: 'tag', tag: 'canary' }, { by: 'percent', percent: 10 }, { by: 'percent', percent: 50 }, { by: 'percent', percent: 100 }],
  success_pct: 100,
  error_limit: { devices: null, percent: 10 },
  soak_s: 60,
  max_parallel: null,
  pause_after_wave: false,
  offline_limit_s: null,
};

/** The server's limit on waves. */
export const MAX_WAVES = 20;

let nextId = 1;

function row(w: WaveSpec): WaveRow {
  const r: WaveRow = { id: nextId++, by: w.by, tag: 'canary', count: 5, percent: 100 };
  if (w.by === 'tag') r.tag = w.tag;
  else if (w.by === 'count') r.count = w.count;
  else r.percent = w.percent;
  return r;
}

export class RolloutDraft {
  waves = $state<WaveRow[]>([]);
  soak_s = $state<number | null>(60);
  success_pct = $state<number | null>(100);
  error_devices = $state<number | null>(null);
  error_percent = $state<number | null>(10);
  max_parallel = $state<number | null>(null);
  pause_after_wave = $state(false);
  offline_limit_s = $state<number | null>(null);

  constructor(plan: RolloutPlan = CUSTOM_START) {
    this.load(plan);
  }

  /** Start from this plan (a preset's, as the server answered it). */
  load(p: RolloutPlan) {
    this.waves = p.waves.map(row);
    this.soak_s = p.soak_s ?? null;
    this.success_pct = p.success_pct ?? null;
    this.error_devices = p.error_limit?.devices ?? null;
    this.error_percent = p.error_limit?.percent ?? null;
    this.max_parallel = p.max_parallel ?? null;
    this.pause_after_wave = p.pause_after_wave ?? false;
    this.offline_limit_s = p.offline_limit_s ?? null;
  }

  get canAdd(): boolean {
    return this.waves.length < MAX_WAVES;
  }

  get canRemove(): boolean {
    return this.waves.length > 1;
  }

  /** A new wave before the last one (the last takes every device left anyway): halfway between
   *  the shares around it when there is room, else one device. */
  add() {
    if (!this.canAdd) return;
    const last = this.waves.at(-1);
    const before = this.waves.slice(0, -1).filter((w) => w.by === 'percent').map((w) => w.percent ?? 0);
    const low = Math.max(0, ...before);
    const high = last?.by === 'percent' && last.percent != null ? last.percent : 100;
    const mid = Math.round((low + high) / 2);
    const w = mid > low && mid < high ? row({ by: 'percent', percent: mid }) : row({ by: 'count', count: 1 });
    this.waves = last ? [...this.waves.slice(0, -1), w, last] : [w];
  }

  remove(id: number) {
    if (this.canRemove) this.waves = this.waves.filter((w) => w.id !== id);
  }

  /** The plan to send. An empty count or share goes as 0, which the server refuses with the
   *  wave's number: better than guessing what the person meant. */
  plan(): RolloutPlan {
    const waves: WaveSpec[] = this.waves.map((w): WaveSpec => {
      switch (w.by) {
        case 'tag':
          return { by: 'tag', tag: w.tag.trim() };
        case 'count':
          return { by: 'count', count: w.count ?? 0 };
        case 'percent':
          return { by: 'percent', percent: w.percent ?? 0 };
      }
    });
    const p: RolloutPlan = {
      waves,
      error_limit: { devices: this.error_devices, percent: this.error_percent },
      max_parallel: this.max_parallel,
      pause_after_wave: this.pause_after_wave,
      offline_limit_s: this.offline_limit_s,
    };
    if (this.soak_s != null) p.soak_s = this.soak_s;
    if (this.success_pct != null) p.success_pct = this.success_pct;
    return p;
  }
}
