import type { ConfigEntry, DeviceConfig } from '../api/types';
import { errorOf } from '../firmware/firmware.svelte';
import type { Fleet } from '../fleet.svelte';

type Err = { code: string; message: string };
/** A field as edited: text (string, int, secret) or a checkbox (bool). */
type Field = string | boolean;

function shown(e: ConfigEntry): Field {
  const v = e.value ?? e.default;
  if (e.type === 'bool') return v === true;
  if (e.type === 'secret') return '';
  return v == null ? '' : String(v);
}

/** One device's config on its page: loaded, followed live (`device_config`: pending → applied),
 *  edited and saved. Secrets are write-only: the field starts empty and is sent only when
 *  something is typed; "clear" sends null (back to the project's default). */
export class ConfigEditor {
  config = $state<DeviceConfig | null>(null);
  error = $state<Err | null>(null);
  saving = $state(false);
  /** What the fields say now, by key. */
  fields = $state<Record<string, Field>>({});
  /** Keys to return to the project's default at the next save. */
  reset = $state<Record<string, boolean>>({});

  constructor(
    private readonly fleet: Fleet,
    readonly mac: string,
  ) {}

  /** Read the config (on open, and again after every full reload of the fleet). */
  load() {
    return this.fleet.backend.deviceConfig(this.mac).then(
      (c) => (this.#arrive(c), (this.error = null)),
      (e) => (this.error = errorOf(e)),
    );
  }

  /** Follow this device's config events; returns the function that stops following. */
  follow(): () => void {
    return this.fleet.onConfig((c) => {
      if (c.mac === this.mac) this.#arrive(c);
    });
  }

  /** A newer config, read or pushed: fields the person is editing are kept (only the version
   *  and state move), the others show it. A reload that lands while someone types must not
   *  throw away what they typed. */
  #arrive(c: DeviceConfig) {
    if (this.config && this.dirty) this.config = c;
    else this.#take(c);
  }

  #take(c: DeviceConfig) {
    this.config = c;
    this.fields = Object.fromEntries(c.variables.map((e) => [e.key, shown(e)]));
    this.reset = {};
  }

  /** The values to send: fields that differ from what the device has, typed; null for a reset. */
  changes(): { values: Record<string, unknown> } | { error: string } {
    const values: Record<string, unknown> = {};
    for (const e of this.config?.variables ?? []) {
      if (this.reset[e.key]) {
        if (e.set) values[e.key] = null;
        continue;
      }
      const f = this.fields[e.key];
      if (e.type === 'secret') {
        if (typeof f === 'string' && f !== '') values[e.key] = f;
        continue;
      }
      if (f === shown(e)) continue;
      if (e.type === 'bool') values[e.key] = f === true;
      else if (e.type === 'int') {
        const t = String(f).trim();
        if (!/^-?\d+$/.test(t)) return { error: `${e.key} must be a whole number.` };
        values[e.key] = Number(t);
      } else values[e.key] = String(f);
    }
    return { values };
  }

  get dirty(): boolean {
    const c = this.changes();
    return 'error' in c || Object.keys(c.values).length > 0;
  }

  /** Save the changes: a new version, pending until the device confirms it. */
  async save() {
    const c = this.changes();
    if ('error' in c) {
      this.error = { code: 'invalid_config_value', message: c.error };
      return;
    }
    if (Object.keys(c.values).length === 0) return;
    this.saving = true;
    try {
      this.#take(await this.fleet.backend.patchDeviceConfig(this.mac, { values: c.values }));
      this.error = null;
    } catch (e) {
      this.error = errorOf(e);
    } finally {
      this.saving = false;
    }
  }
}
