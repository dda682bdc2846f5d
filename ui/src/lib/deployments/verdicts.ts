// How deployments and verdicts read, keyed by the server's enums (`DeploymentStatus`,
// `VerdictKind`) and the tally's buckets: a variant added on the Rust side fails `npm run check`
// here until it has its words and tone.
import type { Deployment, DeploymentStatus, Tally, Verdict, VerdictGroup, VerdictKind } from '../api/types';
import { UPDATE_STATES, type Tone } from '../devices/status';

type StatusInfo = {
  label: string;
  tone: Tone;
  /** Still targets its devices (and keeps its image from being deleted). */
  targets: boolean;
  /** Can be stopped; its failed devices can be retried. */
  live: boolean;
  /** A rollout's devices may still move on their own: its page keeps its waves current. */
  moving: boolean;
  /** What a person can do to a rollout in this status besides stopping it (the server refuses
   *  the other with 409). */
  rollout: 'pause' | 'resume' | null;
};

export const DEPLOYMENT_STATUS: Record<DeploymentStatus, StatusInfo> = {
  active: { label: 'active', tone: 'run', targets: true, live: true, moving: true, rollout: 'pause' },
  completed: { label: 'completed', tone: 'ok', targets: true, live: true, moving: false, rollout: null },
  paused: { label: 'paused', tone: 'warn', targets: true, live: true, moving: true, rollout: 'resume' },
  stopped: { label: 'stopped', tone: 'muted', targets: false, live: false, moving: false, rollout: null },
};

type VerdictInfo = {
  /** The dry run's wording after the count: "42 will be offered the image". */
  one: string;
  many: string;
  /** One or two words for a device's row. */
  label: string;
  tone: Tone;
  /** The plan option that would change this verdict, when there is one. */
  option?: 'rollback' | 'allow_other_project';
  /** An admin's Retry gives the device a new attempt. */
  retry?: boolean;
  /** The device gets (or is getting) the image: the deployment still has work to do for it. */
  offers?: boolean;
};

export const VERDICTS: Record<VerdictKind, VerdictInfo> = {
  offer: { one: 'will be offered the image', many: 'will be offered the image', label: 'offered', tone: 'run', offers: true },
  in_progress: { one: 'is getting it already', many: 'are getting it already', label: 'updating', tone: 'run', offers: true },
  already_running: { one: 'already runs it', many: 'already run it', label: 'runs it', tone: 'ok' },
  newer_running: { one: 'runs a newer version', many: 'run a newer version', label: 'newer running', tone: 'warn', option: 'rollback' },
  other_chip: { one: 'is another chip', many: 'are another chip', label: 'other chip', tone: 'muted' },
  other_project: { one: 'runs another project', many: 'run another project', label: 'other project', tone: 'warn', option: 'allow_other_project' },
  too_big: { one: 'has too little free space', many: 'have too little free space', label: 'too big', tone: 'warn' },
  failed: { one: 'failed at the attempt limit', many: 'failed at the attempt limit', label: 'failed', tone: 'bad', retry: true },
  chip_unknown: { one: 'has no known chip', many: 'have no known chip', label: 'chip unknown', tone: 'warn' },
  unsupported: { one: "has an updater that can't install it", many: "have an updater that can't install it", label: 'unsupported', tone: 'muted' },
  waiting: { one: 'has not said yet whether it takes it', many: 'have not said yet whether they take it', label: 'waiting', tone: 'muted' },
  superseded: { one: 'is targeted by a newer deployment', many: 'are targeted by a newer deployment', label: 'superseded', tone: 'muted' },
  waiting_for_wave: { one: 'waits for its wave', many: 'wait for their wave', label: 'waiting for its wave', tone: 'muted', offers: true },
  paused: { one: 'waits: the rollout is paused', many: 'wait: the rollout is paused', label: 'paused', tone: 'warn', offers: true },
  queued: { one: 'waits for a free slot', many: 'wait for a free slot', label: 'queued', tone: 'muted', offers: true },
};

// The tagged union and the kinds enum must name the same variants.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
const sameKinds: Same<Verdict['kind'], VerdictKind> = true;
void sameKinds;

/** "42 will be offered the image", "1 runs a newer version". */
export function groupPhrase(g: Pick<VerdictGroup, 'kind' | 'count'>): string {
  const v = VERDICTS[g.kind];
  return `${g.count} ${g.count === 1 ? v.one : v.many}`;
}

/** A device's verdict in a table cell: an attempt under way says its state and progress. */
export function verdictLabel(v: Verdict): string {
  if (v.kind === 'waiting_for_wave') return `wave ${v.wave}`;
  if (v.kind === 'in_progress') {
    const s = UPDATE_STATES[v.state];
    return s.moving && v.progress > 0 ? `${s.label} ${v.progress}%` : s.label;
  }
  return VERDICTS[v.kind].label;
}

export function verdictTone(v: Verdict): Tone {
  return v.kind === 'in_progress' ? UPDATE_STATES[v.state].tone : VERDICTS[v.kind].tone;
}

type BucketInfo = { label: string; tone: Tone; hint: string };

/** The status bar's buckets, in the order they are drawn. */
export const TALLY: Record<keyof Tally, BucketInfo> = {
  done: { label: 'done', tone: 'ok', hint: 'running the image' },
  in_progress: { label: 'in progress', tone: 'run', hint: 'downloading, verifying, flashing or rebooting' },
  waiting: { label: 'waiting', tone: 'muted', hint: 'offered at their next check, or not known yet to take it' },
  failed: { label: 'failed', tone: 'bad', hint: 'gave up at the attempt limit: Retry tries again' },
  held: { label: 'held', tone: 'warn', hint: 'not offered, for a reason (newer version, other chip or project, too big, …)' },
  superseded: { label: 'superseded', tone: 'muted', hint: 'a newer deployment targets them now' },
};

export const TALLY_KEYS = Object.keys(TALLY) as (keyof Tally)[];

/** Which tally bucket a verdict falls in (the server's own grouping, for the device list). */
export function bucketOf(v: Verdict): keyof Tally {
  switch (v.kind) {
    case 'already_running':
      return 'done';
    case 'in_progress':
      return UPDATE_STATES[v.state].started ? 'in_progress' : 'waiting';
    case 'offer':
    case 'waiting':
    case 'waiting_for_wave':
    case 'paused':
    case 'queued':
      return 'waiting';
    case 'failed':
      return 'failed';
    case 'superseded':
      return 'superseded';
    case 'newer_running':
    case 'other_chip':
    case 'other_project':
    case 'too_big':
    case 'chip_unknown':
    case 'unsupported':
      return 'held';
  }
}

/** Stopped deployments no longer target their devices; the rest do. */
export function targets(d: Deployment): boolean {
  return DEPLOYMENT_STATUS[d.status].targets;
}
