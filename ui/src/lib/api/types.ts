// Names for the generated OpenAPI types (schema.d.ts, `npm run gen:api`). Never declare a DTO by
// hand: add it to the Rust side with utoipa and regenerate.
import type { components } from './schema';

type S = components['schemas'];
export type Device = S['Device'];
export type DevicePatch = S['DevicePatch'];
export type NewDevice = S['NewDevice'];
export type Update = S['Update'];
/** Where one update attempt stands (the server's `UpdateState` enum). */
export type UpdateState = S['UpdateState'];
export type Firmware = S['Firmware'];
export type Deployment = S['Deployment'];
/** active | completed | stopped (the server's `DeploymentStatus` enum). */
export type DeploymentStatus = S['DeploymentStatus'];
export type DeploymentDetail = S['DeploymentDetail'];
export type Tally = S['Tally'];
export type NewDeployment = S['NewDeployment'];
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
export type Refusal = S['Refusal'];
export type WatchFolder = S['WatchFolder'];
export type NewWatchFolder = S['NewWatchFolder'];
export type ErrorBody = S['ErrorBody'];
/** One server-sent event's payload, tagged by `type`. */
export type FleetEvent = S['Event'];
