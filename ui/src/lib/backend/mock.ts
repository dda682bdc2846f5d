// An in-memory Backend for unit tests: records calls, answers from fixtures, and lets a test
// push live events by hand.
import type {
  ApiToken, CreatedApiToken, CreatedOrganisation, Me, NewOrganisation, Organisation, NewApiToken, NewTeamMember, Role, SignInProviders, TeamMember,
  AuditEntry, AuditQuery, BulkCommand, BulkResult, Command, CommandList, ConfigPatch, DeviceConfig, NewProject, Project, ProjectPatch, DeliveriesQuery, Delivery, NotifyTestResult, NotifyView, LogLine, LogSnapshot, NewCommand, Report, ReportsQuery, Deployment, DeploymentDetail, Device, DevicePatch, DeviceTarget, DeviceVerdict, DiscoveredHost, Firmware, FirmwarePatch, NewDeployment, NewDevice, NewEspAdminDevice, EspAdminDeviceAdded,
  Member, NewWatchFolder, Plan, Rollout, RolloutPlan, Resumed, RolledBack, ServerSettings, SettingsPatch, TlsInfo, Update, Verdict, VerdictGroup, WatchFolder,
} from '../api/types';
import { BackendError, type Backend, type LiveEvent, type LiveStatus, type LogWatcher, type NativeAdapter, type UploadOutcome } from './backend';


/** What `GET /api/v1/me` says of the server's own organisation (to an admin or owner). */
export const DEFAULT_ORG = { id: 'default', name: 'Default', device_path: '' };

export function device(mac: string, over: Partial<Device> = {}): Device {
  return {
    mac, name: null, chip: 'esp32', project: 'blink', version: '1.0.0', sha256: null, ip: null, rssi: null,
    free_space: null, uptime_s: null, protocol: 'native', weak_auth: false, tls: null, source: 'checkin',
    created_at: '2026-11-22T20:00:00Z', last_seen: '2026-11-22T20:00:00Z', online: true, enrolled: true, update: null,
    tags: [], auth: 'token', ...over,
  } as Device;
}

/** A service heard over mDNS that told no MAC (`instance` names it within `_arduino._tcp`). */
export function host(instance: string, over: Partial<DiscoveredHost> = {}): DiscoveredHost {
  return {
    key: `_arduino._tcp/${instance}`, mac: null, hostname: `${instance}.local`, name: null, ip: '10.0.0.50',
    mdns_service: '_arduino._tcp', mdns_instance: instance, mdns_port: 3232, mdns_txt: { board: 'esp32' },
    mdns_seen: '2026-11-22T20:00:00Z', mdns_gone: null, last_seen: '2026-11-22T20:00:00Z', online: true, source: 'mdns',
    created_at: '2026-11-22T20:00:00Z', ...over,
  };
}

/** The id and API key the mock's createEspAdminDevice answers. */
export const ESP_ADMIN_ID = '1e0f438a7459a19bd5d8d637';
export const ESP_ADMIN_KEY = 'FROjei3ShFYoxNogOEasKNNGA821Na';

export const CA_PEM = '-----BEGIN CERTIFICATE-----\nMIIBfzCCASWgAwIBAgIUTEST\n-----END CERTIFICATE-----\n';
export const CA_SHA256 = Array.from({ length: 32 }, (_, i) => (i * 7 % 256).toString(16).toUpperCase().padStart(2, '0')).join(':');

/** `GET /api/v1/tls` as the server answers it: `off`; `auto`/`require` with the generated CA and
 *  its snippets; `user` for `--tls-cert` (no CA, no snippets). */
export function tlsInfo(kind: 'off' | 'auto' | 'require' | 'user', over: Partial<TlsInfo> = {}): TlsInfo {
  if (kind === 'off') return { mode: 'off', urls: [], ca_pem: null, ca_sha256: null, certificate: null, snippets: [], ...over };
  const certificate = { origin: kind === 'user' ? 'user' : 'generated', names: ['DNS:otafleet.local', 'IP:192.168.1.20'],
    not_after: '2027-11-22T20:00:00Z' };
  const urls = ['https://192.168.1.20:8470', 'https://otafleet.local:8470'];
  if (kind === 'user') return { mode: 'auto', urls, ca_pem: null, ca_sha256: null, certificate, snippets: [], ...over };
  const snippets = [
    { id: 'pem', title: 'The CA certificate (PEM)', language: 'pem', text: CA_PEM },
    { id: 'arduino', title: 'Arduino (WiFiClientSecure + HTTPUpdate / HTTPClient)', language: 'cpp',
      text: `static const char OTAFLEET_CA[] PROGMEM = R"EOF(\n${CA_PEM})EOF";\nclient.setCACert(OTAFLEET_CA);\n` },
    { id: 'esp_idf', title: 'ESP-IDF (esp_http_client / esp_https_ota: cert_pem)', language: 'c', text: 'extern const char ca[];\n' },
    { id: 'esp32fota', title: 'esp32FOTA (root CA from program memory)', language: 'cpp', text: 'CryptoMemAsset *ca;\n' },
    { id: 'esp_admin', title: 'ESP Admin SDK (include/credentials.h)', language: 'cpp', text: '#define OTA_CA "..."\n' },
    { id: 'curl', title: 'curl (check the server against the CA)', language: 'shell', text: 'curl --cacert otafleet-ca.pem https://192.168.1.20:8470/api/v1/tls\n' },
  ];
  return { mode: kind, urls, ca_pem: CA_PEM, ca_sha256: CA_SHA256, certificate, snippets, ...over };
}

