// How an update attempt's state reads, in one place for the table, the detail page, the
// deployments page and the tests. `UPDATE_STATES` is keyed by the server's `UpdateState` enum
// (generated into schema.d.ts): a state added on the Rust side fails `npm run check` here until
// it has a label, a tone and its flags, instead of falling through string comparisons.
import type { Device, DeviceAuth, Update, UpdateFailure, UpdateState } from '../api/types';

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

/** What to check, per failure kind: `short` fits a table row next to the error text, `hint` is
 *  the device page's and the deployment's fuller advice. Keyed by the enum, never by the
 *  `error` text: a kind added on the Rust side fails `npm run check` here until it has a hint. */
export type FailureHint = { short: string; hint: string; tone: Tone };

export const FAILURE_HINTS: Record<UpdateFailure, FailureHint> = {
  device_reported: {
    short: 'see the device’s message; retry once fixed',
    hint:
      'The device itself reported this while downloading, verifying or flashing: its message says what failed. ' +
      'A write or verification error that comes back points at the flash or the partition table. Retry once the cause is fixed.',
    tone: 'bad',
  },
  rolled_back: {
    short: 'new image did not boot: check serial log, partition size',
    hint:
      'The device rebooted into the new image and came back on the previous one: the bootloader rolled back because the new ' +
      'image did not start or did not mark itself valid. Check the serial log at boot, that the image fits the OTA partition, ' +
      'and that it was built for this chip and partition table.',
    tone: 'bad',
  },
  not_installed: {
    short: 'downloaded but not installed: check free space, partition, signature',
    hint:
      'The stock updater received the whole image but the device still runs the old one: it refused to install it. ' +
      'Check the free OTA space, the partition table, and, if the sketch checks a signature or MD5, that the image passes it.',
    tone: 'bad',
  },
  download_cut: {
    short: 'Wi-Fi or power dropped during the download; it retries by itself',
    hint:
      'The download stopped part-way, most often weak Wi-Fi or a power loss; nothing was installed. A native device resumes ' +
      'at its next check-in, a stock updater starts over. If it keeps happening, check the signal and the power supply.',
    tone: 'warn',
  },
  superseded: {
    short: 'a newer deployment replaced it; nothing to do',
    hint: 'A newer deployment that covers this device replaced this one before the device started; it is offered that image instead. Nothing to do.',
    tone: 'muted',
  },
  stopped: {
    short: 'the deployment was stopped; deploy again if still wanted',
    hint: 'The deployment was stopped before the device started on it. Deploy the image again if the device should still get it.',
    tone: 'muted',
  },
  image_deleted: {
    short: 'the image was deleted; import it again to deploy it',
    hint: 'The image was deleted from the library, so it can no longer be sent. Import it again and deploy it if the device should still get it.',
    tone: 'muted',
  },
};

/** The hint for an attempt that failed, was cancelled or was cut, or null when the server gave
 *  no kind (an attempt from before kinds were recorded). */
export function failureHint(u: Update | null | undefined): FailureHint | null {
  return u?.failure ? FAILURE_HINTS[u.failure] : null;
}

/** The failed attempts among `updates`, grouped by their kind (`null`: no kind given), the
 *  largest group first: a deployment's "2 rolled back · 1 download cut". */
export function failuresByKind(updates: (Update | null | undefined)[]): { kind: UpdateFailure | null; count: number }[] {
  const counts = new Map<UpdateFailure | null, number>();
  for (const u of updates) {
    if (!u || !UPDATE_STATES[u.state].problem) continue;
    const k = u.failure ?? null;
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return [...counts].map(([kind, count]) => ({ kind, count })).sort((a, b) => b.count - a.count);
}

/** What the table's marker says about a device whose last check-in came over plain HTTP. */
export const PLAIN_HTTP_TITLE = 'Checks in over plain HTTP: its token and traffic can be read on the LAN';

/** How the device's last check-in reached the server, from `device.tls` (null: it has not
 *  checked in since the server started recording it, or never did). */
export function connectionLabel(tls: boolean | null | undefined): string {
  if (tls == null) return 'not known yet';
  return tls ? 'HTTPS' : 'Plain HTTP';
}

/** How the server recognises a device's requests, from `device.auth` (never from `weak_auth` or
 *  a name): the words of the device page. */
export const DEVICE_AUTH: Record<DeviceAuth, { label: string; detail: string; tone: Tone }> = {
  token: {
    label: 'device token',
    detail: 'Its native check-ins carry the token it was issued at enrolment; stock-client routes refuse its MAC.',
    tone: 'ok',
  },
  api_key: {
    label: 'API key (ESP Admin)',
    detail: 'Its HTTPS requests and its MQTT login carry the API key made when it was added (otafleet keeps only its hash); every other route refuses its made-up MAC.',
    tone: 'ok',
  },
  shared_secret: {
    label: 'shared secret (legacy)',
    detail: 'The legacy sketch’s djb2 of its MAC and the shared secret: one sniffed request is enough to forge it.',
    tone: 'warn',
  },
  mac: {
    label: 'MAC only',
    detail: 'A stock updater: it holds no token, so anything on the network that sends this MAC is taken for this device.',
    tone: 'warn',
  },
  pending_enrolment: {
    label: 'pending enrolment',
    detail: 'Expects the native client and holds no token yet: its next native check-in enrols it and is handed one.',
    tone: 'run',
  },
  unclaimed: {
    label: 'unclaimed',
    detail: 'No protocol has claimed it yet: the first one to check in does, if enrolment allows it.',
    tone: 'muted',
  },
};
