// The firmware library and the per-file results of uploads (browser) or native imports (desktop).
import type { Firmware } from '../api/types';
import { BackendError, type Backend, type NativeImportResult } from '../backend/backend';

export type UploadResult = {
  key: number;
  name: string;
  state: 'uploading' | 'accepted' | 'existing' | 'rejected';
  firmware?: Firmware;
  /** The server's error, shown verbatim; the UI only ever branches on `code`. */
  error?: { code: string; message: string };
};

let nextKey = 1;

export class FirmwareStore {
  items = $state.raw<Firmware[]>([]);
  loaded = $state(false);
  uploads = $state<UploadResult[]>([]);
  /** The refusal of the last delete, by firmware id (e.g. "still deployed"). */
  deleteErrors = $state<Record<number, { code: string; message: string }>>({});
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
  }

  applyRemoved(id: number) {
    this.items = this.items.filter((f) => f.id !== id);
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
    for (const file of files) {
      const key = nextKey++;
      this.uploads = [{ key, name: file.name, state: 'uploading' }, ...this.uploads];
      try {
        const { firmware, created } = await this.backend.uploadFirmware(file);
        this.#settle(key, { state: created ? 'accepted' : 'existing', firmware });
        this.applyFirmware(firmware);
      } catch (e) {
        this.#settle(key, { state: 'rejected', error: errorOf(e) });
      }
    }
  }

  /** Results the desktop shell reports for files it imported from native paths. */
  addNativeResults(results: NativeImportResult[]) {
    for (const r of results) {
      const name = r.path.split(/[\\/]/).pop() ?? r.path;
      const entry: UploadResult = r.ok
        ? { key: nextKey++, name, state: r.created ? 'accepted' : 'existing', firmware: r.firmware }
        : { key: nextKey++, name, state: 'rejected', error: r.error };
      this.uploads = [entry, ...this.uploads];
      if (r.ok) this.applyFirmware(r.firmware);
    }
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
