import type { NewProject, Project, ProjectCommand, ProjectPatch, VariableInput, VarType } from '../api/types';
import { errorOf } from '../firmware/firmware.svelte';
import type { Fleet } from '../fleet.svelte';

/** The protocols a project may restrict enrolment to (the server's list, without `any`). */
export const ENROL_PROTOCOLS = ['native', 'arduino', 'esp8266', 'esp32fota', 'legacy'] as const;
export const VAR_TYPES: Record<VarType, string> = { string: 'text', int: 'whole number', bool: 'on/off', secret: 'secret' };

type Err = { code: string; message: string };

/** Every project, loaded once (and after every full reload of the fleet), then kept current by
 *  the `project` and `project_removed` live events. */
export class ProjectStore {
  list = $state<Project[] | null>(null);
  error = $state<Err | null>(null);

  constructor(private readonly fleet: Fleet) {}

  load() {
    return this.fleet.backend.listProjects().then(
      (p) => ((this.list = p), (this.error = null)),
      (e) => (this.error = errorOf(e)),
    );
  }

  get(name: string): Project | undefined {
    return this.list?.find((p) => p.name === name);
  }

  /** Follow live changes; returns the function that stops following. */
  follow(): () => void {
    return this.fleet.onProject((p) => {
      if (!this.list) return;
      if ('removed' in p) this.list = this.list.filter((x) => x.name !== p.removed);
      else this.#put(p);
    });
  }

  #put(p: Project) {
    const list = this.list ?? [];
    this.list = list.some((x) => x.name === p.name)
      ? list.map((x) => (x.name === p.name ? p : x))
      : [...list, p].sort((a, b) => a.name.localeCompare(b.name));
  }

  async create(p: NewProject): Promise<Project> {
    const made = await this.fleet.backend.createProject(p);
    this.#put(made);
    return made;
  }

  async save(name: string, patch: ProjectPatch): Promise<Project> {
    const p = await this.fleet.backend.patchProject(name, patch);
    this.#put(p);
    return p;
  }

  async remove(name: string) {
    await this.fleet.backend.deleteProject(name);
    if (this.list) this.list = this.list.filter((x) => x.name !== name);
  }
}

/** One variable row of the editor. `value` is the default as typed (text for string and int, a
 *  checkbox for bool); a secret's stored default is never shown: `secretSet` says whether there
 *  is one, `value` is a new one (empty = keep). */
export type VarRow = { key: string; type: VarType; description: string; value: string | boolean; secretSet: boolean; clear: boolean };
/** One command row: the payload as JSON text. */
export type CmdRow = { key: string; label: string; payload: string; confirmation: string };

/** The Projects page's editable copy of a project; `toPatch` checks it and builds the request. */
export class ProjectDraft {
  description = $state('');
  /** null = any protocol. */
  enrolment = $state<string[] | null>(null);
  vars = $state<VarRow[]>([]);
  cmds = $state<CmdRow[]>([]);

  constructor(p: Project) {
    this.description = p.description;
    this.enrolment = p.enrolment ? [...p.enrolment] : null;
    this.vars = p.variables.map((v) => ({
      key: v.key,
      type: v.type,
      description: v.description,
      value: v.type === 'bool' ? v.default === true : v.type === 'secret' ? '' : v.default == null ? '' : String(v.default),
      secretSet: v.type === 'secret' && (v.default as { set?: boolean } | null)?.set === true,
      clear: false,
    }));
    this.cmds = p.commands.map((c) => ({
      key: c.key,
      label: c.label,
      payload: c.payload == null ? '' : JSON.stringify(c.payload),
      confirmation: c.confirmation ?? '',
    }));
  }

  addVar() {
    this.vars = [...this.vars, { key: '', type: 'string', description: '', value: '', secretSet: false, clear: false }];
  }
  addCmd() {
    this.cmds = [...this.cmds, { key: '', label: '', payload: '', confirmation: '' }];
  }
  toggleProtocol(p: string, on: boolean) {
    const now = this.enrolment ?? [];
    this.enrolment = on ? [...now.filter((x) => x !== p), p] : now.filter((x) => x !== p);
  }

  /** The request, or what to fix first (the server checks again and answers 422 the same way). */
  toPatch(): { patch: ProjectPatch } | { error: string } {
    const variables: VariableInput[] = [];
    for (const v of this.vars) {
      if (!v.key.trim()) return { error: 'Every variable needs a key.' };
      const out: VariableInput = { key: v.key.trim(), type: v.type, description: v.description };
      if (v.type === 'bool') out.default = v.value === true;
      else if (v.type === 'int') {
        const t = String(v.value).trim();
        if (t === '') out.default = null;
        else if (!/^-?\d+$/.test(t)) return { error: `${v.key}: the default must be a whole number.` };
        else out.default = Number(t);
      } else if (v.type === 'secret') {
        // Left out: the server keeps the stored secret. Typed: a new one. Cleared: none.
        if (v.clear) out.default = null;
        else if (String(v.value) !== '') out.default = String(v.value);
      } else out.default = String(v.value) === '' ? null : String(v.value);
      variables.push(out);
    }
    const commands: ProjectCommand[] = [];
    for (const c of this.cmds) {
      if (!c.key.trim() || !c.label.trim()) return { error: 'Every command needs a key and a label.' };
      let payload: unknown = null;
      if (c.payload.trim()) {
        try {
          payload = JSON.parse(c.payload);
        } catch {
          return { error: `${c.key}: the payload is not valid JSON.` };
        }
      }
      commands.push({ key: c.key.trim(), label: c.label.trim(), payload, confirmation: c.confirmation.trim() || null });
    }
    if (this.enrolment && this.enrolment.length === 0) return { error: 'Pick at least one protocol, or allow any.' };
    return { patch: { description: this.description, enrolment: this.enrolment, variables, commands } };
  }
}