export function update(mac: string, over: Partial<Update> = {}): Update {
  return {
    id: 1, mac, firmware_id: 1, deployment_id: 1, sha256: 'ab'.repeat(32), version: '2.0.0', from_version: '1.0.0',
    from_sha256: null, state: 'downloading', progress: 0, bytes_sent: 0, error: null, retry: false,
    created_at: '2026-11-22T20:00:00Z', updated_at: '2026-11-22T20:00:00Z', finished_at: null, ...over,
  } as Update;
}

export function auditEntry(id: number, over: Partial<AuditEntry> = {}): AuditEntry {
  return {
    id, at: '2026-11-22T20:00:00.000Z', actor: 'admin', action: 'patch_firmware', method: 'PATCH',
    path: `/api/v1/firmware/${id}`, target: `id=${id}`, status: 200, outcome: 'ok', detail: { fields: ['version'] }, ...over,
  };
}

export function report(id: number, over: Partial<Report> = {}): Report {
  return {
    id, mac: '24:6F:28:00:00:01', type: 'info', subject: `report ${id}`, body: '', device_time: null,
    received_at: '2026-11-22T20:00:00.000Z', ...over,
  };
}

export function command(id: number, over: Partial<Command> = {}): Command {
  return {
    id, mac: '24:6F:28:00:00:01', kind: 'restart', key: null, payload: null, state: 'queued',
    created_at: '2026-11-22T20:00:00.000Z', expires_at: '2026-11-22T20:10:00.000Z', sent_at: null, finished_at: null,
    actor: 'admin', result: null, ...over,
  };
}

export function project(name: string, over: Partial<Project> = {}): Project {
  return {
    name, description: '', enrolment: null, variables: [], commands: [], devices: 0, images: 0,
    created_at: '2026-11-22T20:00:00.000Z', changed_at: '2026-11-22T20:00:00.000Z', ...over,
  };
}

export function deviceConfig(mac: string, over: Partial<DeviceConfig> = {}): DeviceConfig {
  return {
    mac, project: 'blink', version: 2, applied_version: 1, applied_at: null, pending_since: '2026-11-22T20:00:00.000Z',
    state: 'pending', values: {}, variables: [], ...over,
  };
}

export function firmware(id: number, over: Partial<Firmware> = {}): Firmware {
  return {
    id, filename: `blink-${id}.bin`, size: 200000, sha256: String(id).padStart(64, '0'), md5: '0'.repeat(32),
    chip: 'esp32', format: 'esp32_app', project: 'blink', project_source: 'app_desc', version: `2.0.${id}`,
    version_source: 'app_desc', source: 'upload', uploaded_at: '2026-11-22T20:00:00Z', devices_running: 0, ...over,
  } as Firmware;
}

export function deployment(id: number, over: Partial<Deployment> = {}): Deployment {
  return {
    id, firmware_id: 1, project: 'blink', chip: 'esp32', rollback: false, allow_other_project: false, status: 'active',
    created_at: '2026-11-22T20:00:00Z', ended_at: null, end_reason: null, devices: [], reach: 0,
    plan: null, wave: 1, wave_started_at: null, paused_at: null, pause_reason: null, pause_kind: null,
    tally: { done: 0, in_progress: 0, waiting: 0, failed: 0, held: 0, superseded: 0 }, ...over,
  };
}

export function verdict(mac: string, v: Verdict, over: Partial<DeviceVerdict> = {}): DeviceVerdict {
  return { mac, name: null, protocol: 'native', project: 'blink', version: '1.0.0', verdict: v, reason: `reason for ${mac}`, update: null, ...over };
}

/** A dry-run answer made of groups; `offered` counts the offer and in_progress groups, as the server does. */
export function plan(groups: VerdictGroup[], over: Partial<Plan> = {}): Plan {
  const offered = groups.filter((g) => g.kind === 'offer' || g.kind === 'in_progress').reduce((n, g) => n + g.count, 0);
  return {
    firmware_id: 1, project: null, chip: null, rollback: false, allow_other_project: false,
    reach: groups.reduce((n, g) => n + g.count, 0), offered, groups, supersedes: [], overlaps: [], ...over,
  };
}

/** A device of a wave (waiting, not late, unless `over` says otherwise). */
export function member(mac: string, over: Partial<Member> = {}): Member {
  return { mac, name: null, protocol: 'native', state: 'waiting', reason: null, late: false, ...over };
}

