// How an update attempt's state reads, in one place for the table, the detail page, the
// deployments page and the tests. `UPDATE_STATES` is keyed by the server's `UpdateState` enum
// (generated into schema.d.ts): a state added on the Rust side fails `npm run check` here until
// it has a label, a tone and its flags, instead of falling through string comparisons.
import type { Device, Update, UpdateFailure, UpdateState } from '../api/types';

/** The colour family a state or verdict is drawn in (progress bars, labels, tally segments). */
export type Tone = 'run' | 'ok' | 'bad' | 'warn' | 'muted';

export type StateInfo = {
  /** One or two words for a table cell. */
  label: string;
  /** The longer wording of the update history. */
  history: string;
  tone: Tone;
  /** The device has started on it (an offer it has not taken up yet has not). */
  started: boolean;
  /** Still under way: counted as "updating". */
  moving: boolean;
  /** Went wrong: counted as "failed" (an interrupted stock download starts over by itself). */
  problem: boolean;
  /** Nothing more happens to the attempt. */
  finished: boolean;
};

export const UPDATE_STATES: Record<UpdateState, StateInfo> = {
  offered: { label: 'update offered', history: 'offered, waiting for the device', tone: 'run', started: false, moving: true, problem: false, finished: false },
  downloading: { label: 'downloading', history: 'downloading', tone: 'run', started: true, moving: true, problem: false, finished: false },
  verifying: { label: 'verifying', history: 'verifying', tone: 'run', started: true, moving: true, problem: false, finished: false },
  flashing: { label: 'flashing', history: 'flashing', tone: 'run', started: true, moving: true, problem: false, finished: false },
  rebooting: { label: 'rebooting', history: 'rebooting onto the new image', tone: 'run', started: true, moving: true, problem: false, finished: false },
  installing: { label: 'installing', history: 'installing (whole image received)', tone: 'run', started: true, moving: true, problem: false, finished: false },
  interrupted: { label: 'interrupted', history: 'download interrupted; starts over at its next check', tone: 'bad', started: true, moving: false, problem: true, finished: false },
  done: { label: 'done', history: 'done', tone: 'ok', started: true, moving: false, problem: false, finished: true },
  failed: { label: 'failed', history: 'failed', tone: 'bad', started: true, moving: false, problem: true, finished: true },
  cancelled: { label: 'cancelled', history: 'cancelled before it started', tone: 'muted', started: false, moving: false, problem: false, finished: true },
};

export function stateInfo(s: UpdateState): StateInfo {
  return UPDATE_STATES[s];
}

export function isUpdating(d: Device): boolean {
  return !!d.update && UPDATE_STATES[d.update.state].moving;
}

export function isFailed(d: Device): boolean {
  return !!d.update && UPDATE_STATES[d.update.state].problem;
}

/** The attempt reached its goal: the device checked in running the image. */
export function isDone(u: Update | null | undefined): boolean {
  return !!u && UPDATE_STATES[u.state].tone === 'ok';
}

/** The device's latest attempt still has something to show in the table's bar: under way, or
 *  stopped part-way (failed, interrupted). A done or cancelled attempt shows none. */
export function showsProgress(u: Update | null | undefined): u is Update {
  return !!u && (UPDATE_STATES[u.state].moving || UPDATE_STATES[u.state].problem);
}

/** The version the device is being moved to, or null when nothing is under way or pending. */
export function targetVersion(d: Device): string | null {
  const u = d.update;
  if (!showsProgress(u)) return null;
  return u.version ?? u.sha256.slice(0, 10);
}

/** One word or two for the table's state column. */
export function stateLabel(d: Device): string {
  const u = d.update;
  if (showsProgress(u)) return UPDATE_STATES[u.state].label;
  return d.online ? 'online' : 'offline';
}

export function updateLabel(u: Update): string {
  return UPDATE_STATES[u.state].history;
}

/** Why an attempt failed or was cancelled, by the server's `UpdateFailure` kind: a few words shown
 *  with the server's own `error` text (the device's words when it reported the failure). A kind
 *  added on the Rust side fails `npm run check` here until it has words. */
export const UPDATE_FAILURES: Record<UpdateFailure, string> = {
  device_reported: 'reported by the device',
  rolled_back: 'the device went back to its previous image after rebooting',
  not_installed: 'the device still runs its previous image after the whole download',
  download_cut: 'the download was cut; it starts over at the next check',
  superseded: 'replaced by a newer deployment',
  stopped: 'the deployment was stopped',
  image_deleted: 'the image was deleted from the library',
};

/** Why the attempt failed, in one line: the server's words, else the kind's. */
export function failureText(u: Update): string {
  return u.error || (u.failure ? UPDATE_FAILURES[u.failure] : '');
}
