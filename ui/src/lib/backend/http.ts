// The HTTP + server-sent-events backend: the admin API and the event stream, both with
// `Authorization: Bearer`. The stream is read with fetch() and parsed by eventsource-parser rather
// than with EventSource, which cannot set headers and would put the token in the URL (where
// servers and proxies log it and browsers keep it in history). Used in browsers and in the Tauri
// window.
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import type {
  Deployment,
  DeploymentDetail,
  Device,
  DevicePatch,
  DeviceTarget,
  Firmware,
  NewDeployment,
  NewDevice,
  NewWatchFolder,
  Plan,
  ServerSettings,
  SettingsPatch,
  Update,
  WatchFolder,
} from '../api/types';
import {
  BAD_RESPONSE,
  BackendError,
  NETWORK,
  type Backend,
  type LiveEvent,
  type LiveStatus,
  type NativeAdapter,
  type UploadOutcome,
} from './backend';

/** The server's event names (SSE `event:` field). */
const EVENT_NAMES = [
  'hello',
  'lagged',
  'device',
  'seen',
  'device_removed',
  'firmware',
  'firmware_removed',
  'deployment',
  'update',
  'watch',
  'watch_folders',
] as const;

export type HttpBackendOptions = {
  baseUrl: string;
  token?: string | null;
  /** Called when the token changes (the browser keeps it in localStorage). */
  onToken?: (token: string | null) => void;
  fetch?: typeof fetch;
  /** Waits between reconnects of the event stream (tests pass a quick one). */
  sleep?: (ms: number) => Promise<void>;
};

/** First and longest wait before the event stream reconnects after a drop. */
const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 15000;

export class HttpBackend implements Backend {
  readonly baseUrl: string;
  native?: NativeAdapter;
  #token: string | null;
  #opts: HttpBackendOptions;

  constructor(opts: HttpBackendOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/$/, '');
    this.#token = opts.token ?? null;
    this.#opts = opts;
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

  async #request<T>(method: string, path: string, body?: BodyInit, json = true): Promise<T> {
    return (await this.#call<T>(method, path, body, json)).data;
  }

  async #call<T>(method: string, path: string, body?: BodyInit, json = true): Promise<{ status: number; data: T }> {
    const headers: Record<string, string> = {};
    if (this.#token) headers.authorization = `Bearer ${this.#token}`;
    if (body !== undefined && json) headers['content-type'] = 'application/json';
    const f = this.#opts.fetch ?? fetch;
    let res: Response;
    try {
      res = await f(`${this.baseUrl}${path}`, { method, headers, body });
    } catch {
      throw new BackendError(
        NETWORK,
        `Cannot reach the otafleet server at ${this.baseUrl || location.origin}. Is it running, and is this the right address?`,
      );
    }
    if (res.status === 204) return { status: 204, data: undefined as T };
    const text = await res.text();
    let data: unknown = undefined;
    try {
      data = text ? JSON.parse(text) : undefined;
    } catch {
      /* handled below */
    }
    if (!res.ok) {
      const err = (data as { error?: { code?: string; message?: string } } | undefined)?.error;
      if (err?.code) throw new BackendError(err.code, err.message ?? err.code, res.status);
      throw new BackendError(BAD_RESPONSE, `The server answered ${res.status} ${res.statusText} to ${method} ${path}.`, res.status);
    }
    if (data === undefined) {
      throw new BackendError(BAD_RESPONSE, `The server's answer to ${method} ${path} was not JSON.`, res.status);
    }
    return { status: res.status, data: data as T };
  }