/** The canary preset as the server defines it. */
export const CANARY: RolloutPlan = {
  waves: [{ by: 'tag', tag: 'canary' }, { by: 'percent', percent: 10 }, { by: 'percent', percent: 50 }, { by: 'percent', percent: 100 }],
  success_pct: 100, error_limit: { devices: null, percent: 10 }, soak_s: 60, max_parallel: null, pause_after_wave: false, offline_limit_s: null,
};

/** A rollout of `plan` whose waves hold these members (labels as the server words them; each
 *  wave's counts from its members' states). */
export function rollout(waves: Member[][], over: Partial<Rollout> = {}, plan: RolloutPlan = CANARY): Rollout {
  const current = over.current_wave ?? 1;
  const label = (i: number) => {
    if (i === waves.length - 1) return 'the rest';
    const w = plan.waves[i];
    return !w ? `wave ${i + 1}` : w.by === 'tag' ? `tag ${w.tag}` : w.by === 'count' ? `${w.count} devices` : `up to ${w.percent} %`;
  };
  return {
    plan, current_wave: current, wave_started_at: '2026-11-22T20:00:00Z', paused_at: null, pause_reason: null, ...over,
    waves: waves.map((devices, i) => {
      const n = (s: Member['state']) => devices.filter((d) => d.state === s).length;
      return {
        number: i + 1, label: label(i), started: i + 1 <= current, devices,
        succeeded: n('succeeded'), failed: n('failed'), soaking: n('soaking'), updating: n('updating'), waiting: n('waiting'), skipped: n('skipped'),
      };
    }),
  };
}

export function group(kind: VerdictGroup['kind'], devices: DeviceVerdict[]): VerdictGroup {
  return { kind, count: devices.length, devices };
}

export class MockBackend implements Backend {
  baseUrl = 'http://otafleet.test';
  native?: NativeAdapter;
  devices: Device[] = [];
  /** MAC-less mDNS hosts the device list carries after the devices. */
  hosts: DiscoveredHost[] = [];
  firmwareList: Firmware[] = [];
  deployments: Deployment[] = [];
  calls: string[] = [];
  /** Uploads by file name: an outcome, or an error to throw. */
  uploads = new Map<string, UploadOutcome | BackendError>();
  deleteError: BackendError | null = null;
  reach = 3;
  /** The dry run's answer to a request (default: `reach` devices, all offered). */
  planFor: (d: NewDeployment) => Plan = () =>
    plan([group('offer', Array.from({ length: this.reach }, (_, i) => verdict(`AA:00:00:00:00:0${i}`, { kind: 'offer' })))]);
  /** The refusal the next createDeployment throws (e.g. `other_project` unless allowed). */
  createErrorFor: (d: NewDeployment) => BackendError | null = () => null;
  details = new Map<number, DeploymentDetail>();
  targets = new Map<string, DeviceTarget | null>();
  history = new Map<string, Update[]>();
  /** What retryDevice / rollbackDevice answer: a value, or an error to throw. */
  retryResult: Update | BackendError | null = null;
  rollbackResult: Deployment | BackendError | null = null;
  #token: string | null = 'T';
  #listener: ((e: LiveEvent) => void) | null = null;
  listError: BackendError | null = null;

