// The ONE interface the UI talks to. The HTTP + SSE implementation (http.ts) serves browsers and
// the Tauri window alike; the desktop-only extras (native file drop, file dialog, notifications)
// hang off `native`, which only tauri.ts fills. Components get a Backend from context and never
// import @tauri-apps themselves, so Vitest and Playwright run them in a plain browser.
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
  FleetEvent,
  Firmware,
  LogLine,
  LogSnapshot,
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

/** An error the UI can act on. `code` is the server's stable `error.code` (or one of the
 *  client-side codes below); `message` is for people and is shown verbatim, never parsed. */
export class BackendError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 0,
  ) {
    super(message);
    this.name = 'BackendError';
  }
}

/** Client-side codes, in addition to the server's. */
export const NETWORK = 'network';
export const BAD_RESPONSE = 'bad_response';
/** Codes that mean "ask the person for the admin token". */
export const AUTH_CODES = new Set(['admin_token_required', 'admin_token_invalid', 'session_ended']);

export function isAuthError(e: unknown): boolean {
  return e instanceof BackendError && AUTH_CODES.has(e.code);
}

/** `GET /api/v1/devices` split in two: the server lists both kinds in one array, told apart by a
 *  host's `key`. */
export type DeviceList = { devices: Device[]; hosts: DiscoveredHost[] };

export type UploadOutcome = { firmware: Firmware; created: boolean };

/** A live event: the server's tagged events plus the stream's own control events. */
export type LiveEvent = FleetEvent | { type: 'hello' } | { type: 'lagged' };

export type LiveStatus = 'connecting' | 'open' | 'down';

/** How a device's log stream stands: `open` (watching: the device is asked to send), `connecting`
 *  (reconnecting after a drop), `refused` (for good: the device cannot send logs, is gone, or the
 *  token was refused — `error` says which). */
export type LogStreamStatus = 'connecting' | 'open' | 'refused';

export interface LogWatcher {
  /** New lines, oldest first (after a reconnect, only those after the last one delivered). */
  lines(lines: LogLine[]): void;
  /** Lines were missed (this viewer fell behind). */
  lagged?(): void;
  status?(s: LogStreamStatus, error?: BackendError): void;
}

export interface Backend {
  /** Where the API lives, for display (the check-in URL devices need). */
  readonly baseUrl: string;
  /** Present only in the desktop window. */
  readonly native?: NativeAdapter;

  setToken(token: string): void;
  hasToken(): boolean;
  /** The admin token in use (the settings page shows it). */
  token(): string | null;
  /** Forget the token (and its stored copy). */
  clearToken(): void;

  /** The device list: devices (keyed by MAC) and, apart from them, services heard over mDNS that
   *  told no MAC (keyed by `key`): those are never merged with a device or with each other. */
  listDevices(): Promise<DeviceList>;
  /** Add a device before it checks in (with open enrolment off, the only way in). */
  createDevice(d: NewDevice): Promise<Device>;
  /** Add a device that runs the ESP Admin SDK: its id, its API key (in this answer only: the
   *  server keeps a hash) and a ready `credentials.h` (null when the server has no CA of its own
   *  to put in it). 422 for a bad field, nothing stored. */
  createEspAdminDevice(d: NewEspAdminDevice): Promise<EspAdminDeviceAdded>;
  getDevice(mac: string): Promise<Device>;
  deviceHistory(mac: string): Promise<Update[]>;
  deleteDevice(mac: string): Promise<void>;
  patchDevice(mac: string, patch: DevicePatch): Promise<Device>;
  /** What the deployment that targets the device now gives it and why; null when none covers it. */
  deviceTarget(mac: string): Promise<DeviceTarget | null>;
  /** A new attempt for a device that reached the attempt limit (409 when there is nothing to retry). */
  retryDevice(mac: string): Promise<Update>;
  /** Back to the image the device ran before its last completed update: a rollback deployment
   *  to it alone (409 with the reason when that image is not known). */
  rollbackDevice(mac: string): Promise<Deployment>;

  listFirmware(): Promise<Firmware[]>;
  uploadFirmware(file: File): Promise<UploadOutcome>;
  deleteFirmware(id: number): Promise<void>;
  /** Correct what an image was read as (project, version, file name); the admin's values are
   *  marked `admin` in `*_source`. 409 while a project-wide deployment of it would move. */
  patchFirmware(id: number, patch: FirmwarePatch): Promise<Firmware>;

