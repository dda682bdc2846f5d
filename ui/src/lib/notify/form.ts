// The notification settings form: what is typed in, and the `PATCH /api/v1/settings` `notify`
// change it makes. Secrets are write-only: an empty secret field keeps the stored one (the server
// shows only whether one is set), so the form never holds or shows a stored secret.
import type { NotifyView, ReportType, SmtpPatch, SmtpSecurity, WebhookPatch } from '../api/types';

export const REPORT_TYPES: ReportType[] = ['info', 'warn', 'error', 'success'];
export const DEFAULT_TYPES: ReportType[] = ['warn', 'error'];
export const SECURITY_PORTS: Record<SmtpSecurity, number> = { starttls: 587, tls: 465, none: 25 };

export type WebhookForm = { url: string; secret: string; types: ReportType[]; enabled: boolean };
export type SmtpForm = {
  host: string;
  port: number | null;
  security: SmtpSecurity;
  username: string;
  password: string;
  from: string;
  /** Recipients as typed: separated by commas, spaces or new lines. */
  to: string;
  types: ReportType[];
  enabled: boolean;
  max_per_hour: number | null;
};

export function webhookForm(v: NotifyView): WebhookForm {
  const w = v.webhook;
  return { url: w?.url ?? '', secret: '', types: [...(w?.types ?? DEFAULT_TYPES)], enabled: w?.enabled ?? true };
}

export function smtpForm(v: NotifyView): SmtpForm {
  const s = v.smtp;
  return {
    host: s?.host ?? '',
    port: s?.port ?? null,
    security: s?.security ?? 'starttls',
    username: s?.username ?? '',
    password: '',
    from: s?.from ?? '',
    to: (s?.to ?? []).join(', '),
    types: [...(s?.types ?? DEFAULT_TYPES)],
    enabled: s?.enabled ?? true,
    max_per_hour: s?.max_per_hour ?? 10,
  };
}

/** Recipients typed in one field, split on commas, semicolons and white space. */
export function recipients(text: string): string[] {
  return text
    .split(/[\s,;]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Types in the server's order (info, warn, error, success). */
function ordered(types: ReportType[]): ReportType[] {
  return REPORT_TYPES.filter((t) => types.includes(t));
}

/** The webhook change: every field the form shows; the secret only when one was typed. */
export function webhookPatch(f: WebhookForm): WebhookPatch {
  const p: WebhookPatch = { url: f.url.trim(), types: ordered(f.types), enabled: f.enabled };
  if (f.secret) p.secret = f.secret;
  return p;
}

/** The e-mail change: every field the form shows; the password only when one was typed, and an
 *  empty user name clears the credentials. An empty port takes the security's default. */
export function smtpPatch(f: SmtpForm): SmtpPatch {
  const p: SmtpPatch = {
    host: f.host.trim(),
    security: f.security,
    username: f.username.trim() || null,
    from: f.from.trim(),
    to: recipients(f.to),
    types: ordered(f.types),
    enabled: f.enabled,
  };
  p.port = f.port ?? SECURITY_PORTS[f.security];
  if (f.max_per_hour != null) p.max_per_hour = f.max_per_hour;
  if (f.password) p.password = f.password;
  return p;
}
