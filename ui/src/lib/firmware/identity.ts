// Where each value of an image's record came from, in words, for the firmware sheet. One map per
// server enum (IdentitySource): a variant added in Rust fails `npm run check` until it has words.
import type { Firmware, IdentitySource } from '../api/types';

export const IDENTITY_SOURCES: Record<IdentitySource, string> = {
  override: 'given with the upload',
  app_desc: "from the image's app descriptor",
  filename: 'from the file name',
  admin: 'set by you',
  none: 'unknown',
};

/** How the image arrived (`Firmware.source`: upload | path | watch). */
export function arrival(f: Firmware): string {
  switch (f.source) {
    case 'watch':
      return f.source_path ? `imported from the watch folder ${folderOf(f.source_path)}` : 'imported from a watch folder';
    case 'path':
      return f.source_path ? `imported from ${f.source_path}` : 'imported from a file on this machine';
    default:
      return 'uploaded';
  }
}

export function folderOf(path: string): string {
  const i = Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\'));
  return i > 0 ? path.slice(0, i) : path;
}

export function baseName(path: string): string {
  return path.split(/[\\/]/).pop() ?? path;
}

/** True while the image lacks a project or a version: the UI asks for them instead of guessing. */
export function needsIdentity(f: Firmware): boolean {
  return f.project == null || f.version == null;
}

/** Why a value is unknown, in words a person can act on. */
export function whyUnknown(f: Firmware, field: 'project' | 'version'): string {
  if (field === 'project') {
    return (
      `Neither the image nor its file name ${f.filename} names a project (a generic build-output name;` +
      " an Arduino build's descriptor names the Arduino core, not the sketch). Deployments go to a project's devices."
    );
  }
  return `Neither the image nor its file name gives a version: without one, nothing can tell whether it is newer than what a device runs.`;
}

export type FirmwareGroup = { project: string | null; items: Firmware[] };

const newestFirst = (a: Firmware, b: Firmware) =>
  Date.parse(b.uploaded_at) - Date.parse(a.uploaded_at) || b.id - a.id;

/** The library by project, newest image first in each: images without a project first (they
 *  need one), then the projects in alphabetical order, so a group does not jump when an image
 *  is added. */
export function groupByProject(items: readonly Firmware[]): FirmwareGroup[] {
  const by = new Map<string | null, Firmware[]>();
  for (const f of items) {
    const key = f.project ?? null;
    const list = by.get(key);
    if (list) list.push(f);
    else by.set(key, [f]);
  }
  const keys = [...by.keys()].sort((a, b) => (a === null ? -1 : b === null ? 1 : a.localeCompare(b)));
  return keys.map((project) => ({ project, items: by.get(project)!.sort(newestFirst) }));
}
