// The deploy dialog's logic, apart from its markup: choose the devices, read the server's dry run
// (what every device would get and why), allow a rollback or another project's devices when the
// person says so (each a new dry run), then create the deployment with the same request. A
// refusal for another project's devices (409 `other_project`) becomes a question, not an error.
import type { Deployment, Firmware, NewDeployment, Plan, VerdictGroup } from '../api/types';
import { errorOf } from '../firmware/firmware.svelte';
import type { DeploymentStore } from './deployments.svelte';
import { VERDICTS } from './verdicts';

export type DeployTarget = { kind: 'project' } | { kind: 'devices'; macs: string[] };
export type PlanOption = 'rollback' | 'allow_other_project';
export type Phase = 'planning' | 'ready' | 'deploying' | 'consent' | 'failed';
type ErrorInfo = { code: string; message: string };

export function requestFor(fw: Firmware, target: DeployTarget, rollback = false, allowOther = false): NewDeployment {
  const base = target.kind === 'devices'
    ? { firmware_id: fw.id, devices: target.macs }
    : { firmware_id: fw.id, project: fw.project ?? null, chip: fw.chip };
  return { ...base, rollback, allow_other_project: allowOther };
}

/** The group a plan option would move into "will be offered", if the plan has one. */
export function groupFor(plan: Plan | null, option: PlanOption): VerdictGroup | undefined {
  return plan?.groups.find((g) => VERDICTS[g.kind].option === option);
}

export class DeployFlow {
  kind = $state<DeployTarget['kind']>('project');
  /** Ticked in the table; "leave them out" removes another project's devices. */
  macs = $state<string[]>([]);
  rollback = $state(false);
  allowOther = $state(false);
  phase = $state<Phase>('planning');
  plan = $state.raw<Plan | null>(null);
  error = $state<ErrorInfo | null>(null);
  /** The server's `other_project` refusal, shown as a question with its message. */
  consent = $state<ErrorInfo | null>(null);
  #seq = 0;

  constructor(
    private readonly store: DeploymentStore,
    readonly firmware: Firmware,
    selected: string[],
  ) {
    this.macs = [...selected];
    this.kind = selected.length ? 'devices' : 'project';
  }

  get target(): DeployTarget {
    return this.kind === 'devices' ? { kind: 'devices', macs: this.macs } : { kind: 'project' };
  }

  request(): NewDeployment {
    return requestFor(this.firmware, this.target, this.rollback, this.allowOther);
  }

  /** Deploy is possible once the plan for the current choices is in and offers the image to someone. */
  get canDeploy(): boolean {
    return this.phase === 'ready' && !!this.plan && this.plan.offered > 0;
  }

  /** Ask the server again; a newer choice wins over a slower answer to an older one. */
  async replan() {
    const seq = ++this.#seq;
    this.phase = 'planning';
    this.error = null;
    this.consent = null;
    try {
      const plan = await this.store.backend.planDeployment(this.request());
      if (seq !== this.#seq) return;
      this.plan = plan;
      this.phase = 'ready';
    } catch (e) {
      if (seq !== this.#seq) return;
      this.plan = null;
      this.error = errorOf(e);
      this.phase = 'failed';
    }
  }

  setKind(kind: DeployTarget['kind']) {
    this.kind = kind;
    return this.replan();
  }

  setOption(option: PlanOption, on: boolean) {
    if (option === 'rollback') this.rollback = on;
    else this.allowOther = on;
    return this.replan();
  }

  async deploy(): Promise<Deployment | null> {
    if (!this.canDeploy) return null;
    const offered = this.plan!.offered;
    this.phase = 'deploying';
    try {
      const d = await this.store.backend.createDeployment(this.request());
      this.store.created(d, offered);
      return d;
    } catch (e) {
      const err = errorOf(e);
      if (err.code === 'other_project') {
        this.consent = err;
        this.phase = 'consent';
      } else {
        this.error = err;
        this.phase = 'failed';
      }
      return null;
    }
  }

  /** "Install on them too": the person confirmed; plan again with consent (so the count is
   *  right), then deploy. */
  async consentOther(): Promise<Deployment | null> {
    this.allowOther = true;
    await this.replan();
    return this.deploy();
  }

  /** Another project's devices can be left out of an explicit list (not out of a project). */
  get canLeaveOut(): boolean {
    const others = groupFor(this.plan, 'allow_other_project');
    return this.kind === 'devices' && !!others && others.count < this.macs.length;
  }

  leaveOthersOut() {
    const others = new Set(groupFor(this.plan, 'allow_other_project')?.devices.map((d) => d.mac));
    this.macs = this.macs.filter((m) => !others.has(m));
    return this.replan();
  }

  /** Back from the question to the plan, nothing created. */
  decline() {
    this.consent = null;
    this.phase = this.plan ? 'ready' : 'failed';
  }
}
