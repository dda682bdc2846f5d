// Who this UI speaks for (`GET /api/v1/me`), shared by every component: actions the role cannot
// take are hidden rather than offered and refused. The server decides; this only follows it.
import type { Me, Role } from '../api/types';

/** From least to most; each role may do what the ones before it may. */
export const ROLE_ORDER: readonly Role[] = ['viewer', 'operator', 'admin', 'owner'];

/** Set by Fleet on every full load; null until then (everything shown, as for the owner). */
export const access = $state<{ me: Me | null }>({ me: null });

/** Whether the token's role is at least `role`. */
export function can(role: Role): boolean {
  const me = access.me;
  return !me || ROLE_ORDER.indexOf(me.role) >= ROLE_ORDER.indexOf(role);
}

/** How the header names who is signed in: a person's address, a token's name, or "admin token"
 *  for the server's own. */
export function whoLabel(me: Me): string {
  if (me.actor.startsWith('user:')) return me.actor.slice('user:'.length);
  if (me.actor.startsWith('token:')) return me.actor.slice('token:'.length);
  return 'admin token';
}
