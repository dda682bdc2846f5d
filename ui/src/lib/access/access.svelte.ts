// Who this UI speaks for (`GET /api/v1/me`), shared by every component: actions the role cannot
// take are hidden rather than offered and refused. The server decides; this only follows it.
import type { Me, Role } from '../api/types';
import { errorOf } from '../firmware/firmware.svelte';

/** From least to most; each role may do what the ones before it may. */
export const ROLE_ORDER: readonly Role[] = ['viewer', 'operator', 'admin', 'owner'];

/** Set by Fleet on every full load; null until then (everything shown, as for the owner). */
export const access = $state<{ me: Me | null }>({ me: null });

/** Whether the token's role is at least `role`. */
export function can(role: Role): boolean {
  const me = access.me;
  return !me || ROLE_ORDER.indexOf(me.role) >= ROLE_ORDER.indexOf(role);
}

/** The roles up to `role`, least first: what someone of that role may hand out (nobody gives a
 *  role above their own). Null (not known yet): all of them, as `can` shows everything then. */
export function rolesUpTo(role: Role | null | undefined): Role[] {
  return role ? ROLE_ORDER.slice(0, ROLE_ORDER.indexOf(role) + 1) : [...ROLE_ORDER];
}

/** How the header names who is signed in: a person's address, a token's name, or "admin token"
 *  for the server's own. A token named after its role (an organisation's first token is "owner")
 *  reads "owner token", not "owner · owner". */
export function whoLabel(me: Me): string {
  if (me.actor.startsWith('user:')) return me.actor.slice('user:'.length);
  if (me.actor.startsWith('token:')) {
    const name = me.actor.slice('token:'.length);
    return name === me.role ? `${name} token` : name;
  }
  return 'admin token';
}

/** Whether `me` is in an organisation other than the server's own (the header names it then). */
export function otherOrganisation(me: Me | null): boolean {
  return !!me && me.organisation.id !== 'default';
}

/**
 * A list a Team panel keeps: `items` as last read (null until the first answer), the refusal of
 * the last read or change (the server's code and message), and `busy` while a change runs.
 * `act(f)` runs one change and reads the list again after it; a refusal lands in `error`.
 */
export class ListedItems<T> {
  items = $state<T[] | null>(null);
  error = $state<{ code: string; message: string } | null>(null);
  busy = $state(false);
  readonly #read: () => Promise<T[]>;

  constructor(read: () => Promise<T[]>) {
    this.#read = read;
  }

  /** Read the list again (also the "Try again" of an error). */
  load = (): Promise<void> =>
    this.#read().then(
      (items) => {
        this.items = items;
        this.error = null;
      },
      (e) => {
        this.error = errorOf(e);
      },
    );

  act = async (f: () => Promise<unknown>): Promise<void> => {
    this.busy = true;
    try {
      await f();
      this.error = null;
      void this.load();
    } catch (err) {
      this.error = errorOf(err);
    } finally {
      this.busy = false;
    }
  };
}
