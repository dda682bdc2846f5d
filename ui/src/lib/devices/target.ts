// What the device page offers to do about a device's updates, from its history and target.
import type { DeviceTarget, Update } from '../api/types';
import { VERDICTS } from '../deployments/verdicts';
import { isDone } from './status';

/** The image a rollback returns the device to: what it ran before its last completed update
 *  (history is newest first). Null when no update completed. */
export function previousImage(history: Update[]): { version: string; from: Update } | null {
  const last = history.find((u) => isDone(u));
  if (!last) return null;
  return { version: last.from_version ?? (last.from_sha256 ? last.from_sha256.slice(0, 10) : 'the previous image'), from: last };
}

/** Retry is offered when the deployment that targets the device gave up on it. */
export function canRetry(t: DeviceTarget | null): boolean {
  return !!t && !!VERDICTS[t.verdict.kind].retry;
}
