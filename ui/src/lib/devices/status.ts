// How a device's update state reads, in one place for the table, the detail page and the tests.
import type { Device, Update } from '../api/types';

/** States in which an update is still moving. */
const ACTIVE = new Set(['offered', 'downloading', 'verifying', 'flashing', 'rebooting', 'installing']);

export function isUpdating(d: Device): boolean {
  return !!d.update && ACTIVE.has(d.update.state);
}

export function isFailed(d: Device): boolean {
  return d.update?.state === 'failed' || d.update?.state === 'interrupted';
}

/** The version the device is being moved to, or null when it is where it should be. */
export function targetVersion(d: Device): string | null {
  const u = d.update;
  if (!u || u.state === 'done') return null;
  return u.version ?? u.sha256.slice(0, 10);
}

/** One word for the table's state column. */
export function stateLabel(d: Device): string {
  const u = d.update;
  if (u && u.state !== 'done') return u.state === 'offered' ? 'update offered' : u.state;
  return d.online ? 'online' : 'offline';
}

export function updateLabel(u: Update): string {
  return u.state === 'offered' ? 'offered, waiting for the device' : u.state;
}
