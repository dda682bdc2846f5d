// HTTPS on the server (`GET /api/v1/tls`), loaded once and shared: the Settings page shows it, the
// device table marks plain-HTTP devices only while the server serves HTTPS.
import type { TlsInfo, TlsSnippet } from '../api/types';
import type { Backend } from '../backend/backend';
import { BackendError } from '../backend/backend';

export class TlsStore {
  /** What the server said; null until the first answer. */
  info = $state<TlsInfo | null>(null);
  error = $state<BackendError | null>(null);
  #loading: Promise<void> | null = null;

  constructor(private readonly backend: Backend) {}

  /** Ask once: later calls share the first answer (a failed load is asked again). */
  load(): Promise<void> {
    this.#loading ??= this.refresh();
    return this.#loading;
  }

  /** Ask again (the Settings page, and after a reload: a restarted server may have other flags). */
  async refresh(): Promise<void> {
    const asked = this.backend.tls().then(
      (info) => {
        this.info = info;
        this.error = null;
      },
      (e) => {
        this.error = e instanceof BackendError ? e : new BackendError('unexpected', String(e));
        this.#loading = null;
      },
    );
    this.#loading = asked;
    return asked;
  }

  /** Whether the device table marks devices that check in over plain HTTP. */
  get markPlainHttp(): boolean {
    return markPlainHttp(this.info);
  }
}

/** Plain HTTP is worth a marker only while the server offers HTTPS: with it off, every device is
 *  on plain HTTP and the marker would say nothing. Not known yet: no marker. */
export function markPlainHttp(info: TlsInfo | null): boolean {
  return info != null && info.mode !== 'off';
}

/** Short tab names for the snippets' stable ids, in the order shown; an id this UI does not know
 *  is shown after them under its title. */
const SNIPPET_TABS: Record<string, string> = {
  arduino: 'Arduino',
  esp_idf: 'ESP-IDF',
  esp32fota: 'esp32FOTA',
  esp_admin: 'ESP Admin credentials.h',
  curl: 'curl',
  pem: 'PEM',
};
const ORDER = Object.keys(SNIPPET_TABS);

export function snippetTab(s: TlsSnippet): string {
  return SNIPPET_TABS[s.id] ?? s.title;
}

export function orderSnippets(list: TlsSnippet[]): TlsSnippet[] {
  const rank = (s: TlsSnippet) => (ORDER.includes(s.id) ? ORDER.indexOf(s.id) : ORDER.length);
  return [...list].sort((a, b) => rank(a) - rank(b));
}
