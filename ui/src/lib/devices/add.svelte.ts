// "Add device…": the admin adds a device before it checks in (with open enrolment off, the only
// way a new device gets in; docs/security.md). The server validates and normalises every field
// and publishes a `device` event, so the table shows the device through the live stream like any
// other change; this form only collects the fields, picks a sensible expected protocol, and keeps
// the server's refusal to show it next to the field it is about.
import type { Device, NewDevice } from '../api/types';
import type { Backend } from '../backend/backend';
import { errorOf } from '../firmware/firmware.svelte';

/** Which protocol may claim and serve a device (the server's trust rules), plus `any`. */
export const PROTOCOLS = ['native', 'arduino', 'esp8266', 'esp32fota', 'legacy', 'any'] as const;

/** The chips the server knows (it refuses others with `invalid_chip`). */
export const CHIPS = [
  'esp32', 'esp32s2', 'esp32s3', 'esp32c2', 'esp32c3', 'esp32c5', 'esp32c6', 'esp32c61', 'esp32h2', 'esp32p4', 'esp8266',
] as const;

export type Suggestion = { protocol: string; why: string };

/**
 * The expected protocol that fits a new device: an ESP8266 can only be served to by
 * ESP8266httpUpdate (every other client otafleet speaks to runs on ESP32 chips); otherwise the one
 * protocol the project's other devices (of the same chip, when given) use, when they agree;
 * otherwise `any`.
 */
export function suggestProtocol(project: string, chip: string, devices: Iterable<Device>): Suggestion {
  if (chip === 'esp8266') return { protocol: 'esp8266', why: 'ESP8266httpUpdate is the only client otafleet serves on an ESP8266' };
  const p = project.trim();
  if (p) {
    const seen = new Set<string>();
    let n = 0;
    for (const d of devices) {
      if (d.project !== p || (chip && d.chip !== chip)) continue;
      const proto = d.expect_protocol ?? d.protocol;
      if (!proto) continue;
      seen.add(proto);
      n++;
    }
    if (seen.size === 1) {
      const [protocol] = seen;
      return { protocol, why: `like the ${n === 1 ? 'other device' : `${n} other devices`} of ${p}${chip ? ` on ${chip}` : ''}` };
    }
  }
  return { protocol: 'any', why: '' };
}

/** The status line after a device was added: who, and which protocol may now serve it. */
export function addedMessage(d: Device): string {
  const who = d.name ? `${d.name} (${d.mac})` : d.mac;
  if (d.expect_protocol === 'any') return `Added ${who}: any protocol may serve it once it checks in.`;
  if (d.expect_protocol) return `Added ${who}: only ${d.expect_protocol} may serve it once it checks in.`;
  return `Added ${who}: the first protocol that checks in claims it.`;
}

export type Field = 'mac' | 'name' | 'project' | 'chip' | 'expect';

/** The field a refusal is about, by the server's `error.code`. */
const FIELD_OF: Record<string, Field> = {
  invalid_mac: 'mac',
  conflict: 'mac', // the only conflict adding a device has: that MAC is already known
  invalid_name: 'name',
  invalid_project: 'project',
  invalid_chip: 'chip',
  invalid_expect_protocol: 'expect',
};

export class AddDeviceForm {
  mac = $state('');
  name = $state('');
  project = $state('');
  chip = $state('');
  /** The person's choice; null follows the suggestion. */
  chosen = $state<string | null>(null);
  busy = $state(false);
  error = $state<{ code: string; message: string } | null>(null);
  /** The field the last refusal is about (marked invalid and focused). */
  invalid = $derived<Field | null>(this.error ? (FIELD_OF[this.error.code] ?? null) : null);

  constructor(
    private readonly backend: Backend,
    private readonly devices: () => Iterable<Device> = () => [],
  ) {}

  suggestion = $derived.by(() => suggestProtocol(this.project, this.chip, this.devices()));
  expect = $derived(this.chosen ?? this.suggestion.protocol);

  /** A field was edited: a refusal about that field (or about none in particular) no longer
   *  describes what the form holds, so it goes; one about another field stays. */
  edited(field: Field) {
    if (this.error && (this.invalid === null || this.invalid === field)) this.error = null;
  }

  /** What is posted: trimmed, with blank fields left out (the server keeps them unset). */
  body(): NewDevice {
    const d: NewDevice = { mac: this.mac.trim(), expect_protocol: this.expect };
    const name = this.name.trim();
    const project = this.project.trim();
    if (name) d.name = name;
    if (project) d.project = project;
    if (this.chip) d.chip = this.chip;
    return d;
  }

  /** Add the device; the server's answer, or null with `error` set. */
  async submit(): Promise<Device | null> {
    if (!this.mac.trim() || this.busy) return null;
    this.busy = true;
    this.error = null;
    try {
      return await this.backend.createDevice(this.body());
    } catch (e) {
      this.error = errorOf(e);
      return null;
    } finally {
      this.busy = false;
    }
  }
}
