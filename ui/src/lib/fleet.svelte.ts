// The app's state root: the stores, fed by the backend's live events in per-frame batches.
import type { Command, Delivery, Device, DeviceConfig, DevicePatch, Me, Project, Report, Role, Update } from './api/types';
import type { Backend, LiveEvent, LiveStatus } from './backend/backend';
import { BackendError, isAuthError } from './backend/backend';
import { DeploymentStore } from './deployments/deployments.svelte';
import { DeviceStore } from './devices/devices.svelte';
import { UPDATE_STATES } from './devices/status';
import { FirmwareStore } from './firmware/firmware.svelte';
import { WatchStore } from './firmware/watch.svelte';
import { access, can } from './access/access.svelte';
import { EventBatcher, frameScheduler, type Scheduler } from './live';
import { TlsStore } from './tls/tls.svelte';

export class Fleet {
  devices = new DeviceStore();
  firmware: FirmwareStore;
  deployments: DeploymentStore;
  watch: WatchStore;
  /** HTTPS on the server, asked on first use (`tls.load()`). */
  tls: TlsStore;
  live = $state<LiveStatus>('connecting');
  /** The event stream dropped after it had been open: what is shown may be out of date (and
   *  nothing is drawn as online) until the reload that follows reconnecting. */
  lost = $state(false);
  /** True for a few seconds after that reload, to say the data is fresh again. */
  reconnected = $state(false);
  /** Bumped after every full reload: views that read more than the lists (a device's history)
   *  ask again, since anything may have changed while events were missed. */
  reloads = $state(0);
  #streamWasOpen = false;
  #reconnectedTimer: ReturnType<typeof setTimeout> | null = null;
  /** Who the token stands for, and its role (`GET /api/v1/me`); null until the first load. */
  me = $state<Me | null>(null);
  /** Set when the admin token is missing or refused: the app asks for it. */
  needsToken = $state(false);
  /** A load failure a person should see (server down, ...). */
  error = $state<BackendError | null>(null);
  #unsubscribe: (() => void) | null = null;
  #reportListeners = new Set<(r: Report) => void>();
  #commandListeners = new Set<(c: Command) => void>();
  #deliveryListeners = new Set<(d: Delivery) => void>();
  #configListeners = new Set<(c: DeviceConfig) => void>();
  #projectListeners = new Set<(p: Project | { removed: string }) => void>();
  #batcher: EventBatcher<LiveEvent>;

  constructor(
    readonly backend: Backend,
    schedule: Scheduler = frameScheduler,
    /** How long "Reconnected" stays up. */
    private readonly reconnectedMs = 4000,
  ) {
    this.firmware = new FirmwareStore(backend);
    this.deployments = new DeploymentStore(backend);
    this.watch = new WatchStore(backend);
    this.tls = new TlsStore(backend);
    this.#batcher = new EventBatcher((batch) => this.applyBatch(batch), schedule);
    this.needsToken = !backend.hasToken();
  }

  /** Load everything, then follow live events. */
  async start() {
    // Without a token this browser may still hold a signed-in person's session (its cookie).
    if (!this.backend.hasToken() && !(await this.#hasSession())) {
      this.needsToken = true;
      return;
    }
    this.stop();
    if (!(await this.reload())) return;
    this.#streamWasOpen = false;
    this.#unsubscribe = this.backend.subscribe(
      (e) => this.#batcher.push(e),
      (s) => this.#onStatus(s),
    );
  }

