// Deployments as the UI sees them: the list (newest first, each with its tally), the device
// lists of the rows someone opened, and the actions on one deployment (stop, retry its failed
// devices). A deployment's tally moves with every device's attempt, but the server publishes a
// `deployment` event only when one is created, stopped or changes status; so while a page shows
// deployments (`watch()`), device activity refreshes them, at most once per `delay`. A rollout
// on screen is followed (`follow()`): its detail (waves and members) is kept loaded and reloaded
// with every `deployment` event (a pause, a wave started, outcomes decided) and every refresh.
import { SvelteSet } from 'svelte/reactivity';
import type { Deployment, DeploymentDetail, Resumed, RolledBack, Update } from '../api/types';
import type { Backend } from '../backend/backend';
import { targets } from './verdicts';

/** The confirmation line after a deployment is created. */
export type Created = { deployment: Deployment; offered: number };

export class DeploymentStore {
  items = $state.raw<Deployment[]>([]);
  loaded = $state(false);
  /** Device lists of the deployments opened on the page, by id. */
  details = $state.raw<Record<number, DeploymentDetail>>({});
  open = new SvelteSet<number>();
  /** Bumped on every change to any deployment, for views that depend on deployments without
   *  listing them (a device's current target). */
  rev = $state(0);
  last = $state<Created | null>(null);
  #watchers = 0;
  /** Rollouts on screen, by id, with how many views follow each. */
  #followed = new Map<number, number>();
  #timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    readonly backend: Backend,
    private readonly delay = 1000,
  ) {}

  async load() {
    this.items = await this.backend.listDeployments();
    this.loaded = true;
    this.rev++;
  }

  byId(id: number): Deployment | undefined {
    return this.items.find((d) => d.id === id);
  }

  /** A deployment from an event or an action's answer. */
  apply(d: Deployment) {
    const i = this.items.findIndex((x) => x.id === d.id);
    this.items = i >= 0 ? this.items.with(i, d) : [d, ...this.items].sort((a, b) => b.id - a.id);
    this.rev++;
    if (this.#wanted(d.id)) void this.loadDetail(d.id).catch(() => undefined);
  }

  /** Its detail is on screen: its device list is open, or its rollout is followed. */
  #wanted(id: number): boolean {
    return this.open.has(id) || this.#followed.has(id);
  }

  /** A view shows this rollout's waves: load its detail now and keep it current until the
   *  returned release is called. */
  follow(id: number): () => void {
    const n = this.#followed.get(id) ?? 0;
    this.#followed.set(id, n + 1);
    if (n === 0 && !this.open.has(id)) void this.loadDetail(id).catch(() => undefined);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#followed.get(id) ?? 1) - 1;
      if (left > 0) this.#followed.set(id, left);
      else this.#followed.delete(id);
    };
  }

  /** Deployments that still target devices with this image (its delete is refused then). */
  targeting(firmwareId: number): Deployment[] {
    return this.items.filter((d) => targets(d) && d.firmware_id === firmwareId);
  }

  created(deployment: Deployment, offered: number) {
    this.apply(deployment);
    this.last = { deployment, offered };
  }

  /** A page shows deployments: follow device activity until the returned release is called. */
  watch(): () => void {
    this.#watchers++;
    return () => {
      this.#watchers--;
    };
  }

  /** Some device's attempt moved (a live `update` or `device` event). */
  noteActivity() {
    if (this.#watchers === 0 || this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.refresh().catch(() => undefined);
    }, this.delay);
  }

  /** Re-read the list, every opened device list and every followed rollout. */
  async refresh() {
    const ids = new Set([...this.open, ...this.#followed.keys()]);
    await Promise.all([this.load(), ...[...ids].map((id) => this.loadDetail(id))]);
  }

  async loadDetail(id: number) {
    const d = await this.backend.getDeployment(id);
    this.details = { ...this.details, [id]: d };
    const i = this.items.findIndex((x) => x.id === id);
    if (i >= 0) this.items = this.items.with(i, d.deployment);
  }

  async toggle(id: number) {
    if (this.open.has(id)) {
      this.open.delete(id);
      return;
    }
    this.open.add(id);
    await this.loadDetail(id);
  }

  /** Stop this deployment only: its devices are no longer offered its image. */
  async stop(id: number): Promise<Deployment> {
    const d = await this.backend.stopDeployment(id);
    this.apply(d);
    return d;
  }

  /** Pause this rollout by hand; `reason` (optional) is shown wherever it is. */
  async pause(id: number, reason: string | null): Promise<Deployment> {
    const d = await this.backend.pauseDeployment(id, reason?.trim() || null);
    this.apply(d);
    return d;
  }

  /** Resume it; with `retry`, its failed devices count afresh and get a new attempt. */
  async resume(id: number, retry: boolean): Promise<Resumed> {
    const r = await this.backend.resumeDeployment(id, retry);
    this.apply(r.deployment);
    return r;
  }

  /** Roll it back (stopped; each device it updated offered its earlier image); the list is
   *  read again, with the new rollback deployments. */
  async rollback(id: number): Promise<RolledBack> {
    const r = await this.backend.rollbackDeployment(id);
    this.apply(r.stopped);
    await this.load();
    return r;
  }

  /** A new attempt for each of its devices at the attempt limit. */
  async retry(id: number): Promise<Update[]> {
    const opened = await this.backend.retryDeployment(id);
    await Promise.all([this.load(), this.open.has(id) ? this.loadDetail(id) : undefined]);
    return opened;
  }
}
