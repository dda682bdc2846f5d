// Names for the generated OpenAPI types (schema.d.ts, `npm run gen:api`). Never declare a DTO by
// hand: add it to the Rust side with utoipa and regenerate.
import type { components } from './schema';

type S = components['schemas'];
export type Device = S['Device'];
export type DevicePatch = S['DevicePatch'];
export type NewDevice = S['NewDevice'];
export type Update = S['Update'];
export type Firmware = S['Firmware'];
export type Deployment = S['Deployment'];
export type NewDeployment = S['NewDeployment'];
export type ServerSettings = S['ServerSettings'];
export type SettingsPatch = S['SettingsPatch'];
export type Refusal = S['Refusal'];
export type WatchFolder = S['WatchFolder'];
export type NewWatchFolder = S['NewWatchFolder'];
export type ErrorBody = S['ErrorBody'];
/** One server-sent event's payload, tagged by `type`. */
export type FleetEvent = S['Event'];