  /** Whether the server knows this browser's session cookie (then its CSRF token is used). */
  async #hasSession(): Promise<boolean> {
    try {
      const me = await this.backend.me();
      this.backend.setCsrf(me.csrf ?? null);
      return true;
    } catch {
      return false;
    }
  }

  /** Whether the UI speaks for a signed-in person (a session), not a token. */
  get signedIn(): boolean {
    return !!this.me?.actor.startsWith('user:');
  }

  /** Sign out: the server ends the session; the UI asks how to connect again. */
  async signOut() {
    try {
      await this.backend.signOut();
    } finally {
      this.stop();
      this.backend.setCsrf(null);
      this.me = null;
      access.me = null;
      this.needsToken = true;
    }
  }

  #onStatus(s: LiveStatus) {
    this.live = s;
    if (s === 'open') {
      // The `hello` that follows reloads everything; `lost` is cleared once that reload lands.
      this.#streamWasOpen = true;
      return;
    }
    if (this.#streamWasOpen) this.#setLost(true);
    // The stream gave up for good (the token was refused): the reload says so and asks for it.
    if (s === 'down') void this.reload();
  }

  #setLost(lost: boolean) {
    this.lost = lost;
    this.devices.stale = lost;
    if (lost) {
      this.reconnected = false;
      if (this.#reconnectedTimer) clearTimeout(this.#reconnectedTimer);
    }
  }

  stop() {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
  }

  async reload(): Promise<boolean> {
    try {
      const [list, me] = await Promise.all([
        this.backend.listDevices(),
        this.backend.me(),
        this.firmware.load(),
        this.deployments.refresh(),
        this.watch.load(),
      ]);
      this.devices.setAll(list.devices, list.hosts);
      this.me = me;
      access.me = me;
      if (!this.backend.hasToken()) this.backend.setCsrf(me.csrf ?? null);
      this.error = null;
      this.needsToken = false;
      this.reloads++;
      // A server restarted while the stream was down may serve HTTPS differently now.
      if (this.tls.info) void this.tls.refresh();
      if (this.lost && this.live === 'open') {
        this.#setLost(false);
        this.reconnected = true;
        this.#reconnectedTimer = setTimeout(() => (this.reconnected = false), this.reconnectedMs);
      }
      return true;
    } catch (e) {
      if (isAuthError(e)) {
        this.needsToken = true;
        this.stop();
        return false;
      }
      // Not about the token (server down, ...): leave the prompt and say what is wrong instead.
      this.needsToken = false;
      this.error = e instanceof BackendError ? e : new BackendError('unexpected', String(e));
      return false;
    }
  }

  /** Change what the admin says about a device (name, notes, tags, …): the answer is applied
   *  at once (its `device` event follows and changes nothing more). Throws the server's refusal. */
  async patchDevice(mac: string, patch: DevicePatch): Promise<Device> {
    const d = await this.backend.patchDevice(mac, patch);
    this.devices.applyDevice(d);
    this.devices.commit();
    return d;
  }

  /** Whether the token's role is at least `role` (the server decides; this only hides what it
   *  would refuse). Not known yet: shown. */
  can(role: Role): boolean {
    return can(role);
  }

  async useToken(token: string) {
    this.backend.setToken(token);
    await this.start();
  }

  /** Call `fn` with every report a device sends from now on (the `report` event); returns the
   *  function that stops it. The device page and the Activity page list them without a reload. */
  onReport(fn: (r: Report) => void): () => void {
    this.#reportListeners.add(fn);
    return () => this.#reportListeners.delete(fn);
  }

  /** Call `fn` with every command change from now on (the `command` event: queued, sent,
   *  answered, cancelled, expired); returns the function that stops it. */
  onCommand(fn: (c: Command) => void): () => void {
    this.#commandListeners.add(fn);
    return () => this.#commandListeners.delete(fn);
  }

  /** Call `fn` with every delivery of a report as it is queued or attempted (the `delivery`
   *  event); returns the function that stops it. The Activity page shows where each report went. */
  onDelivery(fn: (d: Delivery) => void): () => void {
    this.#deliveryListeners.add(fn);
    return () => this.#deliveryListeners.delete(fn);
  }

  /** Call `fn` with every device config change from now on (the `device_config` event: the
   *  admin changed it, or the device fetched or applied it); returns the function that stops it. */
  onConfig(fn: (c: DeviceConfig) => void): () => void {
    this.#configListeners.add(fn);
    return () => this.#configListeners.delete(fn);
  }

  /** Call `fn` with every project created or changed (`project`), or deleted (`{removed}`). */
  onProject(fn: (p: Project | { removed: string }) => void): () => void {
    this.#projectListeners.add(fn);
    return () => this.#projectListeners.delete(fn);
  }

  /** Apply one frame's worth of events; the device table re-derives once. */
  applyBatch(batch: LiveEvent[]) {
    let reload = false;
    let devicesChanged = false;
    let versionsChanged = false;
    const finished: string[] = [];
    const failed: string[] = [];
    // An update reaching done (a check-in on the new image: a `device` event) or failed.
    const noteTransition = (was: Update | null | undefined, now: Update | null | undefined) => {
      if (!was || !now || was.id !== now.id || was.state === now.state) return;
      const s = UPDATE_STATES[now.state];
      if (s.finished && s.tone === 'ok') finished.push(now.mac);
      if (s.finished && s.problem) failed.push(now.mac);
    };
    for (const e of batch) {
      switch (e.type) {
        case 'device': {
          const old = this.devices.get(e.device.mac);
          noteTransition(old?.update, e.device.update);
          if (!old || old.sha256 !== e.device.sha256 || old.version !== e.device.version) versionsChanged = true;
          this.devices.applyDevice(e.device);
          devicesChanged = true;
          break;
        }
        case 'seen':
          this.devices.applySeen(e.mac, e.last_seen, e.rssi ?? null, e.uptime_s ?? null);
          devicesChanged = true;
          break;
        case 'device_removed':
          this.devices.applyRemoved(e.mac);
          devicesChanged = versionsChanged = true;
          break;
        case 'update': {
          noteTransition(this.devices.get(e.update.mac)?.update, e.update);
          this.devices.applyUpdate(e.update);
          devicesChanged = true;
          break;
        }
        case 'firmware':
          this.firmware.applyFirmware(e.firmware);
          break;
        case 'firmware_removed':
          this.firmware.applyRemoved(e.id);
          break;
        case 'deployment':
          this.deployments.apply(e.deployment);
          break;
        case 'watch':
          this.watch.apply(e.folder);
          break;
        case 'report':
          for (const fn of this.#reportListeners) fn(e.report);
          break;
        case 'command':
          for (const fn of this.#commandListeners) fn(e.command);
          break;
        case 'delivery':
          for (const fn of this.#deliveryListeners) fn(e.delivery);
          break;
        case 'device_config':
          for (const fn of this.#configListeners) fn(e.config);
          break;
        case 'project':
          for (const fn of this.#projectListeners) fn(e.project);
          break;
        case 'project_removed':
          for (const fn of this.#projectListeners) fn({ removed: e.name });
          break;
        case 'watch_folders':
          void this.watch.load().catch(() => undefined);
          break;
        case 'mdns_host':
          // A service heard over mDNS that did not tell its MAC: its own row, by `key`.
          this.devices.applyHost(e.host);
          devicesChanged = true;
          break;
        case 'hello': // (re)connected: anything may have happened while we were away
        case 'lagged': // the server dropped events for us
          reload = true;
          break;
      }
    }
    if (devicesChanged) {
      this.devices.commit();
      // Attempts moved: the tallies of the deployments on screen did too.
      this.deployments.noteActivity();
    }
    if (versionsChanged) this.firmware.markStale();
    if (reload) void this.reload();
    this.#notify(finished, failed);
  }

  /** Desktop only: one OS notification per batch for updates that finished or failed, so a
   *  person who looked away learns about it. Browsers have the table. */
  #notify(finished: string[], failed: string[]) {
    const native = this.backend.native;
    if (!native || (!finished.length && !failed.length)) return;
    const name = (mac: string) => this.devices.get(mac)?.name || mac;
    const list = (macs: string[]) => (macs.length <= 3 ? macs.map(name).join(', ') : `${macs.length} devices`);
    if (failed.length) void native.notify('Update failed', `${list(failed)}: see the device table for the reason.`);
    if (finished.length) void native.notify('Update done', `${list(finished)} now run${finished.length === 1 ? 's' : ''} the new image.`);
  }
}
