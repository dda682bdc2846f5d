import type { Command, CommandKind, CommandState, NewCommand } from '../api/types';
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