  listDevices() {
    return this.#request<Device[]>('GET', '/api/v1/devices');
  }
  createDevice(d: NewDevice) {
    return this.#request<Device>('POST', '/api/v1/devices', JSON.stringify(d));
  }
  getDevice(mac: string) {
    return this.#request<Device>('GET', `/api/v1/devices/${encodeURIComponent(mac)}`);
  }
  deviceHistory(mac: string) {
    return this.#request<Update[]>('GET', `/api/v1/devices/${encodeURIComponent(mac)}/updates`);
  }
  deleteDevice(mac: string) {
    return this.#request<void>('DELETE', `/api/v1/devices/${encodeURIComponent(mac)}`);
  }
  patchDevice(mac: string, patch: DevicePatch) {
    return this.#request<Device>('PATCH', `/api/v1/devices/${encodeURIComponent(mac)}`, JSON.stringify(patch));
  }
  deviceTarget(mac: string) {
    return this.#request<DeviceTarget | null>('GET', `/api/v1/devices/${encodeURIComponent(mac)}/target`);
  }
  retryDevice(mac: string) {
    return this.#request<Update>('POST', `/api/v1/devices/${encodeURIComponent(mac)}/retry`);
  }
  rollbackDevice(mac: string) {
    return this.#request<Deployment>('POST', `/api/v1/devices/${encodeURIComponent(mac)}/rollback`);
  }
  listFirmware() {
    return this.#request<Firmware[]>('GET', '/api/v1/firmware');
  }
  async uploadFirmware(file: File): Promise<UploadOutcome> {
    const form = new FormData();
    form.append('file', file, file.name);
    // 201: a new image; 200: the same bytes were already in the library (the existing record).
    const { status, data } = await this.#call<Firmware>('POST', '/api/v1/firmware', form, false);
    return { firmware: data, created: status === 201 };
  }
  deleteFirmware(id: number) {
    return this.#request<void>('DELETE', `/api/v1/firmware/${id}`);
  }
  listDeployments() {
    return this.#request<Deployment[]>('GET', '/api/v1/deployments');
  }
  getDeployment(id: number) {
    return this.#request<DeploymentDetail>('GET', `/api/v1/deployments/${id}`);
  }
  planDeployment(d: NewDeployment) {
    return this.#request<Plan>('POST', '/api/v1/deployments?dry_run=true', JSON.stringify(d));
  }
  createDeployment(d: NewDeployment) {
    return this.#request<Deployment>('POST', '/api/v1/deployments', JSON.stringify(d));
  }
  stopDeployment(id: number) {
    return this.#request<Deployment>('POST', `/api/v1/deployments/${id}/stop`);
  }
  retryDeployment(id: number) {
    return this.#request<Update[]>('POST', `/api/v1/deployments/${id}/retry`);
  }
  settings() {
    return this.#request<ServerSettings>('GET', '/api/v1/settings');
  }
  patchSettings(p: SettingsPatch) {
    return this.#request<ServerSettings>('PATCH', '/api/v1/settings', JSON.stringify(p));
  }
  listWatchFolders() {
    return this.#request<WatchFolder[]>('GET', '/api/v1/watch-folders');
  }
  addWatchFolder(f: NewWatchFolder) {
    return this.#request<WatchFolder>('POST', '/api/v1/watch-folders', JSON.stringify(f));
  }
  removeWatchFolder(id: number) {
    return this.#request<void>('DELETE', `/api/v1/watch-folders/${id}`);
  }

  subscribe(onEvent: (e: LiveEvent) => void, onStatus?: (s: LiveStatus) => void): () => void {
    const f = this.#opts.fetch ?? fetch;
    const sleep = this.#opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    const abort = new AbortController();
    let stopped = false;
    const deliver = (m: EventSourceMessage) => {
      const name = m.event ?? 'message';
      if (name === 'hello') {
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
    };
    // One connection: resolves when the stream ends or fails; 'down' for good on a refused token.
    const connect = async (): Promise<'again' | 'refused'> => {
      const headers: Record<string, string> = { accept: 'text/event-stream' };
      if (this.#token) headers.authorization = `Bearer ${this.#token}`;
      const res = await f(`${this.baseUrl}/api/v1/events`, { headers, signal: abort.signal, cache: 'no-store' });
      if (res.status === 401 || res.status === 403) return 'refused';
      if (!res.ok || !res.body) return 'again';
      const parser = createParser({ onEvent: deliver });
      const reader = res.body.getReader();
      const text = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return 'again';
        parser.feed(text.decode(value, { stream: true }));
      }
    };
    void (async () => {
      let wait = RETRY_FIRST_MS;
      while (!stopped) {
        onStatus?.('connecting');
        let outcome: 'again' | 'refused' = 'again';
        const started = Date.now();
        try {
          outcome = await connect();
        } catch {
          // Network error or abort: retry unless unsubscribed.
        }
        if (stopped) return;
        if (outcome === 'refused') {
          onStatus?.('down');
          return;
        }
        // A stream that stayed up a while was healthy: start the back-off afresh.
        if (Date.now() - started > RETRY_MAX_MS) wait = RETRY_FIRST_MS;
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
