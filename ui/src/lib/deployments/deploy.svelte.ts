// The deploy dialog's logic, apart from its markup: choose the devices, read the server's dry run
// (what every device would get and why), allow a rollback or another project's devices when the
// person says so (each a new dry run), then create the deployment with the same request. A
// refusal for another project's devices (409 `other_project`) becomes a question, not an error.
// A rollout choice (a preset, or a custom plan) plans again too: the dry run then places every
// device in its wave exactly as the rollout will.
import type { Deployment, Firmware, NewDeployment, Plan, VerdictGroup } from '../api/types';
import { errorOf } from '../firmware/firmware.svelte';
import type { DeploymentStore } from './deployments.svelte';
import { CUSTOM_START, RolloutDraft } from './draft.svelte';
import { rolloutFields, type RolloutChoice } from './rollouts';
import { VERDICTS } from './verdicts';

export type DeployTarget = { kind: 'project' } | { kind: 'devices'; macs: string[] };
export type PlanOption = 'rollback' | 'allow_other_project';
export type Phase = 'planning' | 'ready' | 'deploying' | 'consent' | 'failed';
type ErrorInfo = { code: string; message: string };

export function requestFor(
  fw: Firmware, target: DeployTarget, rollback = false, allowOther = false, rollout: Pick<NewDeployment, 'preset' | 'plan'> = {},
): NewDeployment {
  const base = target.kind === 'devices'
    ? { firmware_id: fw.id, devices: target.macs }
    : { firmware_id: fw.id, project: fw.project ?? null, chip: fw.chip };
  return { ...base, rollback, allow_other_project: allowOther, ...rollout };
}

/** Devices the deployment gives the image to: now, or when their wave starts, the rollout is
 *  resumed or a slot frees up. */
export function willGet(plan: Plan | null): number {
  return plan?.groups.filter((g) => VERDICTS[g.kind].offers).reduce((n, g) => n + g.count, 0) ?? 0;
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
  rollout = $state<RolloutChoice>('all_at_once');
  /** The custom plan being edited; sent only while `rollout` is `custom`. */
  readonly draft = new RolloutDraft();
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
    return requestFor(this.firmware, this.target, this.rollback, this.allowOther, rolloutFields(this.rollout, () => this.draft.plan()));
  }

  /** How many devices get the image, at once or wave by wave. */
  get willGet(): number {
    return willGet(this.plan);
  }

  /** Deploy is possible once the plan for the current choices is in and gives the image to someone. */
  get canDeploy(): boolean {
    return this.phase === 'ready' && this.willGet > 0;
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

  /** Choose how the image rolls out. Custom starts from the plan on screen (a preset's, as the
   *  server answered it), so "canary, but soak 5 min" is one change away. */
  setRollout(choice: RolloutChoice) {
    if (choice === 'custom' && this.rollout !== 'custom') this.draft.load(this.plan?.rollout?.plan ?? CUSTOM_START);
    this.rollout = choice;
    return this.replan();
  }

  async deploy(): Promise<Deployment | null> {
    if (!this.canDeploy) return null;
    const offered = this.willGet;
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
