// The HTTP + server-sent-events backend: the admin API and the event stream, both with
// `Authorization: Bearer`. Every request goes through openapi-fetch, typed from `paths` in the
// generated schema.d.ts: a path, a parameter or a body the server does not have fails
// `npm run check`, and every answer has the type the server documents. The stream is read with
// fetch() and parsed by eventsource-parser rather than with EventSource, which cannot set headers
// and would put the token in the URL (where servers and proxies log it and browsers keep it in
// history). Used in browsers and in the Tauri window.
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import createClient, { type Client } from 'openapi-fetch';
import type { paths } from '../api/schema';
import type {
  ApiToken,
  CreatedOrganisation,
  NewOrganisation,
  Organisation,
  SignInProviders,
  TeamMember,
  NewTeamMember,
  Role,
  CreatedApiToken,
  Me,
  NewApiToken,
  LogLine,
  LogSnapshot,
  AuditEntry,
  AuditQuery,
  Command,
  CommandList,
  NewCommand,
  BulkCommand,
  BulkResult,
  DeliveriesQuery,
  Delivery,
  NotifyTestResult,
  ConfigPatch,
  DeviceConfig,
  NewProject,
  Project,
  ProjectPatch,
  Report,
  ReportsQuery,
  Deployment,
  DeploymentDetail,
  Device,
  DevicePatch,
  DeviceTarget,
  DiscoveredHost,
  Firmware,
  FirmwarePatch,
  NewDeployment,
  NewDevice,
  NewEspAdminDevice,
  EspAdminDeviceAdded,
  NewWatchFolder,
  Plan,
  Resumed,
  RolledBack,
  ServerSettings,
  SettingsPatch,
  TlsInfo,
  Update,
  WatchFolder,
} from '../api/types';
import {
  BAD_RESPONSE,
  BackendError,
  NETWORK,
  isAuthError,
  type Backend,
  type DeviceList,
  type LiveEvent,
  type LiveStatus,
  type LogWatcher,
  type NativeAdapter,
  type UploadOutcome,
} from './backend';

/** The event names (SSE `event:` field) this client delivers: every `type` of the server's
 *  events, and the stream's own `hello` and `lagged`. */
const EVENT_NAMES = [
  'hello',
  'lagged',
  'device',
  'seen',
  'device_removed',
  'mdns_host',
  'firmware',
  'firmware_removed',
  'deployment',
  'update',
  'report',
  'command',
  'delivery',
  'project',
  'project_removed',
  'device_config',
  'watch',
  'watch_folders',
] as const;

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Assert<T extends true> = T;
/** Compile-time: the list above is exactly the generated event union's `type`s plus the control
 *  events. An event the server adds (or drops) fails `npm run check` here, instead of being
 *  dropped silently by the stream reader. */
export type EventNamesMatchTheServer = Assert<Equal<(typeof EVENT_NAMES)[number], LiveEvent['type']>>;

export type HttpBackendOptions = {
  baseUrl: string;
  token?: string | null;
  /** Called when the token changes (the browser keeps it in localStorage). */
  onToken?: (token: string | null) => void;
  fetch?: typeof fetch;
  /** Waits between reconnects of the event stream (tests pass a quick one). */
  sleep?: (ms: number) => Promise<void>;
};

/** The one route whose answer is not JSON (besides the event stream): the audit log as CSV. */
const AUDIT_CSV = '/api/v1/audit.csv';
/** The CA certificate as a file, linked (not fetched) by the Settings page. */
const CA_PEM = '/api/v1/tls/ca.pem' satisfies keyof paths;

/** `?org=<id>` on a sign-in path (`/api/v1/auth/…`): which organisation a sign-in is for;
 *  absent for an empty id (the server's own organisation). */
function orgQuery(org: string | null | undefined): { query: { org?: string } } {
  const id = org?.trim();
  return { query: id ? { org: id } : {} };
}

/** First and longest wait before the event stream reconnects after a drop (doubling between). */
const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 15000;

/** What openapi-fetch answers; `error` never comes back here, since `#fetch` throws instead. */
type Answer<T> = { data?: T; response: Response };

export class HttpBackend implements Backend {
  readonly baseUrl: string;
  native?: NativeAdapter;
  #token: string | null;
  #csrf: string | null = null;
  #opts: HttpBackendOptions;
  #api: Client<paths>;

