// Watch folders: build output folders (PlatformIO's .pio/build/<env>, an Arduino build folder)
// whose finished .bin files the server imports by itself, and, per folder, deploys. The server
// does the watching; this store lists the folders with each one's last result, kept live by the
// `watch` (a file was handled) and `watch_folders` (the list changed) events.
import type { WatchFolder } from '../api/types';
import { BackendError, type Backend } from '../backend/backend';

export class WatchStore {
  items = $state.raw<WatchFolder[]>([]);
  loaded = $state(false);
  /** The refusal of the last add (e.g. `invalid_path`), shown verbatim. */
  error = $state<{ code: string; message: string } | null>(null);

  constructor(private readonly backend: Backend) {}

  async load() {
    this.items = await this.backend.listWatchFolders();
    this.loaded = true;
  }

  /** A folder's last result changed. */
  apply(folder: WatchFolder) {
    const i = this.items.findIndex((f) => f.id === folder.id);
    this.items = i >= 0 ? this.items.with(i, folder) : [...this.items, folder];
  }

  async add(path: string, autoDeploy: boolean): Promise<boolean> {
    this.error = null;
    try {
      this.apply(await this.backend.addWatchFolder({ path: path.trim(), auto_deploy: autoDeploy }));
      return true;
    } catch (e) {
      this.error =
        e instanceof BackendError ? { code: e.code, message: e.message } : { code: 'unexpected', message: String(e) };
      return false;
    }
  }

  async remove(id: number) {
    await this.backend.removeWatchFolder(id);
    this.items = this.items.filter((f) => f.id !== id);
  }
}
