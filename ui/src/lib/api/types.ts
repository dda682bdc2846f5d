// Names for the generated OpenAPI types (schema.d.ts, `npm run gen:api`). Never declare a DTO by
// hand: add it to the Rust side with utoipa and regenerate.
import type { components, paths } from './schema';

type S = components['schemas'];
export type Device = S['Device'];
/** A MAC-less service heard over mDNS, listed after the devices; its `mac` is always `null`. */
export type DiscoveredHost = S['DiscoveredHost'];
/** One row of `GET /api/v1/devices`: `row.mac === null` narrows it to a `DiscoveredHost`. */
export type ListedDevice = S['ListedDevice'];
/** How the server recognises a device's requests (token | shared_secret | mac | pending_enrolment | unclaimed). */
export type DeviceAuth = S['DeviceAuth'];
/** Where a device's shown `name` comes from (admin | reported | mdns). */
export type NameSource = S['NameSource'];
/** `name`/`notes`: absent = unchanged, `null` or `""` = clear; `tags` replaces the list. */
export type DevicePatch = S['DevicePatch'];
export type NewDevice = S['NewDevice'];
/** `POST /api/v1/esp-admin/devices`: a device that runs the ESP Admin SDK (name, project, notes, tags; all optional). */
export type NewEspAdminDevice = S['NewEspAdminDevice'];
/** The new ESP Admin device, its `id` and `api_key` (shown once) and its `credentials.h` (null without our CA). */
export type EspAdminDeviceAdded = S['EspAdminDeviceAdded'];
export type Update = S['Update'];
/** Where one update attempt stands (the server's `UpdateState` enum). */
export type UpdateState = S['UpdateState'];
/** Why an attempt failed, was cancelled or (a stock client's pass) was cut; map it to a hint, never read `error`. */
export type UpdateFailure = S['UpdateFailure'];
export type Firmware = S['Firmware'];
/** Where an image's project or version came from (override | app_desc | filename | admin | none). */
export type IdentitySource = S['IdentitySource'];
/** `PATCH /api/v1/firmware/{id}`: the admin's correction of project, version or file name. */
export type FirmwarePatch = S['FirmwarePatch'];
export type Deployment = S['Deployment'];
/** active | completed | paused | stopped (the server's `DeploymentStatus` enum). */
export type DeploymentStatus = S['DeploymentStatus'];
export type DeploymentDetail = S['DeploymentDetail'];
export type Tally = S['Tally'];
export type NewDeployment = S['NewDeployment'];
/** How a rollout offers its image: waves, success share, error limit, soak time, parallelism. */
export type RolloutPlan = S['RolloutPlan'];
/** Which devices a wave takes, tagged by `by` (tag | count | percent). */
export type WaveSpec = S['WaveSpec'];
export type ErrorLimit = S['ErrorLimit'];
/** canary | all_at_once | one_at_a_time: the plans the server offers by name. */
export type Preset = S['Preset'];
/** A rollout's plan and where it stands: its waves with their devices (dry run and detail). */
export type Rollout = S['Rollout'];
export type Wave = S['Wave'];
/** A device of a wave, with its `MemberState` and whether it joined late. */
export type Member = S['Member'];
/** waiting | updating | soaking | succeeded | failed | skipped. */
export type MemberState = S['MemberState'];
/** A resumed rollout and the attempts its retry opened. */
export type Resumed = S['Resumed'];
export type RolledBack = S['RolledBack'];
/** A deployment dry run: what each device it would cover would get. */
export type Plan = S['Plan'];
export type VerdictGroup = S['VerdictGroup'];
/** What a device gets from a deployment, tagged by `kind`. */
export type Verdict = S['Verdict'];
export type VerdictKind = S['VerdictKind'];
export type DeviceVerdict = S['DeviceVerdict'];
/** What the deployment that targets a device now gives it, and why. */
export type DeviceTarget = S['DeviceTarget'];
export type ServerSettings = S['ServerSettings'];
export type SettingsPatch = S['SettingsPatch'];
/** Where a setting's value in effect comes from: the server's start settings or the admin. */
export type SettingSource = S['SettingSource'];
export type Refusal = S['Refusal'];
export type WatchFolder = S['WatchFolder'];
export type NewWatchFolder = S['NewWatchFolder'];
export type ErrorBody = S['ErrorBody'];
/** One server-sent event's payload, tagged by `type`. */
export type FleetEvent = S['Event'];
/** One row of the audit log (`GET /api/v1/audit`): an admin change, who made it and its result. */
export type AuditEntry = S['AuditEntry'];
/** pending (result unknown) | ok | refused | failed (the server's audit `Outcome` enum). */
export type AuditOutcome = S['Outcome'];
/** What an audited request sent: field and query names, and the values of harmless fields only. */
export type AuditDetail = S['AuditDetail'];
/** The filters of `GET /api/v1/audit` (since, until, action, target, outcome, limit). */
export type AuditQuery = NonNullable<paths['/api/v1/audit']['get']['parameters']['query']>;
/** One device report (`POST /api/v1/device/report`, listed by `GET /api/v1/reports`). */
export type Report = S['Report'];
/** info | warn | error | success. */
export type ReportType = S['ReportType'];
/** The filters of `GET /api/v1/reports` (mac, type, limit). */
export type ReportsQuery = NonNullable<paths['/api/v1/reports']['get']['parameters']['query']>;
/** One log line a device sent (kept in the server's memory only; `seq` increases per device). */
export type LogLine = S['LogLine'];
/** error | warn | info | debug | verbose. */
export type LogLevel = S['LogLevel'];
/** A device's buffered log lines and whether someone watches it (`GET /api/v1/devices/{mac}/logs`). */
export type LogSnapshot = S['LogSnapshot'];
/** A command the admin queued for a device, and how far it got. */
export type Command = S['Command'];
/** restart | config | log | custom | update_abort. */
export type CommandKind = S['CommandKind'];
/** queued | sent | done | failed | rejected | expired | cancelled. */
export type CommandState = S['CommandState'];
/** A device's commands, newest first, and why it cannot take any (`unsupported`, or null). */
export type CommandList = S['CommandList'];
/** What the admin asks (`POST /api/v1/devices/{mac}/commands`). */
export type NewCommand = S['NewCommand'];
/** The same command for several devices (`POST /api/v1/commands`). */
export type BulkCommand = S['BulkCommand'];
/** One device's outcome of a bulk command: the queued command, or the refusal (`error`). */
export type BulkResult = S['BulkResult'];
/** Where device reports are sent (webhook, e-mail); secrets only as `{ set: boolean }`. */
export type NotifyView = S['NotifyView'];
export type WebhookView = S['WebhookView'];
export type SmtpView = S['SmtpView'];
/** `PATCH /api/v1/settings` field `notify`: absent fields stay, `null` removes a channel. */
export type NotifyPatch = S['NotifyPatch'];
export type WebhookPatch = S['WebhookPatch'];
export type SmtpPatch = S['SmtpPatch'];
/** starttls | tls | none. */
export type SmtpSecurity = S['SmtpSecurity'];
/** One row of the delivery log (`GET /api/v1/deliveries`). */
export type Delivery = S['Delivery'];
/** pending | delivered | failed | rate_limited. */
export type DeliveryState = S['DeliveryState'];
/** The filters of `GET /api/v1/deliveries` (report_id, state, limit). */
export type DeliveriesQuery = NonNullable<paths['/api/v1/deliveries']['get']['parameters']['query']>;
/** What `POST /api/v1/settings/notify/test` came to, per target. */
export type NotifyTestResult = S['NotifyTestResult'];
/** A project: description, enrolment protocols, config variables and commands (`/api/v1/projects`). */
export type Project = S['Project'];
export type NewProject = S['NewProject'];
/** `PATCH /api/v1/projects/{name}`: absent = unchanged; lists replace; `enrolment: null` = any protocol. */
export type ProjectPatch = S['ProjectPatch'];
/** A config variable as read (a secret's default is `{"set": bool}`). */
export type Variable = S['Variable'];
/** A config variable as sent (a secret without `default` keeps its stored one). */
export type VariableInput = S['VariableInput'];
/** string | int | bool | secret. */
export type VarType = S['VarType'];
export type ProjectCommand = S['ProjectCommand'];
/** A device's config as the admin sees it (secrets masked). */
export type DeviceConfig = S['DeviceConfig'];
export type ConfigEntry = S['ConfigEntry'];
/** `PATCH /api/v1/devices/{mac}/config`: `{values: {key: value | null}}` (null = the default). */
export type ConfigPatch = S['ConfigPatch'];
/** HTTPS on this server (`GET /api/v1/tls`, no token): mode, addresses, the CA and snippets. */
export type TlsInfo = S['TlsInfo'];
/** viewer < operator < admin < owner: each may do what the ones before it may (docs/access.md). */
export type Role = S['Role'];
/** Who the presented token stands for (`GET /api/v1/me`). */
export type Me = S['Me'];
/** A named API token as listed (never its secret). */
export type ApiToken = S['ApiToken'];
export type NewApiToken = S['NewApiToken'];
/** A token just made: the one time its secret is shown. */
export type CreatedApiToken = S['CreatedApiToken'];
/** Which sign-in the server offers (`GET /api/v1/auth/providers`, no token). */
export type SignInProviders = S['Providers'];
/** A person who may sign in, with a role. */
export type TeamMember = S['TeamMember'];
export type NewTeamMember = S['NewTeamMember'];
/** The caller's organisation (`Me.organisation`): id `default` for the server's own; `device_path`
 *  (admins only, else null) is what its devices put after the server's address. */
export type MeOrganisation = S['MeOrganisation'];
/** Another organisation on this server, with the enrolment key of its devices' path `/o/<key>`. */
export type Organisation = S['Organisation'];
export type NewOrganisation = S['NewOrganisation'];
/** An organisation just made, with its first owner's API token: the one time its secret is shown. */
export type CreatedOrganisation = S['CreatedOrganisation'];
/** off (plain HTTP only) | auto (HTTPS beside HTTP on the same port) | require (HTTPS only). */
export type TlsMode = S['Mode'];
/** The server certificate in use: origin (generated | user), names, expiry. */
export type ServerCertificate = S['ServerCertificate'];
/** Code to paste into a device so that it trusts the CA (id: pem | arduino | esp_idf | esp32fota | esp_admin | curl). */
export type TlsSnippet = S['Snippet'];
