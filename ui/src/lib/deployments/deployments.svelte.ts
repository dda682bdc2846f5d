// Deployments as the UI sees them: the list (newest first, each with its tally), the device
// lists of the rows someone opened, and the actions on one deployment (stop, retry its failed
// devices). A deployment's tally moves with every device's attempt, but the server publishes a
// `deployment` event only when one is created, stopped or changes status; so while a page shows
// deployments (`watch()`), device activity refreshes them, at most once per `delay`.
import { SvelteSet } from 'svelte/reactivity';
import type { Deployment, DeploymentDetail, Update } from '../api/types';
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
    if (this.open.has(d.id)) void this.loadDetail(d.id).catch(() => undefined);
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

  /** Re-read the list and every opened device list. */
  async refresh() {
    await Promise.all([this.load(), ...[...this.open].map((id) => this.loadDetail(id))]);
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

  /** A new attempt for each of its devices at the attempt limit. */
  async retry(id: number): Promise<Update[]> {
    const opened = await this.backend.retryDeployment(id);
    await Promise.all([this.load(), this.open.has(id) ? this.loadDetail(id) : undefined]);
    return opened;
  }
}