  constructor(opts: HttpBackendOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/$/, '');
    this.#token = opts.token ?? null;
    this.#opts = opts;
    this.#api = createClient<paths>({
      // Same origin in a browser: a Request needs an absolute URL outside one (tests).
      baseUrl: this.baseUrl || (typeof location === 'undefined' ? '' : location.origin),
      fetch: (req) => this.#fetch(req),
    });
  }

  setToken(token: string) {
    this.#token = token.trim();
    this.#opts.onToken?.(this.#token);
  }

  hasToken() {
    return !!this.#token;
  }

  token() {
    return this.#token;
  }

  clearToken() {
    this.#token = null;
    this.#opts.onToken?.(null);
  }

  /**
   * Every request passes here: it adds the token, and turns whatever is not a usable answer into
   * a BackendError — no answer at all (`network`), a refusal (the server's `error.code` and
   * message, verbatim), anything else that is not 2xx or a 2xx that is not JSON (`bad_response`).
   * So the typed calls below only ever see data of the documented type.
   */
  async #fetch(req: Request): Promise<Response> {
    if (this.#token) req.headers.set('authorization', `Bearer ${this.#token}`);
    // A signed-in person's browser: its cookie goes by itself (same origin); changes need the
    // session's CSRF token beside it.
    else if (this.#csrf) req.headers.set('x-csrf-token', this.#csrf);
    const what = `${req.method} ${new URL(req.url).pathname}`;
    let res: Response;
    try {
      res = await (this.#opts.fetch ?? globalThis.fetch)(req);
    } catch (e) {
      if (req.signal.aborted) throw e;
      throw new BackendError(
        NETWORK,
        `Cannot reach the otafleet server at ${this.baseUrl || location.origin}. Is it running, and is this the right address?`,
      );
    }
    if (!res.ok) {
      const text = await res.text().catch(() => '');
      let err: { code?: unknown; message?: unknown } | undefined;
      try {
        err = (JSON.parse(text) as { error?: typeof err })?.error;
      } catch {
        /* not JSON: said below */
      }
      if (typeof err?.code === 'string') {
        throw new BackendError(err.code, typeof err.message === 'string' ? err.message : err.code, res.status);
      }
      throw new BackendError(BAD_RESPONSE, `The server answered ${res.status} ${res.statusText} to ${what}.`, res.status);
    }
    // Every 2xx but a 204, the event stream and the audit CSV is JSON: anything else (a proxy's
    // login page, an empty body) is not an answer from this server. The CSV is the one exception,
    // and only where it was asked for (`auditCsv`) and answered as CSV.
    const stream = req.headers.get('accept') === 'text/event-stream';
    const type = res.headers.get('content-type') ?? '';
    const json = /^application\/([\w.+-]+\+)?json\b/i.test(type) && res.headers.get('content-length') !== '0';
    const csv = req.headers.get('accept') === 'text/csv' && new URL(req.url).pathname.endsWith(AUDIT_CSV) && /^text\/csv\b/i.test(type);
    if (res.status !== 204 && !stream && !json && !csv) {
      throw new BackendError(BAD_RESPONSE, `The server's answer to ${what} was not JSON.`, res.status);
    }
    return res;
  }

  /** The typed answer of a call that returns data. */
  async #data<T>(call: Promise<Answer<T>>): Promise<T> {
    let answer: Answer<T>;
    try {
      answer = await call;
    } catch (e) {
      // A JSON content type with a body that does not parse (cut short, say).
      if (e instanceof SyntaxError) throw new BackendError(BAD_RESPONSE, `The server's answer was not valid JSON: ${e.message}`);
      throw e;
    }
    const { data, response } = answer;
    if (data === undefined) throw new BackendError(BAD_RESPONSE, `The server's answer (${response.status}) was empty.`, response.status);
    return data;
  }

  /** A call whose success has no body (204). */
  async #done(call: Promise<{ response: Response }>): Promise<void> {
    await call;
  }

  async listDevices(): Promise<DeviceList> {
    // The server lists devices a page at a time (1000 by default) and says where the next page
    // starts in a `Link: <…?limit=N&after=MAC>; rel="next"` header: every page is fetched, so
    // the table holds the whole fleet; the hosts come with the last page.
    const listed = [];
    let query: { limit?: number; after?: string } | undefined;
    for (;;) {
      const call = this.#api.GET('/api/v1/devices', query ? { params: { query } } : {});
      listed.push(...(await this.#data(call)));
      const next = nextPage((await call).response.headers.get('link'));
      if (!next) break;
      if (next.after === query?.after) throw new BackendError(BAD_RESPONSE, 'The server gave the same device page twice.');
      query = next;
    }
    // The list also carries services heard over mDNS that did not tell their MAC (`mac: null`
    // and a `key`): kept apart, keyed by `key`, so two of them stay two rows and none merges
    // with a device. Told apart by `key`: openapi-fetch's response typing drops a property
    // typed only `null` (its `Readable` maps `NonNullable<null>`, i.e. never, away), so
    // `mac === null` does not narrow here; the host gets its `mac: null` back.
    const out: DeviceList = { devices: [], hosts: [] };
    for (const d of listed) {
      if ('key' in d) out.hosts.push({ ...d, mac: null } as DiscoveredHost);
      else out.devices.push(d as Device);
    }
    return out;
  }
  createDevice(d: NewDevice) {
    return this.#data(this.#api.POST('/api/v1/devices', { body: d }));
  }
  createEspAdminDevice(d: NewEspAdminDevice): Promise<EspAdminDeviceAdded> {
    return this.#data(this.#api.POST('/api/v1/esp-admin/devices', { body: d }));
  }
  getDevice(mac: string) {
    return this.#data(this.#api.GET('/api/v1/devices/{mac}', { params: { path: { mac } } }));
  }
  deviceHistory(mac: string) {
    return this.#data(this.#api.GET('/api/v1/devices/{mac}/updates', { params: { path: { mac } } }));
  }
  deleteDevice(mac: string) {
    return this.#done(this.#api.DELETE('/api/v1/devices/{mac}', { params: { path: { mac } } }));
  }
  patchDevice(mac: string, patch: DevicePatch) {
    return this.#data(this.#api.PATCH('/api/v1/devices/{mac}', { params: { path: { mac } }, body: patch }));
  }
  deviceTarget(mac: string): Promise<DeviceTarget | null> {
    return this.#data(this.#api.GET('/api/v1/devices/{mac}/target', { params: { path: { mac } } }));
  }
  retryDevice(mac: string): Promise<Update> {
    return this.#data(this.#api.POST('/api/v1/devices/{mac}/retry', { params: { path: { mac } } }));
  }
  rollbackDevice(mac: string): Promise<Deployment> {
    return this.#data(this.#api.POST('/api/v1/devices/{mac}/rollback', { params: { path: { mac } } }));
  }
  listFirmware(): Promise<Firmware[]> {
    return this.#data(this.#api.GET('/api/v1/firmware'));
  }
  async uploadFirmware(file: File): Promise<UploadOutcome> {
    const form = new FormData();
    form.append('file', file, file.name);
    // The schema documents the raw-body form of this route (bytes); the multipart form the
    // browser streams from a File is the same route. The serializer sends the form in place of
    // the (empty) typed body, and the browser sets the multipart boundary itself.
    let status = 0;
    const firmware = await this.#data(
      this.#api.POST('/api/v1/firmware', { body: [], bodySerializer: () => form }).then((a) => ((status = a.response.status), a)),
    );
    // 201: a new image; 200: the same bytes were already in the library (the existing record).
    return { firmware, created: status === 201 };
  }
  deleteFirmware(id: number) {
    return this.#done(this.#api.DELETE('/api/v1/firmware/{id}', { params: { path: { id } } }));
  }
  patchFirmware(id: number, patch: FirmwarePatch): Promise<Firmware> {
    return this.#data(this.#api.PATCH('/api/v1/firmware/{id}', { params: { path: { id } }, body: patch }));
  }
  listDeployments(): Promise<Deployment[]> {
    return this.#data(this.#api.GET('/api/v1/deployments'));
  }
  getDeployment(id: number): Promise<DeploymentDetail> {
    return this.#data(this.#api.GET('/api/v1/deployments/{id}', { params: { path: { id } } }));
  }
  async planDeployment(d: NewDeployment): Promise<Plan> {
    const answer = await this.#data(this.#api.POST('/api/v1/deployments', { params: { query: { dry_run: true } }, body: d }));
    // The route answers a Plan (200) to a dry run and a Deployment (201) otherwise.
    if (!('groups' in answer)) throw new BackendError(BAD_RESPONSE, 'The server created a deployment where a dry run was asked for.');
    return answer;
  }
  async createDeployment(d: NewDeployment): Promise<Deployment> {
    const answer = await this.#data(this.#api.POST('/api/v1/deployments', { body: d }));
    if ('groups' in answer) throw new BackendError(BAD_RESPONSE, 'The server answered a dry run where a deployment was to be created.');
    return answer;
  }
  stopDeployment(id: number): Promise<Deployment> {
    return this.#data(this.#api.POST('/api/v1/deployments/{id}/stop', { params: { path: { id } } }));
  }
  retryDeployment(id: number): Promise<Update[]> {
    return this.#data(this.#api.POST('/api/v1/deployments/{id}/retry', { params: { path: { id } } }));
  }
  pauseDeployment(id: number, reason: string | null): Promise<Deployment> {
    return this.#data(this.#api.POST('/api/v1/deployments/{id}/pause', { params: { path: { id } }, body: { reason } }));
  }
  resumeDeployment(id: number, retry: boolean): Promise<Resumed> {
    return this.#data(this.#api.POST('/api/v1/deployments/{id}/resume', { params: { path: { id } }, body: { retry } }));
  }
  rollbackDeployment(id: number): Promise<RolledBack> {
    return this.#data(this.#api.POST('/api/v1/deployments/{id}/rollback', { params: { path: { id } }, body: {} }));
  }
  settings(): Promise<ServerSettings> {
    return this.#data(this.#api.GET('/api/v1/settings'));
  }
  patchSettings(p: SettingsPatch): Promise<ServerSettings> {
    return this.#data(this.#api.PATCH('/api/v1/settings', { body: p }));
  }
  tls(): Promise<TlsInfo> {
    return this.#data(this.#api.GET('/api/v1/tls'));
  }
  caPemUrl(): string {
    return `${this.baseUrl}${CA_PEM}`;
  }
  listAudit(q: AuditQuery = {}): Promise<AuditEntry[]> {
    return this.#data(this.#api.GET('/api/v1/audit', { params: { query: q } }));
  }
  auditCsv(q: AuditQuery = {}): Promise<Blob> {
    return this.#data(this.#api.GET(AUDIT_CSV, { params: { query: q }, parseAs: 'blob', headers: { accept: 'text/csv' } }));
  }
  listReports(q: ReportsQuery = {}): Promise<Report[]> {
    return this.#data(this.#api.GET('/api/v1/reports', { params: { query: q } }));
  }
  deviceLogs(mac: string, after = 0): Promise<LogSnapshot> {
    return this.#data(this.#api.GET('/api/v1/devices/{mac}/logs', { params: { path: { mac }, query: { after } } }));
  }
  watchLogs(mac: string, w: LogWatcher): () => void {
    let after = 0;
    return this.#follow(
      (signal) =>
        this.#api.GET('/api/v1/devices/{mac}/logs/stream', {
          params: { path: { mac }, query: { after } },
          parseAs: 'stream',
          headers: { accept: 'text/event-stream' },
          signal,
          cache: 'no-store',
        }),
      {
        onOpen: (connected) => {
          connected();
          w.status?.('open');
        },
        onMessage: (m) => {
          if (m.event === 'lagged') {
            w.lagged?.();
            return;
          }
          if (m.event !== 'lines') return;
          let lines: LogLine[];
          try {
            lines = JSON.parse(m.data) as LogLine[];
          } catch {
            return;
          }
          // After a reconnect the server sends what came after `after`; never show a line twice.
          const fresh = lines.filter((l) => l.seq > after);
          if (fresh.length === 0) return;
          after = fresh[fresh.length - 1].seq;
          w.lines(fresh);
        },
        // 409 (cannot send logs), 404 (gone), 401: retrying would not change the answer.
        final: (e) => (e instanceof BackendError && e.status >= 400 && e.status < 500 ? e : null),
        onConnecting: () => w.status?.('connecting'),
        onRefused: (e) => w.status?.('refused', e),
      },
    );
  }
  listCommands(mac: string): Promise<CommandList> {
    return this.#data(this.#api.GET('/api/v1/devices/{mac}/commands', { params: { path: { mac } } }));
  }
  queueCommand(mac: string, c: NewCommand): Promise<Command> {
    return this.#data(this.#api.POST('/api/v1/devices/{mac}/commands', { params: { path: { mac } }, body: c }));
  }
  cancelCommand(mac: string, id: number): Promise<Command> {
    return this.#data(this.#api.POST('/api/v1/devices/{mac}/commands/{id}/cancel', { params: { path: { mac, id } } }));
  }
  bulkCommand(c: BulkCommand): Promise<BulkResult[]> {
    return this.#data(this.#api.POST('/api/v1/commands', { body: c }));
  }
  listDeliveries(q: DeliveriesQuery = {}): Promise<Delivery[]> {
    return this.#data(this.#api.GET('/api/v1/deliveries', { params: { query: q } }));
  }
  testNotify(): Promise<NotifyTestResult> {
    return this.#data(this.#api.POST('/api/v1/settings/notify/test'));
  }
  listProjects(): Promise<Project[]> {
    return this.#data(this.#api.GET('/api/v1/projects'));
  }
  createProject(p: NewProject): Promise<Project> {
    return this.#data(this.#api.POST('/api/v1/projects', { body: p }));
  }
  patchProject(name: string, p: ProjectPatch): Promise<Project> {
    return this.#data(this.#api.PATCH('/api/v1/projects/{name}', { params: { path: { name } }, body: p }));
  }
  deleteProject(name: string) {
    return this.#done(this.#api.DELETE('/api/v1/projects/{name}', { params: { path: { name } } }));
  }
  deviceConfig(mac: string): Promise<DeviceConfig> {
    return this.#data(this.#api.GET('/api/v1/devices/{mac}/config', { params: { path: { mac } } }));
  }
  patchDeviceConfig(mac: string, p: ConfigPatch): Promise<DeviceConfig> {
    return this.#data(this.#api.PATCH('/api/v1/devices/{mac}/config', { params: { path: { mac } }, body: p }));
  }
  me(): Promise<Me> {
    return this.#data(this.#api.GET('/api/v1/me'));
  }
  setCsrf(csrf: string | null) {
    this.#csrf = csrf;
  }
  signInProviders(org?: string | null): Promise<SignInProviders> {
    return this.#data(this.#api.GET('/api/v1/auth/providers', { params: orgQuery(org) }));
  }
  signOut(): Promise<void> {
    return this.#done(this.#api.POST('/api/v1/auth/logout'));
  }
  passwordSignIn(email: string, password: string, org?: string | null): Promise<void> {
    return this.#done(this.#api.POST('/api/v1/auth/password', { body: { email, password }, params: orgQuery(org) }));
  }
  setMemberPassword(id: number, password: string | null): Promise<TeamMember> {
    return this.#data(this.#api.PUT('/api/v1/members/{id}/password', { params: { path: { id } }, body: { password } }));
  }
  listMembers(): Promise<TeamMember[]> {
    return this.#data(this.#api.GET('/api/v1/members'));
  }
  addMember(m: NewTeamMember): Promise<TeamMember> {
    return this.#data(this.#api.POST('/api/v1/members', { body: m }));
  }
  setMemberRole(id: number, role: Role): Promise<TeamMember> {
    return this.#data(this.#api.PATCH('/api/v1/members/{id}', { params: { path: { id } }, body: { role } }));
  }
  removeMember(id: number): Promise<void> {
    return this.#done(this.#api.DELETE('/api/v1/members/{id}', { params: { path: { id } } }));
  }
  listTokens(): Promise<ApiToken[]> {
    return this.#data(this.#api.GET('/api/v1/tokens'));
  }
  createToken(t: NewApiToken): Promise<CreatedApiToken> {
    return this.#data(this.#api.POST('/api/v1/tokens', { body: t }));
  }
  revokeToken(id: number): Promise<ApiToken> {
    return this.#data(this.#api.POST('/api/v1/tokens/{id}/revoke', { params: { path: { id } } }));
  }
  listOrganisations(): Promise<Organisation[]> {
    return this.#data(this.#api.GET('/api/v1/organisations'));
  }
  createOrganisation(o: NewOrganisation): Promise<CreatedOrganisation> {
    return this.#data(this.#api.POST('/api/v1/organisations', { body: o }));
  }
  listWatchFolders(): Promise<WatchFolder[]> {
    return this.#data(this.#api.GET('/api/v1/watch-folders'));
  }
  addWatchFolder(f: NewWatchFolder): Promise<WatchFolder> {
    return this.#data(this.#api.POST('/api/v1/watch-folders', { body: f }));
  }
  removeWatchFolder(id: number) {
    return this.#done(this.#api.DELETE('/api/v1/watch-folders/{id}', { params: { path: { id } } }));
  }

  subscribe(onEvent: (e: LiveEvent) => void, onStatus?: (s: LiveStatus) => void): () => void {
    return this.#follow(
      (signal) =>
        this.#api.GET('/api/v1/events', {
          parseAs: 'stream',
          headers: { accept: 'text/event-stream' },
          signal,
          cache: 'no-store',
        }),
      {
        onMessage: (m, connected) => {
          const name = m.event ?? 'message';
          if (name === 'hello') {
            // The server answered: the next drop starts the back-off afresh.
            connected();
            onStatus?.('open');
            onEvent({ type: 'hello' });
          } else if (name === 'lagged') {
            onEvent({ type: 'lagged' });
          } else if ((EVENT_NAMES as readonly string[]).includes(name)) {
            try {
              onEvent(JSON.parse(m.data) as LiveEvent);
            } catch {
              // A malformed event is dropped; the next `lagged`/`hello` reload repairs the view.
            }
          }
        },
        // Refused (the token, or anything 401/403): retrying would not change the answer.
        final: (e) => (e instanceof BackendError && (isAuthError(e) || e.status === 401 || e.status === 403) ? e : null),
        // Said at once, not after the wait: the page shows the data may be stale from now on.
        onConnecting: () => onStatus?.('connecting'),
        onRefused: () => onStatus?.('down'),
      },
    );
  }

  /** Read a server-sent-event stream and keep reading it: `open` sends the request (`signal`
   *  aborts it); every message goes to `onMessage`. After a drop it reconnects, waiting
   *  RETRY_FIRST_MS doubling up to RETRY_MAX_MS (`connected()` starts the wait afresh), until the
   *  returned function is called or `final` calls an error one that retrying would not change
   *  (`onRefused`, for good). Shared by the event stream and the log streams. */
  #follow(
    open: (signal: AbortSignal) => Promise<{ data?: ReadableStream<Uint8Array> | null }>,
    h: {
      onMessage: (m: EventSourceMessage, connected: () => void) => void;
      onOpen?: (connected: () => void) => void;
      final: (e: unknown) => BackendError | null;
      onConnecting: () => void;
      onRefused: (e: BackendError) => void;
    },
  ): () => void {
    const sleep = this.#opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    const abort = new AbortController();
    let stopped = false;
    let wait = RETRY_FIRST_MS;
    const connected = () => {
      wait = RETRY_FIRST_MS;
    };
    // One connection: resolves when the stream ends or fails, or with the refusal.
    const connect = async (): Promise<'again' | BackendError> => {
      let body: ReadableStream<Uint8Array> | null | undefined;
      try {
        ({ data: body } = await open(abort.signal));
      } catch (e) {
        return h.final(e) ?? 'again';
      }
      if (!body) return 'again';
      h.onOpen?.(connected);
      const parser = createParser({ onEvent: (m) => h.onMessage(m, connected) });
      const reader = body.getReader();
      const text = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return 'again';
        parser.feed(text.decode(value, { stream: true }));
      }
    };
    void (async () => {
      h.onConnecting();
      while (!stopped) {
        let outcome: 'again' | BackendError = 'again';
        try {
          outcome = await connect();
        } catch {
          // Network error or abort: retry unless stopped.
        }
        if (stopped) return;
        if (outcome instanceof BackendError) {
          h.onRefused(outcome);
          return;
        }
        h.onConnecting();
        await sleep(wait);
        wait = Math.min(wait * 2, RETRY_MAX_MS);
      }
    })();
    return () => {
      stopped = true;
      abort.abort();
    };
  }
}

/** The `limit` and `after` of the next page of `GET /api/v1/devices`, from its `Link` header
 *  (`</api/v1/devices?limit=N&after=MAC>; rel="next"`); none on the last page. */
export function nextPage(link: string | null): { limit?: number; after: string } | null {
  const url = link?.match(/<([^>]*)>\s*;\s*rel="?next"?/)?.[1];
  if (!url) return null;
  const q = new URL(url, 'http://x').searchParams;
  const after = q.get('after');
  if (!after) return null;
  const limit = Number(q.get('limit'));
  return Number.isInteger(limit) && limit > 0 ? { limit, after } : { after };
}
