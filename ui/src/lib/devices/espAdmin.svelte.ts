// "Add ESP Admin device…": a device that runs the ESP Admin SDK cannot introduce itself (it has no
// MAC to report and speaks only with a key compiled into it), so the admin adds it and copies what
// the server answers ONCE into the firmware: the device id, the API key (the server keeps only its
// hash) and a ready `credentials.h`. The server validates every field and publishes a `device`
// event, so the table shows the new row through the live stream; this form only collects the
// fields, keeps the answer while the dialog is open, and puts a refusal next to its field.
import type { EspAdminDeviceAdded, NewEspAdminDevice, TlsInfo } from '../api/types';
import type { Backend } from '../backend/backend';
import { errorOf } from '../firmware/firmware.svelte';

export type EspAdminField = 'name' | 'project';

/** The field a refusal is about, by the server's `error.code`. */
const FIELD_OF: Record<string, EspAdminField> = {
  invalid_name: 'name',
  invalid_project: 'project',
};

/** Where the SDK reads its credentials from. */
export const CREDENTIALS_PATH = 'include/credentials.h';

/**
 * Why the server gives no `credentials.h`, from what `GET /api/v1/tls` said: `tls_off` (plain HTTP
 * only, and the SDK speaks HTTPS only), `own_certificate` (the admin's `--tls-cert`: otafleet has
 * no CA of its own to embed), `unknown` (not known yet). Null when one is to be expected.
 */
export type NoCredentials = 'tls_off' | 'own_certificate' | 'unknown';
export function noCredentials(tls: TlsInfo | null, credentials?: string | null): NoCredentials | null {
  if (credentials) return null;
  if (tls?.mode === 'off') return 'tls_off';
  if (tls && tls.ca_pem == null) return 'own_certificate';
  return credentials === null ? 'unknown' : null;
}

export class EspAdminForm {
  name = $state('');
  project = $state('');
  busy = $state(false);
  error = $state<{ code: string; message: string } | null>(null);
  /** The field the last refusal is about (marked invalid and focused). */
  invalid = $derived<EspAdminField | null>(this.error ? (FIELD_OF[this.error.code] ?? null) : null);
  /** The server's answer: the id, the key and credentials.h, shown until the dialog closes. */
  added = $state<EspAdminDeviceAdded | null>(null);

  constructor(private readonly backend: Backend) {}

  /** A field was edited: a refusal about it (or about no field in particular) goes; one about
   *  the other field stays. */
  edited(field: EspAdminField) {
    if (this.error && (this.invalid === null || this.invalid === field)) this.error = null;
  }

  /** What is posted: trimmed, with blank fields left out (the server keeps them unset). */
  body(): NewEspAdminDevice {
    const d: NewEspAdminDevice = {};
    const name = this.name.trim();
    const project = this.project.trim();
    if (name) d.name = name;
    if (project) d.project = project;
    return d;
  }

  /** Add the device once: the answer (also kept in `added`), or null with `error` set. */
  async submit(): Promise<EspAdminDeviceAdded | null> {
    if (this.busy || this.added) return null;
    this.busy = true;
    this.error = null;
    try {
      this.added = await this.backend.createEspAdminDevice(this.body());
      return this.added;
    } catch (e) {
      this.error = errorOf(e);
      return null;
    } finally {
      this.busy = false;
    }
  }
}

/** The status line on the Devices page once the dialog is closed. */
export function espAdminAddedMessage(a: EspAdminDeviceAdded): string {
  const who = a.device.name ? `${a.device.name} (ESP Admin id ${a.id})` : `ESP Admin device ${a.id}`;
  return `Added ${who}: it shows as online once its firmware calls in with its key.`;
}