  listDeployments(): Promise<Deployment[]>;
  /** One deployment and every device it covers, with what each gets and its latest attempt. */
  getDeployment(id: number): Promise<DeploymentDetail>;
  /** The dry run: what every device the deployment would cover would get; stores nothing. */
  planDeployment(d: NewDeployment): Promise<Plan>;
  /** Create it (409 `other_project` when it would install another project's image on some
   *  device and `allow_other_project` is not set). */
  createDeployment(d: NewDeployment): Promise<Deployment>;
  /** Stop one deployment; its unstarted attempts are cancelled. */
  stopDeployment(id: number): Promise<Deployment>;
  /** A new attempt for every device of it that reached the attempt limit. */
  retryDeployment(id: number): Promise<Update[]>;
  /** Pause an active rollout (409 otherwise): no device is offered its image until it resumes.
   *  `reason`: one line, at most 200 characters (422 otherwise). */
  pauseDeployment(id: number, reason: string | null): Promise<Deployment>;
  /** Resume a paused rollout (409 otherwise); `retry`: its failed devices count afresh and get a
   *  new attempt. */
  resumeDeployment(id: number, retry: boolean): Promise<Resumed>;
  /** Roll it back: it is stopped, and each device it updated is offered the image it ran before
   *  (one rollback deployment per such image); devices it cannot return are listed with why.
   *  409 when it updated no device. */
  rollbackDeployment(id: number): Promise<RolledBack>;

  settings(): Promise<ServerSettings>;
  /** Change the settings kept by the server (open enrolment, timing, notifications); returns all settings. */
  patchSettings(p: SettingsPatch): Promise<ServerSettings>;

  /** HTTPS on the server: mode, addresses, the CA (PEM, fingerprint), the certificate and device
   *  snippets. Needs no token. */
  tls(): Promise<TlsInfo>;
  /** Where the CA certificate downloads (`otafleet-ca.pem`; no token needed, so a plain link). */
  caPemUrl(): string;

  /** Who the token (or, without one, this browser's session cookie) stands for: actor, role,
   *  scope, and for a session the CSRF token every change must send. */
  me(): Promise<Me>;
  /** A signed-in person's session: send this CSRF token with every request (null: none). */
  setCsrf(csrf: string | null): void;
  /** Which sign-in the server offers (no token needed). `org`: of that organisation (its id; 404
   *  `organisation_unknown` for none such); without it, of the one the token or session is in. */
  signInProviders(org?: string | null): Promise<SignInProviders>;
  /** End this browser's session (signing out). */
  signOut(): Promise<void>;
  /** Sign in with a member's address and password (`--local-accounts`): a session cookie.
   *  `org`: a member of that organisation (its id); without it, of the server's own. */
  passwordSignIn(email: string, password: string, org?: string | null): Promise<void>;
  /** Set (null: remove) a member's password; their sessions end. */
  setMemberPassword(id: number, password: string | null): Promise<TeamMember>;
  /** The people who may sign in (admins). */
  listMembers(): Promise<TeamMember[]>;
  addMember(m: NewTeamMember): Promise<TeamMember>;
  setMemberRole(id: number, role: Role): Promise<TeamMember>;
  removeMember(id: number): Promise<void>;
  /** Named API tokens (admins): listed without secrets; made with the secret answered once;
   *  revoked for good. */
  listTokens(): Promise<ApiToken[]>;
  createToken(t: NewApiToken): Promise<CreatedApiToken>;
  revokeToken(id: number): Promise<ApiToken>;
  /** The other organisations on this server (owners of the default organisation only: 403
   *  `organisation_scope` elsewhere), with the enrolment key of their devices' path. */
  listOrganisations(): Promise<Organisation[]>;
  /** Make one: 201 with it and its first owner's token (the secret answered this once). 422
   *  `invalid_organisation_id`, 409 `organisation_exists`. */
  createOrganisation(o: NewOrganisation): Promise<CreatedOrganisation>;

  /** Build output folders whose new images the server imports by itself. */
  listWatchFolders(): Promise<WatchFolder[]>;
  addWatchFolder(f: NewWatchFolder): Promise<WatchFolder>;
  removeWatchFolder(id: number): Promise<void>;