  setToken(t: string) { this.#token = t; }
  hasToken() { return !!this.#token; }
  token() { return this.#token; }
  clearToken() { this.#token = null; }

  async listDevices() {
    this.calls.push('listDevices');
    if (this.listError) throw this.listError;
    return { devices: this.devices, hosts: this.hosts };
  }
  /** The refusal the next createDevice throws (e.g. `invalid_mac`), if any. */
  createError: BackendError | null = null;
  async createDevice(d: NewDevice): Promise<Device> {
    this.calls.push(`createDevice ${JSON.stringify(d)}`);
    if (this.createError) throw this.createError;
    return device(d.mac.toUpperCase(), {
      name: d.name ?? null, chip: d.chip ?? null, project: d.project ?? null, version: null, protocol: null,
      expect_protocol: d.expect_protocol ?? null, source: 'admin', last_seen: null, online: false, enrolled: false,
    });
  }
  /** The refusal the next createEspAdminDevice throws (e.g. `invalid_name`), if any. */
  espAdminError: BackendError | null = null;
  /** What the next createEspAdminDevice answers as `credentials_h` (null: HTTPS off). */
  espAdminCredentials: string | null = `const char *deviceId = "${ESP_ADMIN_ID}";\nconst char *apiKey = "${ESP_ADMIN_KEY}";\n`;
  async createEspAdminDevice(d: NewEspAdminDevice): Promise<EspAdminDeviceAdded> {
    this.calls.push(`createEspAdminDevice ${JSON.stringify(d)}`);
    if (this.espAdminError) throw this.espAdminError;
    const dev = device('02:CF:46:6E:AC:B3', {
      name: d.name ?? null, chip: null, project: d.project ?? null, version: null, protocol: null, notes: d.notes ?? null,
      tags: d.tags ?? [], expect_protocol: 'esp-admin', mqtt_id: ESP_ADMIN_ID, source: 'admin', last_seen: null, online: false,
    });
    return { device: dev, id: ESP_ADMIN_ID, api_key: ESP_ADMIN_KEY, credentials_h: this.espAdminCredentials };
  }
  async getDevice(mac: string) { return this.devices.find((d) => d.mac === mac)!; }
  async deviceHistory(mac: string) { return this.history.get(mac) ?? []; }
  async deviceTarget(mac: string) { this.calls.push(`target ${mac}`); return this.targets.get(mac) ?? null; }
  async retryDevice(mac: string) {
    this.calls.push(`retryDevice ${mac}`);
    const r = this.retryResult ?? update(mac, { id: 99, state: 'offered', retry: true });
    if (r instanceof BackendError) throw r;
    return r;
  }
  async rollbackDevice(mac: string) {
    this.calls.push(`rollbackDevice ${mac}`);
    const r = this.rollbackResult ?? deployment(8, { devices: [mac], rollback: true, allow_other_project: true });
    if (r instanceof BackendError) throw r;
    return r;
  }
  async deleteDevice(mac: string) { this.calls.push(`deleteDevice ${mac}`); }
  /** The refusal the next patchDevice throws (e.g. `invalid_tags`), if any. */
  patchError: BackendError | null = null;
  async patchDevice(mac: string, patch: DevicePatch) {
    this.calls.push(`patchDevice ${mac} ${JSON.stringify(patch)}`);
    if (this.patchError) throw this.patchError;
    const d = this.devices.find((d) => d.mac === mac)!;
    const named = patch.name === undefined ? {} : patch.name
      ? { admin_name: patch.name, name: patch.name, name_source: 'admin' as const }
      : { admin_name: null, name: d.reported_name ?? null, name_source: d.reported_name ? ('reported' as const) : null };
    return {
      ...d,
      ...named,
      ...(patch.notes !== undefined ? { notes: patch.notes || null } : {}),
      ...(patch.tags ? { tags: patch.tags } : {}),
      ...(patch.reset_token ? { enrolled: false } : {}),
      ...(patch.expect_protocol ? { expect_protocol: patch.expect_protocol } : {}),
    } as Device;
  }
  async listFirmware() { this.calls.push('listFirmware'); return this.firmwareList; }
  async uploadFirmware(file: File) {
    this.calls.push(`upload ${file.name}`);
    const r = this.uploads.get(file.name);
    if (r instanceof BackendError) throw r;
    if (!r) throw new BackendError('not_app_image', `no fixture for ${file.name}`, 422);
    return r;
  }
  async deleteFirmware(id: number) {
    this.calls.push(`delete ${id}`);
    if (this.deleteError) throw this.deleteError;
  }
  async patchFirmware(id: number, patch: FirmwarePatch) {
    this.calls.push(`patchFirmware ${id} ${JSON.stringify(patch)}`);
    const f = this.firmwareList.find((x) => x.id === id);
    if (!f) throw new BackendError('not_found', `firmware ${id} not found`, 404);
    if (patch.project != null) Object.assign(f, { project: patch.project, project_source: 'admin' });
    if (patch.version != null) Object.assign(f, { version: patch.version, version_source: 'admin' });
    if (patch.filename != null) f.filename = patch.filename;
    return f;
  }
  async listDeployments() { this.calls.push('listDeployments'); return this.deployments; }
  async getDeployment(id: number) {
    this.calls.push(`getDeployment ${id}`);
    const d = this.details.get(id);
    if (!d) throw new BackendError('not_found', `deployment ${id} not found`, 404);
    // As the server: the detail carries the deployment as it is now (after a stop, pause, …).
    return { ...d, deployment: this.deployments.find((x) => x.id === id) ?? d.deployment };
  }
  async planDeployment(d: NewDeployment) {
    this.calls.push(`plan ${JSON.stringify(d)}`);
    return this.planFor(d);
  }
  async createDeployment(d: NewDeployment): Promise<Deployment> {
    this.calls.push(`deploy ${JSON.stringify(d)}`);
    const refusal = this.createErrorFor(d);
    if (refusal) throw refusal;
    return deployment(7, {
      firmware_id: d.firmware_id, project: d.project ?? null, chip: d.chip ?? null, rollback: d.rollback ?? false,
      allow_other_project: d.allow_other_project ?? false, devices: d.devices ?? [], reach: this.reach,
    });
  }
  async stopDeployment(id: number) {
    this.calls.push(`stop ${id}`);
    const d = { ...this.deployments.find((d) => d.id === id)!, status: 'stopped' as const, end_reason: 'stopped by the admin' };
    this.deployments = this.deployments.map((x) => (x.id === id ? d : x));
    return d;
  }
  async pauseDeployment(id: number, reason: string | null) {
    this.calls.push(`pause ${id} ${JSON.stringify(reason)}`);
    const old = this.deployments.find((d) => d.id === id)!;
    const d = { ...old, status: 'paused' as const, paused_at: '2026-11-22T20:05:00Z', pause_reason: `paused by the admin${reason ? `: ${reason}` : ''}`, pause_kind: 'admin' as const };
    this.deployments = this.deployments.map((x) => (x.id === id ? d : x));
    return d;
  }
  async resumeDeployment(id: number, retry: boolean): Promise<Resumed> {
    this.calls.push(`resume ${id} retry=${retry}`);
    const old = this.deployments.find((d) => d.id === id)!;
    const d = { ...old, status: 'active' as const, paused_at: null, pause_reason: null, pause_kind: null };
    this.deployments = this.deployments.map((x) => (x.id === id ? d : x));
    return { deployment: d, opened: retry ? [update('A', { id: 51, deployment_id: id, state: 'offered', retry: true })] : [] };
  }
  async rollbackDeployment(id: number): Promise<RolledBack> {
    this.calls.push(`rollback ${id}`);
    const stopped = { ...this.deployments.find((d) => d.id === id)!, status: 'stopped' as const, end_reason: 'stopped by the admin' };
    const back = deployment(id + 100, { firmware_id: 1, rollback: true, allow_other_project: true, devices: ['A'] });
    this.deployments = [back, ...this.deployments.map((x) => (x.id === id ? stopped : x))];
    return { stopped, created: [back], left: [{ mac: 'B', reason: 'the image it ran before (1.0.0) is not in the library; add it, then roll back again' }] };
  }
  async retryDeployment(id: number) {
    this.calls.push(`retryDeployment ${id}`);
    return [update('A', { id: 50, deployment_id: id, state: 'offered', retry: true })];
  }
  openEnrolment = true;
  /** The admin's check-in interval and offline threshold (null: the start default / the rule). */
  interval: number | null = null;
  offlineAfter: number | null = null;
  /** The refusal the next patchSettings throws (e.g. `invalid_checkin_interval`), if any. */
  settingsError: BackendError | null = null;
  async settings(): Promise<ServerSettings> {
    const interval = this.interval ?? 60;
    return { listen: '127.0.0.1:8470', checkin_path: '/api/v1/device/checkin', checkin_interval_s: interval,
      checkin_interval_source: this.interval == null ? 'start' : 'admin', checkin_interval_default_s: 60,
      offline_after_s: this.offlineAfter ?? interval * 3 + 10, offline_after_source: this.offlineAfter == null ? 'start' : 'admin',
      max_image_size: 16777216, legacy_secret_configured: false, mdns_name: null,
      data_dir: '/tmp/d', open_enrolment: this.openEnrolment, editable: false, notify: structuredClone(this.notify) };
  }
  /** The notification channels as the server shows them (secrets only as `set`). */
  notify: NotifyView = { webhook: null, smtp: null };
  async patchSettings(p: SettingsPatch) {
    this.calls.push(`patchSettings ${JSON.stringify(p)}`);
    if (this.settingsError) {
      const e = this.settingsError;
      this.settingsError = null;
      throw e;
    }
    if (p.open_enrolment != null) this.openEnrolment = p.open_enrolment;
    if (p.checkin_interval_s !== undefined) this.interval = p.checkin_interval_s;
    if (p.offline_after_s !== undefined) this.offlineAfter = p.offline_after_s;
    if (p.notify) this.applyNotify(p.notify);
    return this.settings();
  }
  /** What `GET /api/v1/tls` answers (HTTPS off unless a test sets it; see `tlsInfo()`). */
  tlsAnswer: TlsInfo = tlsInfo('off');
  async tls(): Promise<TlsInfo> {
    this.calls.push('tls');
    return structuredClone(this.tlsAnswer);
  }
  caPemUrl() {
    return '/api/v1/tls/ca.pem';
  }
  audit: AuditEntry[] = [];
  async listAudit(q: AuditQuery = {}) {
    this.calls.push(`listAudit ${JSON.stringify(q)}`);
    return this.audit.filter((r) => (!q.outcome || r.outcome === q.outcome) && (!q.action || r.action === q.action));
  }
  /** The CSV export: the same filter as `listAudit`, a header row and one line per row (no
   *  quoting: the fixtures hold no commas). */
  async auditCsv(q: AuditQuery = {}) {
    this.calls.push(`auditCsv ${JSON.stringify(q)}`);
    const rows = this.audit.filter((r) => (!q.outcome || r.outcome === q.outcome) && (!q.action || r.action === q.action));
    const lines = ['id,at,actor,action,method,path,target,status,outcome,detail',
      ...rows.map((r) => [r.id, r.at, r.actor, r.action, r.method, r.path, r.target ?? '', r.status ?? '', r.outcome, ''].join(','))];
    return new Blob([lines.map((l) => `${l}\r\n`).join('')], { type: 'text/csv' });
  }
  /** The server's merge of a notify patch: absent fields stay, `null` removes a channel. */
  private applyNotify(n: NonNullable<SettingsPatch['notify']>) {
    if (n.webhook === null) this.notify.webhook = null;
    else if (n.webhook) {
      const o = this.notify.webhook;
      this.notify.webhook = { url: n.webhook.url ?? o?.url ?? '', secret: { set: !!(n.webhook.secret || o?.secret.set) },
        types: n.webhook.types ?? o?.types ?? ['warn', 'error'], enabled: n.webhook.enabled ?? o?.enabled ?? true };
    }
    if (n.smtp === null) this.notify.smtp = null;
    else if (n.smtp) {
      const o = this.notify.smtp;
      const security = n.smtp.security ?? o?.security ?? 'starttls';
      const username = n.smtp.username === undefined ? (o?.username ?? null) : n.smtp.username || null;
      this.notify.smtp = { host: n.smtp.host ?? o?.host ?? '', port: n.smtp.port ?? o?.port ?? 587, security, username,
        password: { set: username != null && (n.smtp.password === undefined ? !!o?.password.set : !!n.smtp.password) },
        from: n.smtp.from ?? o?.from ?? '', to: n.smtp.to ?? o?.to ?? [], types: n.smtp.types ?? o?.types ?? ['warn', 'error'],
        enabled: n.smtp.enabled ?? o?.enabled ?? true, max_per_hour: n.smtp.max_per_hour ?? o?.max_per_hour ?? 10 };
    }
  }
  deliveries: Delivery[] = [];
  async listDeliveries(q: DeliveriesQuery = {}) {
    this.calls.push(`listDeliveries ${JSON.stringify(q)}`);
    return this.deliveries.filter((d) => (q.report_id == null || d.report_id === q.report_id) && (!q.state || d.state === q.state))
      .sort((a, b) => b.id - a.id);
  }
  testResult: NotifyTestResult = { results: [] };
  async testNotify() {
    this.calls.push('testNotify');
    return this.testResult;
  }
  reports: Report[] = [];
  async listReports(q: ReportsQuery = {}) {
    this.calls.push(`listReports ${JSON.stringify(q)}`);
    return this.reports.filter((r) => (!q.mac || r.mac === q.mac) && (!q.type || r.type === q.type)).sort((a, b) => b.id - a.id);
  }
  /** Log lines per device (`deviceLogs`), and the watchers `watchLogs` holds. */
  logLines = new Map<string, LogLine[]>();
  logWatchers = new Map<string, Set<LogWatcher>>();
  /** The refusal `watchLogs` answers with (e.g. `logs_unsupported`). */
  logRefusal: BackendError | null = null;
  async deviceLogs(mac: string, after = 0): Promise<LogSnapshot> {
    this.calls.push(`deviceLogs ${mac} ${after}`);
    const lines = (this.logLines.get(mac) ?? []).filter((l) => l.seq > after);
    return { mac, lines, watched: (this.logWatchers.get(mac)?.size ?? 0) > 0, last_line_at: lines.at(-1)?.received_at ?? null, dropped: 0 };
  }
  watchLogs(mac: string, w: LogWatcher): () => void {
    this.calls.push(`watchLogs ${mac}`);
    if (this.logRefusal) {
      const e = this.logRefusal;
      queueMicrotask(() => w.status?.('refused', e));
      return () => {};
    }
    const set = this.logWatchers.get(mac) ?? new Set<LogWatcher>();
    set.add(w);
    this.logWatchers.set(mac, set);
    const backlog = this.logLines.get(mac) ?? [];
    queueMicrotask(() => {
      w.status?.('open');
      if (backlog.length) w.lines(backlog);
    });
    return () => {
      this.calls.push(`unwatchLogs ${mac}`);
      set.delete(w);
    };
  }
  /** A device sends lines: kept, and handed to its watchers. */
  emitLogs(mac: string, lines: LogLine[]) {
    this.logLines.set(mac, [...(this.logLines.get(mac) ?? []), ...lines]);
    for (const w of this.logWatchers.get(mac) ?? []) w.lines(lines);
  }
  commands: Command[] = [];
  /** Why the device of that MAC cannot take commands (a stock device), by MAC. */
  commandsUnsupported: Record<string, string> = {};
  async listCommands(mac: string): Promise<CommandList> {
    this.calls.push(`listCommands ${mac}`);
    return {
      commands: this.commands.filter((c) => c.mac === mac).sort((a, b) => b.id - a.id),
      unsupported: this.commandsUnsupported[mac] ?? null,
    };
  }
  async queueCommand(mac: string, c: NewCommand): Promise<Command> {
    this.calls.push(`queueCommand ${mac} ${JSON.stringify(c)}`);
    const why = this.commandsUnsupported[mac];
    if (why) throw new BackendError('commands_unsupported', why, 409);
    const made = command(Math.max(0, ...this.commands.map((x) => x.id)) + 1, {
      mac, kind: c.kind, key: c.key ?? null, payload: c.payload ?? null,
    });
    this.commands = [...this.commands, made];
    return made;
  }
  async cancelCommand(mac: string, id: number): Promise<Command> {
    this.calls.push(`cancelCommand ${mac} ${id}`);
    const c = this.commands.find((x) => x.id === id && x.mac === mac);
    if (!c) throw new BackendError('not_found', `command ${id} of device ${mac} not found`, 404);
    if (c.state !== 'queued' && c.state !== 'sent') throw new BackendError('command_finished', `command ${id} is already ${c.state}`, 409);
    const done = { ...c, state: 'cancelled' as const, finished_at: '2026-11-22T20:01:00.000Z' };
    this.commands = this.commands.map((x) => (x.id === id ? done : x));
    return done;
  }
  async bulkCommand(c: BulkCommand): Promise<BulkResult[]> {
    this.calls.push(`bulkCommand ${JSON.stringify(c)}`);
    const out: BulkResult[] = [];
    for (const mac of c.macs) {
      const why = this.commandsUnsupported[mac];
      if (why) {
        out.push({ mac, command: null, error: { code: 'commands_unsupported', message: why } });
        continue;
      }
      const made = command(Math.max(0, ...this.commands.map((x) => x.id)) + 1, {
        mac, kind: c.kind, key: c.key ?? null, payload: c.payload ?? null,
      });
      this.commands = [...this.commands, made];
      out.push({ mac, command: made, error: null });
    }
    return out;
  }
  projects: Project[] = [];
  projectError: BackendError | null = null;
  async listProjects() {
    this.calls.push('listProjects');
    return this.projects;
  }
  async createProject(p: NewProject): Promise<Project> {
    this.calls.push(`createProject ${JSON.stringify(p)}`);
    if (this.projectError) throw this.projectError;
    const made = project(p.name, { description: p.description ?? '' });
    this.projects = [...this.projects, made];
    return made;
  }
  async patchProject(name: string, p: ProjectPatch): Promise<Project> {
    this.calls.push(`patchProject ${name} ${JSON.stringify(p)}`);
    if (this.projectError) throw this.projectError;
    const old = this.projects.find((x) => x.name === name) ?? project(name);
    const changed: Project = {
      ...old,
      description: p.description ?? old.description,
      enrolment: p.enrolment !== undefined ? p.enrolment : old.enrolment,
      commands: p.commands ?? old.commands,
      variables: p.variables
        ? p.variables.map((v) => ({ key: v.key, type: v.type, description: v.description ?? '',
            default: v.type === 'secret' ? { set: v.default != null } : (v.default ?? null) }))
        : old.variables,
    };
    this.projects = this.projects.map((x) => (x.name === name ? changed : x));
    return changed;
  }
  async deleteProject(name: string) {
    this.calls.push(`deleteProject ${name}`);
    if (this.projectError) throw this.projectError;
    this.projects = this.projects.filter((x) => x.name !== name);
  }
  configs = new Map<string, DeviceConfig>();
  configError: BackendError | null = null;
  async deviceConfig(mac: string) {
    this.calls.push(`deviceConfig ${mac}`);
    return this.configs.get(mac) ?? deviceConfig(mac);
  }
  async patchDeviceConfig(mac: string, p: ConfigPatch) {
    this.calls.push(`patchDeviceConfig ${mac} ${JSON.stringify(p)}`);
    if (this.configError) throw this.configError;
    const old = this.configs.get(mac) ?? deviceConfig(mac);
    const next = { ...old, version: (old.version ?? 1) + 1, state: 'pending' as const, pending_since: '2026-11-22T20:01:00.000Z' };
    this.configs.set(mac, next);
    return next;
  }
  /** Who the token stands for; `role` is what the UI hides actions by. */
  whoami: Me = { actor: 'admin', role: 'owner', scope: null, organisation: DEFAULT_ORG };
  /** A signed-in person's browser: no token, but `me()` answers (the session cookie). */
  session = false;
  async me(): Promise<Me> {
    if (!this.#token && !this.session) throw new BackendError('admin_token_required', 'this is an admin endpoint', 401);
    return this.whoami;
  }
  csrf: string | null = null;
  setCsrf(csrf: string | null) { this.csrf = csrf; }
  providers: SignInProviders = { oidc: null, github: null, password: false };
  /** What passwordSignIn accepts (address → password). */
  passwords = new Map<string, string>();
  async passwordSignIn(email: string, password: string, org?: string | null) {
    this.calls.push(`passwordSignIn ${email}${org ? ` org=${org}` : ''}`);
    if (this.passwords.get(email) !== password) throw new BackendError('bad_credentials', 'that address and password do not match', 401);
    this.session = true;
  }
  async setMemberPassword(id: number, password: string | null): Promise<TeamMember> {
    this.calls.push(`setMemberPassword ${id} ${password === null ? 'none' : 'set'}`);
    this.members = this.members.map((m) => (m.id === id ? { ...m, has_password: password !== null } : m));
    return this.members.find((m) => m.id === id)!;
  }
  async signInProviders(org?: string | null) {
    this.calls.push(`signInProviders${org ? ` org=${org}` : ''}`);
    if (org && !this.organisations.some((o) => o.id === org)) throw new BackendError('organisation_unknown', `no organisation "${org}" on this server`, 404);
    return this.providers;
  }
  organisations: Organisation[] = [];
  async listOrganisations() {
    if (this.whoami.organisation.id !== 'default' || this.whoami.role !== 'owner') throw new BackendError('organisation_scope', 'only an owner of the default organisation lists organisations', 403);
    return this.organisations;
  }
  async createOrganisation(o: NewOrganisation): Promise<CreatedOrganisation> {
    this.calls.push(`createOrganisation ${o.id} ${o.name}`);
    if (this.organisations.some((x) => x.id === o.id)) throw new BackendError('organisation_exists', `organisation "${o.id}" exists already`, 409);
    const organisation: Organisation = { id: o.id, name: o.name, enrolment_key: `key-${o.id}`, created_at: '2026-12-07T10:00:00Z', created_by: this.whoami.actor };
    this.organisations = [...this.organisations, organisation];
    const token: ApiToken = { id: 1, name: 'owner', role: 'owner', scope: null, prefix: `otf_${o.id}.abcd`, created_at: organisation.created_at,
      created_by: this.whoami.actor, last_used_at: null, revoked_at: null };
    return { organisation, owner_token: { token, secret: `otf_${o.id}.SECRET` } };
  }
  async signOut() { this.calls.push('signOut'); this.session = false; }
  members: TeamMember[] = [];
  async listMembers() { return this.members; }
  async addMember(m: NewTeamMember): Promise<TeamMember> {
    this.calls.push(`addMember ${m.email} ${m.role}`);
    const member: TeamMember = { id: this.members.length + 1, email: m.email.toLowerCase(), role: m.role, name: null,
      created_at: '2026-12-07T10:00:00Z', created_by: this.whoami.actor, last_login_at: null, has_password: false };
    this.members = [...this.members, member];
    return member;
  }
  async setMemberRole(id: number, role: Role): Promise<TeamMember> {
    this.calls.push(`setMemberRole ${id} ${role}`);
    this.members = this.members.map((m) => (m.id === id ? { ...m, role } : m));
    return this.members.find((m) => m.id === id)!;
  }
  async removeMember(id: number) {
    this.calls.push(`removeMember ${id}`);
    this.members = this.members.filter((m) => m.id !== id);
  }
  /** Make the token this role's (a named token's actor). */
  asRole(role: Role) { this.whoami = { actor: `token:${role}`, role, scope: null, organisation: this.whoami.organisation }; return this; }
  /** Put the caller in another organisation (its devices' path shown to admins and owners). */
  inOrganisation(id: string, name: string) {
    const admin = this.whoami.role === 'admin' || this.whoami.role === 'owner';
    this.whoami = { ...this.whoami, organisation: { id, name, device_path: admin ? `/o/key-${id}` : null } };
    return this;
  }
  tokens: ApiToken[] = [];
  async listTokens() { return this.tokens; }
  async createToken(t: NewApiToken): Promise<CreatedApiToken> {
    this.calls.push(`createToken ${t.name} ${t.role} ${t.scope ?? ''}`.trim());
    const token: ApiToken = { id: this.tokens.length + 1, name: t.name, role: t.role, scope: t.scope ?? null,
      prefix: 'otf_abcdefgh', created_at: '2026-12-07T10:00:00Z', created_by: this.whoami.actor, last_used_at: null, revoked_at: null };
    this.tokens = [token, ...this.tokens];
    return { token, secret: 'otf_abcdefghSECRET' };
  }
  async revokeToken(id: number): Promise<ApiToken> {
    this.calls.push(`revokeToken ${id}`);
    this.tokens = this.tokens.map((t) => (t.id === id ? { ...t, revoked_at: '2026-12-07T11:00:00Z' } : t));
    return this.tokens.find((t) => t.id === id)!;
  }
  watchFolders: WatchFolder[] = [];
  watchError: BackendError | null = null;
  async listWatchFolders() { return this.watchFolders; }
  async addWatchFolder(f: NewWatchFolder): Promise<WatchFolder> {
    this.calls.push(`watch ${f.path} ${f.auto_deploy ?? false}`);
    if (this.watchError) throw this.watchError;
    const folder = { id: this.watchFolders.length + 1, path: f.path, auto_deploy: f.auto_deploy ?? false,
      created_at: '2026-11-22T20:00:00Z', last_file: null, last_result: null, last_message: null, last_at: null };
    this.watchFolders = [...this.watchFolders, folder];
    return folder;
  }
  async removeWatchFolder(id: number) {
    this.calls.push(`unwatch ${id}`);
    this.watchFolders = this.watchFolders.filter((f) => f.id !== id);
  }
  #onStatus: ((s: LiveStatus) => void) | null = null;
  subscribe(onEvent: (e: LiveEvent) => void, onStatus?: (s: LiveStatus) => void) {
    this.#listener = onEvent;
    this.#onStatus = onStatus ?? null;
    onStatus?.('open');
    return () => {
      this.#listener = null;
      this.#onStatus = null;
    };
  }
  emit(e: LiveEvent) { this.#listener?.(e); }
  /** The event stream's status changes (a drop: 'connecting'; back: 'open', then a `hello`). */
  status(s: LiveStatus) { this.#onStatus?.(s); }
}
