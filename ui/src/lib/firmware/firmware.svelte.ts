// The firmware library and the per-file results of uploads (browser) or native imports (desktop),
// the firmware sheet that is open (what an image was read as, corrected by the admin), and the
// notices of watch-folder imports that need a project or version.
import type { Firmware, FirmwarePatch } from '../api/types';
import { BackendError, type Backend, type NativeImportResult } from '../backend/backend';
import { baseName, folderOf, needsIdentity } from './identity';

export type UploadResult = {
  key: number;
  name: string;
  state: 'uploading' | 'accepted' | 'existing' | 'rejected';
  firmware?: Firmware;
  /** The server's error, shown verbatim; the UI only ever branches on `code`. */
  error?: { code: string; message: string };
};

/** What an import result asks of the admin: the identity the image lacks, or, for bytes already
 *  in the library under another file name, whether to rename the record to the dropped name. */
export function attention(u: UploadResult): 'rename' | 'identity' | null {
  if (!u.firmware || (u.state !== 'accepted' && u.state !== 'existing')) return null;
  if (u.state === 'existing' && u.name !== u.firmware.filename) return 'rename';
  return needsIdentity(u.firmware) ? 'identity' : null;
}

/** Why the sheet is open: from the library, right after an import, from a watch folder's
 *  notice, or to rename a record to the name its bytes were dropped again under. */
export type SheetRequest = { id: number; why: 'library' | 'import' | 'watch' | 'rename'; rename?: string };

/** A watch folder imported an image whose project or version is unknown. */
export type WatchNotice = { id: number; file: string; folder: string };

let nextKey = 1;

export class FirmwareStore {
  items = $state.raw<Firmware[]>([]);
  loaded = $state(false);
  uploads = $state<UploadResult[]>([]);
  /** The refusal of the last delete, by firmware id (e.g. "still deployed"). */
  deleteErrors = $state<Record<number, { code: string; message: string }>>({});
  /** The firmware sheet, when one is open. */
  sheet = $state<SheetRequest | null>(null);
  notices = $state<WatchNotice[]>([]);
  /** Desktop: files are being dragged over the window (the shell imports them when dropped). */
  hover = $state(false);
  #staleTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly backend: Backend) {}

  async load() {
    this.items = await this.backend.listFirmware();
    this.loaded = true;
  }

  byId(id: number): Firmware | undefined {
    return this.items.find((f) => f.id === id);
  }

  applyFirmware(fw: Firmware) {
    const i = this.items.findIndex((f) => f.id === fw.id);
    this.items = i >= 0 ? this.items.with(i, fw) : [fw, ...this.items];
    // A watch folder's new image nobody dropped: say so when it needs a project or version.
    if (i < 0 && this.loaded && fw.source === 'watch' && needsIdentity(fw) && !this.notices.some((n) => n.id === fw.id)) {
      const path = fw.source_path ?? fw.filename;
      this.notices = [...this.notices, { id: fw.id, file: baseName(path), folder: folderOf(path) }];
    }
    if (!needsIdentity(fw)) this.dismissNotice(fw.id);
    if (this.uploads.some((u) => u.firmware?.id === fw.id)) {
      this.uploads = this.uploads.map((u) => (u.firmware?.id === fw.id ? { ...u, firmware: fw } : u));
    }
  }

  applyRemoved(id: number) {
    this.items = this.items.filter((f) => f.id !== id);
    this.dismissNotice(id);
    if (this.sheet?.id === id) this.sheet = null;
  }

  openSheet(req: SheetRequest) {
    this.sheet = req;
  }

  closeSheet() {
    this.sheet = null;
  }

  dismissNotice(id: number) {
    if (this.notices.some((n) => n.id === id)) this.notices = this.notices.filter((n) => n.id !== id);
  }

  /** Open the sheet for an import result that needs the admin, unless one is open already. */
  #prompt(results: UploadResult[]) {
    if (this.sheet) return;
    for (const u of results) {
      const need = attention(u);
      if (!need) continue;
      this.sheet = need === 'rename' ? { id: u.firmware!.id, why: 'rename', rename: u.name } : { id: u.firmware!.id, why: 'import' };
      return;
    }
  }

  /** The admin's correction; the server's answer replaces the record. Throws the server's
   *  refusal (`invalid_project`, `invalid_version`, `invalid_filename`, `conflict`) as
   *  `{code, message}`. */
  async save(id: number, patch: FirmwarePatch): Promise<Firmware> {
    try {
      const fw = await this.backend.patchFirmware(id, patch);
      this.applyFirmware(fw);
      return fw;
    } catch (e) {
      throw errorOf(e);
    }
  }

  /** Devices changed what they run: `devices_running` is the server's count, so reload the
   *  list, at most every two seconds however many devices check in. */
  markStale() {
    if (this.#staleTimer) return;
    this.#staleTimer = setTimeout(() => {
      this.#staleTimer = null;
      this.load().catch(() => undefined);
    }, 2000);
  }

  /** Upload files one after the other, each with its own result line. */
  async upload(files: File[]) {
    const keys: number[] = [];
    for (const file of files) {
      const key = nextKey++;
      keys.push(key);
      this.uploads = [{ key, name: file.name, state: 'uploading' }, ...this.uploads];
      try {
        const { firmware, created } = await this.backend.uploadFirmware(file);
        this.#settle(key, { state: created ? 'accepted' : 'existing', firmware });
        this.applyFirmware(firmware);
      } catch (e) {
        this.#settle(key, { state: 'rejected', error: errorOf(e) });
      }
    }
    this.#prompt(keys.map((k) => this.uploads.find((u) => u.key === k)).filter((u) => u !== undefined));
  }

  /** Results the desktop shell reports for files it imported from native paths. */
  addNativeResults(results: NativeImportResult[]) {
    const added: UploadResult[] = [];
    for (const r of results) {
      const name = baseName(r.path);
      const entry: UploadResult = r.ok
        ? { key: nextKey++, name, state: r.created ? 'accepted' : 'existing', firmware: r.firmware }
        : { key: nextKey++, name, state: 'rejected', error: r.error };
      this.uploads = [entry, ...this.uploads];
      added.push(entry);
      if (r.ok) this.applyFirmware(r.firmware);
    }
    this.#prompt(added);
  }

  dismissUploads() {
    this.uploads = this.uploads.filter((u) => u.state === 'uploading');
  }

  async remove(id: number): Promise<boolean> {
    const { [id]: _, ...rest } = this.deleteErrors;
    this.deleteErrors = rest;
    try {
      await this.backend.deleteFirmware(id);
      this.applyRemoved(id);
      return true;
    } catch (e) {
      this.deleteErrors = { ...this.deleteErrors, [id]: errorOf(e) };
      return false;
    }
  }

  #settle(key: number, patch: Partial<UploadResult>) {
    this.uploads = this.uploads.map((u) => (u.key === key ? { ...u, ...patch } : u));
  }
}

export function errorOf(e: unknown): { code: string; message: string } {
  if (e instanceof BackendError) return { code: e.code, message: e.message };
  return { code: 'unexpected', message: e instanceof Error ? e.message : String(e) };
}