  /** The audit log, newest first: one row per admin change, who made it and its result. */
  listAudit(q?: AuditQuery): Promise<AuditEntry[]>;
  /** The same rows with the same filters as CSV (`GET /api/v1/audit.csv`, RFC 4180 with a header
   *  row), for the person to save; the token goes in the header as for every request. */
  auditCsv(q?: AuditQuery): Promise<Blob>;
  /** Device reports, newest first, of one device (`mac`) or all, optionally of one type. */
  listReports(q?: ReportsQuery): Promise<Report[]>;
  /** A device's buffered log lines (after `after`), and whether someone watches it. Changes nothing. */
  deviceLogs(mac: string, after?: number): Promise<LogSnapshot>;
  /** Watch a device's logs live. While this is held the server asks the device to send its lines
   *  (the log lease); the returned function stops watching, and the device is told to stop soon
   *  after the last viewer left. Reconnects by itself after a drop, from the last line it had. */
  watchLogs(mac: string, w: LogWatcher): () => void;

  /** A device's commands, newest first, and why it cannot take commands (or null). */
  listCommands(mac: string): Promise<CommandList>;
  /** Queue a command for a device; a stock device is refused (409 `commands_unsupported`). */
  queueCommand(mac: string, c: NewCommand): Promise<Command>;
  /** Cancel a queued or sent command (409 `command_finished` once it is finished). */
  cancelCommand(mac: string, id: number): Promise<Command>;
  /** Queue the same command for several devices; each device's outcome comes back (a stock or
   *  unknown device is listed with its refusal, it does not fail the call). 422 for a bad command. */
  bulkCommand(c: BulkCommand): Promise<BulkResult[]>;
  /** The delivery log (webhook calls and mails of reports), newest first. */
  listDeliveries(q?: DeliveriesQuery): Promise<Delivery[]>;
  /** Send a test to each configured notification channel now; answers what happened per target. */
  testNotify(): Promise<NotifyTestResult>;

  /** Every project (every name a device or image carries), with its variables (secret defaults
   *  masked), commands, enrolment and how many devices and images use it. */
  listProjects(): Promise<Project[]>;
  /** 409 `project_exists` for a name in use. */
  createProject(p: NewProject): Promise<Project>;
  /** Lists sent replace the whole list; a changed variable gives every device of the project a
   *  new config version. */
  patchProject(name: string, p: ProjectPatch): Promise<Project>;
  /** 409 `project_in_use` while a device or image names it. */
  deleteProject(name: string): Promise<void>;
  /** A device's config: version, applied version, pending since, values (secrets masked). */
  deviceConfig(mac: string): Promise<DeviceConfig>;
  /** Change a device's values (null = back to the default): a new version, pending until the
   *  device confirms it. 422 `unknown_config_key` / `invalid_config_value`, nothing changed. */
  patchDeviceConfig(mac: string, p: ConfigPatch): Promise<DeviceConfig>;

  /** Subscribe to live events; returns the unsubscribe function. After every (re)connect a
   *  `hello` arrives: the subscriber should reload, since events may have been missed. */
  subscribe(onEvent: (e: LiveEvent) => void, onStatus?: (s: LiveStatus) => void): () => void;
}

/** One file the desktop shell imported from a native path. */
export type NativeImportResult =
  | { path: string; ok: true; firmware: Firmware; created: boolean }
  | { path: string; ok: false; error: { code: string; message: string } };

/** What only the desktop shell can do. */
export interface NativeAdapter {
  /** Open the OS file dialog and import what was chosen (results come to `onImportResults`). */
  pickFirmware(): Promise<void>;
  /** Import files by path (scripts and tests; results also come to `onImportResults`). */
  importPaths(paths: string[]): Promise<NativeImportResult[]>;
  /**
   * Call `cb` with the result of every import the desktop shell makes (native drops onto the
   * window, the dialog, `importPaths`), and `onHover` while files are dragged over the window.
   * Returns the unsubscribe.
   */
  onImportResults(
    cb: (results: NativeImportResult[]) => void,
    onHover?: (over: boolean) => void,
  ): Promise<() => void>;
  notify(title: string, body: string): Promise<void>;
}
