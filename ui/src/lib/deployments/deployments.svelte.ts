// Deployments, and the two-step "deploy" flow: a dry run tells how many devices the deployment
// will reach, the person confirms, then it is created for real with the same request.
import type { Deployment, Firmware, NewDeployment } from '../api/types';
import type { Backend } from '../backend/backend';
import { errorOf } from '../firmware/firmware.svelte';

export type DeployTarget = { kind: 'project' } | { kind: 'devices'; macs: string[] };

export type Plan = {
  firmware: Firmware;
  target: DeployTarget;
  request: NewDeployment;
  state: 'counting' | 'ready' | 'deploying' | 'failed';
  reach?: number;
  error?: { code: string; message: string };
};

export function requestFor(fw: Firmware, target: DeployTarget): NewDeployment {
  return target.kind === 'devices'
    ? { firmware_id: fw.id, devices: target.macs }
    : { firmware_id: fw.id, project: fw.project ?? null, chip: fw.chip };
}

export class DeploymentStore {
  items = $state.raw<Deployment[]>([]);
  plan = $state<Plan | null>(null);
  /** The last deployment created, for a short confirmation line. */
  last = $state<Deployment | null>(null);
  #seq = 0;

  constructor(private readonly backend: Backend) {}

  async load() {
    this.items = await this.backend.listDeployments();
  }

  apply(d: Deployment) {
    const i = this.items.findIndex((x) => x.id === d.id);
    this.items = i >= 0 ? this.items.with(i, d) : [d, ...this.items];
  }

  /** Active deployments that use an image (the library shows them; delete is refused then). */
  activeFor(firmwareId: number): Deployment[] {
    return this.items.filter((d) => d.active && d.firmware_id === firmwareId);
  }

  /** Start the flow: ask the server (dry run) how many devices this would reach. */
  async prepare(firmware: Firmware, target: DeployTarget) {
    const seq = ++this.#seq; // a newer choice wins over a slower older answer
    const request = requestFor(firmware, target);
    this.plan = { firmware, target, request, state: 'counting' };
    try {
      const dry = await this.backend.createDeployment({ ...request, dry_run: true });
      if (seq === this.#seq) this.plan = { ...this.plan!, state: 'ready', reach: dry.reach };
    } catch (e) {
      if (seq === this.#seq) this.plan = { ...this.plan!, state: 'failed', error: errorOf(e) };
    }
  }

  async confirm(): Promise<Deployment | null> {
    const plan = this.plan;
    if (!plan || plan.state !== 'ready') return null;
    this.plan = { ...plan, state: 'deploying' };
    try {
      const d = await this.backend.createDeployment(plan.request);
      this.apply(d);
      this.last = d;
      this.plan = null;
      return d;
    } catch (e) {
      this.plan = { ...plan, state: 'failed', error: errorOf(e) };
      return null;
    }
  }

  cancel() {
    this.#seq++;
    this.plan = null;
  }

  async stop(id: number) {
    this.apply(await this.backend.stopDeployment(id));
  }
}
