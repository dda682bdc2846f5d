import type { BulkResult, Command, CommandKind, CommandState, NewCommand, Project, ProjectCommand } from '../api/types';
import { errorOf } from '../firmware/firmware.svelte';
import type { Fleet } from '../fleet.svelte';

/** How each command state is shown: one exhaustive map keyed by the generated type, so a new
 *  state fails `npm run check` until it has a label. */
export const COMMAND_STATES: Record<CommandState, { label: string; tone: 'muted' | 'ok' | 'warn' | 'bad'; finished: boolean }> = {
  queued: { label: 'queued', tone: 'muted', finished: false },
  sent: { label: 'sent to the device', tone: 'warn', finished: false },
  done: { label: 'done', tone: 'ok', finished: true },
  failed: { label: 'failed', tone: 'bad', finished: true },
  rejected: { label: 'rejected by the device', tone: 'bad', finished: true },
  expired: { label: 'expired', tone: 'muted', finished: true },
  cancelled: { label: 'cancelled', tone: 'muted', finished: true },
};

/** What each kind is called. */
export const COMMAND_KINDS: Record<CommandKind, string> = {
  restart: 'Restart',
  config: 'Fetch config',
  log: 'Logging',
  custom: 'Custom',
  update_abort: 'Abort update',
};

/** One device's commands, newest first: loaded once (and again after every full reload of the
 *  fleet), then kept current by the `command` live event. `unsupported` says why the device
 *  cannot take commands (a stock updater, mDNS-only, not enrolled), from the server. */
export class CommandFeed {
  rows = $state<Command[] | null>(null);
  unsupported = $state<string | null>(null);
  error = $state<{ code: string; message: string } | null>(null);
  busy = $state(false);

  constructor(
    private readonly fleet: Fleet,
    readonly mac: string,
    private readonly limit = 100,
  ) {}

  load() {
    return this.fleet.backend.listCommands(this.mac).then(
      (r) => ((this.rows = r.commands), (this.unsupported = r.unsupported ?? null), (this.error = null)),
      (e) => (this.error = errorOf(e)),
    );
  }

  /** Put a command in the list, replacing the older record of the same id. */
  apply(c: Command) {
    if (c.mac !== this.mac || !this.rows) return;
    const i = this.rows.findIndex((x) => x.id === c.id);
    if (i >= 0) {
      // Events of one command arrive in order, but the answer to our own request may come after
      // its later events: never go back from a finished state.
      const was = this.rows[i];
      if (COMMAND_STATES[was.state].finished && !COMMAND_STATES[c.state].finished) return;
      this.rows = this.rows.map((x) => (x.id === c.id ? c : x));
    } else {
      this.rows = [c, ...this.rows].sort((a, b) => b.id - a.id).slice(0, this.limit);
    }
  }

  /** Follow live command events; returns the function that stops following. */
  follow(): () => void {
    return this.fleet.onCommand((c) => this.apply(c));
  }

  /** Queue a command; a refusal (409 `commands_unsupported` with its reason, …) lands in `error`
   *  and, for an unsupported device, in `unsupported`. */
  async queue(c: NewCommand): Promise<Command | null> {
    this.busy = true;
    this.error = null;
    try {
      const made = await this.fleet.backend.queueCommand(this.mac, c);
      this.apply(made);
      return made;
    } catch (e) {
      const err = errorOf(e);
      if (err.code === 'commands_unsupported') this.unsupported = err.message;
      else this.error = err;
      return null;
    } finally {
      this.busy = false;
    }
  }

  restart() {
    return this.queue({ kind: 'restart' });
  }

  async cancel(id: number) {
    this.error = null;
    try {
      this.apply(await this.fleet.backend.cancelCommand(this.mac, id));
    } catch (e) {
      this.error = errorOf(e);
    }
  }
}

/** A project's command as the device gets it: kind `custom`, its key and its payload. */
export function customCommand(c: ProjectCommand): NewCommand {
  return { kind: 'custom', key: c.key, payload: c.payload ?? null };
}

/** The project commands every one of some devices can run, given each device's project (null
 *  when it has none): those whose key is defined in every one of their projects (the first
 *  project's label, payload and confirmation). When there are none, `why` says why. */
export function sharedCommands(
  deviceProjects: (string | null | undefined)[],
  projects: Project[],
): { commands: ProjectCommand[]; why: string | null } {
  const none = deviceProjects.filter((p) => !p).length;
  if (none > 0) {
    const many = deviceProjects.length > 1;
    return {
      commands: [],
      why: many ? `${none} of the selected devices ${none === 1 ? 'has' : 'have'} no project, so no project command fits them all.` : 'This device has no project, so it has no project commands.',
    };
  }
  const names = [...new Set(deviceProjects as string[])].sort();
  const lists = names.map((n) => projects.find((p) => p.name === n)?.commands ?? []);
  const commands = (lists[0] ?? []).filter((c) => lists.every((l) => l.some((x) => x.key === c.key)));
  if (commands.length) return { commands, why: null };
  if (names.length === 1) return { commands, why: `Project ${names[0]} defines no commands.` };
  return { commands, why: `No command key is defined in every one of the projects ${names.join(', ')}.` };
}

/** What a bulk action asks for, and how it is named in its confirmation. */
export type BulkAction = { title: string; verb: string; command: NewCommand; confirmation?: string | null };

/** One bulk command over the selected devices: asked first (naming how many), then sent with the
 *  bulk route; each device's outcome (queued, or the refusal with its reason) is kept, and the
 *  queued ones follow their live states (the `command` event) while the dialog is open. */
export class BulkRun {
  action = $state<BulkAction | null>(null);
  macs = $state<string[]>([]);
  results = $state<BulkResult[] | null>(null);
  error = $state<{ code: string; message: string } | null>(null);
  busy = $state(false);

  constructor(private readonly fleet: Fleet) {}

  ask(action: BulkAction, macs: string[]) {
    this.action = action;
    this.macs = [...macs];
    this.results = null;
    this.error = null;
  }

  close() {
    this.action = null;
    this.results = null;
    this.error = null;
  }

  async run() {
    if (!this.action || this.busy) return;
    this.busy = true;
    this.error = null;
    try {
      const c = this.action.command;
      this.results = await this.fleet.backend.bulkCommand({ macs: this.macs, kind: c.kind, key: c.key ?? null, payload: c.payload ?? null });
    } catch (e) {
      this.error = errorOf(e);
    } finally {
      this.busy = false;
    }
  }

  /** A live state of one of our commands; never goes back from a finished state. */
  apply(c: Command) {
    if (!this.results) return;
    this.results = this.results.map((r) => {
      if (!r.command || r.command.id !== c.id) return r;
      if (COMMAND_STATES[r.command.state].finished && !COMMAND_STATES[c.state].finished) return r;
      return { ...r, command: c };
    });
  }

  follow(): () => void {
    return this.fleet.onCommand((c) => this.apply(c));
  }

  /** How many were queued and how many refused, for the summary line. */
  get counts() {
    const r = this.results ?? [];
    return { queued: r.filter((x) => x.command).length, refused: r.filter((x) => !x.command).length };
  }
}
