// Small formatting helpers shared by all views.

export function bytes(n: number | null | undefined): string {
  if (n == null) return '—';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(2)} MiB`;
}

/** How long ago, in a few characters: "12 s ago", "3 min ago", "2 h ago", "5 d ago". `now` is
 *  passed so one clock drives every label. Always relative: the absolute time is `dateTime`. */
export function ago(iso: string | null | undefined, now: number): string {
  if (!iso) return 'never';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

const pad = (n: number) => String(n).padStart(2, '0');

/** Local time as `YYYY-MM-DD HH:MM`: sorts as text, reads the same in every locale (never
 *  11/22/2026 or 22/11/2026, which people read differently). */
export function dateTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const d = new Date(t);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** Both: `2026-11-22 20:00 (3 min ago)`. */
export function when(iso: string | null | undefined, now: number): string {
  if (!iso) return 'never';
  return `${dateTime(iso)} (${ago(iso, now)})`;
}

export function shortHash(h: string | null | undefined, n = 10): string {
  return h ? h.slice(0, n) : '—';
}

/** Signal strength in words and 0–4 bars (Wi-Fi RSSI in dBm). */
export function signal(rssi: number | null | undefined): { bars: number; label: string } {
  if (rssi == null) return { bars: 0, label: 'unknown' };
  if (rssi >= -55) return { bars: 4, label: `excellent (${rssi} dBm)` };
  if (rssi >= -67) return { bars: 3, label: `good (${rssi} dBm)` };
  if (rssi >= -75) return { bars: 2, label: `fair (${rssi} dBm)` };
  return { bars: 1, label: `weak (${rssi} dBm)` };
}

/** How far off a time is, either way: "in 3 d", "in 2 h", "5 min ago" (for expiry dates). */
export function fromNow(iso: string | null | undefined, now: number): string {
  if (!iso) return 'never';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  if (t <= now) return ago(iso, now);
  const s = Math.round((t - now) / 1000);
  if (s < 60) return `in ${s} s`;
  if (s < 3600) return `in ${Math.floor(s / 60)} min`;
  if (s < 86400) return `in ${Math.floor(s / 3600)} h`;
  return `in ${Math.floor(s / 86400)} d`;
}
