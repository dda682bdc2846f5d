import { describe, expect, test } from 'vitest';
import type { NewDeployment } from '../api/types';
import { BackendError } from '../backend/backend';
import { MockBackend, firmware, group, plan, verdict } from '../backend/mock';
import { DeployFlow, requestFor } from './deploy.svelte';
import { DeploymentStore } from './deployments.svelte';

/** A fleet of 2 devices on 1.0.0, 3 on 3.0.0 and 1 of another project, planned as the server would. */
function fleetPlan(d: NewDeployment) {
  const all = [
    ...[1, 2].map((i) => verdict(`A${i}`, { kind: 'offer' })),
    ...[3, 4, 5].map((i) => verdict(`A${i}`, d.rollback ? { kind: 'offer' } : { kind: 'newer_running', running: '3.0.0', target: '2.0.3' })),
    verdict('B1', d.allow_other_project ? { kind: 'offer' } : { kind: 'other_project', device: 'door', image: 'blink' }, { project: 'door' }),
  ];
  const kinds = [...new Set(all.map((v) => v.verdict.kind))];
  const groups = kinds.map((k) => group(k, all.filter((v) => v.verdict.kind === k)));
  return plan(groups, { rollback: !!d.rollback, allow_other_project: !!d.allow_other_project });
}

describe('DeployFlow', () => {
  test('plans the request it will then send, with both options off by default', async () => {
    const b = new MockBackend();
    b.planFor = fleetPlan;
    const flow = new DeployFlow(new DeploymentStore(b), firmware(3, { project: 'blink', chip: 'esp32s3' }), []);
    await flow.replan();
    expect(flow.plan?.groups.map((g) => [g.kind, g.count])).toEqual([['offer', 2], ['newer_running', 3], ['other_project', 1]]);
    expect(flow.canDeploy).toBe(true);
    const d = await flow.deploy();
    expect(d?.id).toBe(7);
    expect(b.calls).toEqual([
      'plan {"firmware_id":3,"project":"blink","chip":"esp32s3","rollback":false,"allow_other_project":false}',
      'deploy {"firmware_id":3,"project":"blink","chip":"esp32s3","rollback":false,"allow_other_project":false}',
    ]);
  });

  test('allowing a rollback plans again with rollback: true, and the newer devices are offered', async () => {
    const b = new MockBackend();
    b.planFor = fleetPlan;
    const flow = new DeployFlow(new DeploymentStore(b), firmware(3), ['A1', 'A3']);
    await flow.replan();
    await flow.setOption('rollback', true);
    expect(JSON.parse(b.calls.at(-1)!.replace(/^plan /, ''))).toEqual({ firmware_id: 3, devices: ['A1', 'A3'], rollback: true, allow_other_project: false });
    expect(flow.plan?.offered).toBe(5);
  });

  test('nothing to offer: Deploy is off', async () => {
    const b = new MockBackend();
    b.planFor = () => plan([group('already_running', [verdict('A1', { kind: 'already_running' })])]);
    const flow = new DeployFlow(new DeploymentStore(b), firmware(1), []);
    await flow.replan();
    expect(flow.plan?.offered).toBe(0);
    expect(flow.canDeploy).toBe(false);
    expect(await flow.deploy()).toBeNull();
    expect(b.calls.filter((c) => c.startsWith('deploy'))).toEqual([]);
  });

  test('a 409 other_project becomes a question; consenting plans and deploys with allow_other_project', async () => {
    const b = new MockBackend();
    b.planFor = fleetPlan;
    b.createErrorFor = (d) => (d.allow_other_project ? null : new BackendError('other_project', '1 device(s) run another project than the image (blink): B1 (door)', 409));
    const store = new DeploymentStore(b);
    const flow = new DeployFlow(store, firmware(3), ['A1', 'B1']);
    await flow.replan();
    expect(await flow.deploy()).toBeNull();
    expect(flow.phase).toBe('consent');
    expect(flow.error).toBeNull();
    expect(flow.consent?.message).toContain('B1 (door)');
    const d = await flow.consentOther();
    expect(d?.allow_other_project).toBe(true);
    expect(store.last?.deployment.id).toBe(7);
    expect(b.calls.at(-1)).toBe('deploy {"firmware_id":3,"devices":["A1","B1"],"rollback":false,"allow_other_project":true}');
  });

  test("another project's devices can be left out of a list of devices instead", async () => {
    const b = new MockBackend();
    b.planFor = fleetPlan;
    b.createErrorFor = (d) => (d.devices?.includes('B1') && !d.allow_other_project ? new BackendError('other_project', 'B1 runs door', 409) : null);
    const flow = new DeployFlow(new DeploymentStore(b), firmware(3), ['A1', 'B1']);
    await flow.replan();
    await flow.deploy();
    expect(flow.canLeaveOut).toBe(true);
    await flow.leaveOthersOut();
    expect(flow.macs).toEqual(['A1']);
    expect(flow.consent).toBeNull();
    expect(await flow.deploy()).not.toBeNull();
  });

  test('other refusals stay errors, shown verbatim', async () => {
    const b = new MockBackend();
    b.createErrorFor = () => new BackendError('unknown_firmware', 'there is no firmware 3 in the library', 422);
    const flow = new DeployFlow(new DeploymentStore(b), firmware(3), []);
    await flow.replan();
    await flow.deploy();
    expect([flow.phase, flow.error?.message, flow.consent]).toEqual(['failed', 'there is no firmware 3 in the library', null]);
  });

  test('a slower answer to an older choice does not replace the newer plan', async () => {
    const b = new MockBackend();
    const answers: ((v: unknown) => void)[] = [];
    b.planDeployment = (d) => new Promise((r) => answers.push(() => r(plan([], { rollback: !!d.rollback }))));
    const flow = new DeployFlow(new DeploymentStore(b), firmware(1), []);
    const first = flow.replan();
    const second = flow.setOption('rollback', true);
    answers[1](null);
    await second;
    answers[0](null);
    await first;
    expect(flow.plan?.rollback).toBe(true);
  });

  test('selected devices are sent as a list', () => {
    expect(requestFor(firmware(1), { kind: 'devices', macs: ['A', 'B'] })).toEqual({ firmware_id: 1, devices: ['A', 'B'], rollback: false, allow_other_project: false });
  });
});
