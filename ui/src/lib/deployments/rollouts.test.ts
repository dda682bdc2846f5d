import { describe, expect, test, vi } from 'vitest';
import type { NewDeployment } from '../api/types';
import { CANARY, MockBackend, deployment, firmware, group, member, plan, rollout, verdict } from '../backend/mock';
import { DeployFlow } from './deploy.svelte';
import { DeploymentStore } from './deployments.svelte';
import { CUSTOM_START, MAX_WAVES, RolloutDraft } from './draft.svelte';
import { duration, emptyWaveNote, planPhrases, rolloutFields, sentence } from './rollouts';

const ONE_AT_A_TIME = { ...CANARY, waves: [{ by: 'percent' as const, percent: 100 }], max_parallel: 1 };

/** Five devices; with a plan, the first (tagged canary, when `tagged`) is offered and the rest
 *  wait for their wave, as the server answers. */
function rolloutPlan(tagged: boolean) {
  return (d: NewDeployment) => {
    const macs = ['A1', 'A2', 'A3', 'A4', 'A5'];
    if (!d.preset && !d.plan) return plan([group('offer', macs.map((m) => verdict(m, { kind: 'offer' })))]);
    const p = d.plan ?? (d.preset === 'one_at_a_time' ? ONE_AT_A_TIME : CANARY);
    const first = tagged ? [member('A1', { state: 'updating' })] : [];
    const rest = (tagged ? macs.slice(1) : macs).map((m) => member(m));
    const waves = p.waves.length === 1 ? [[...first, ...rest]] : [first, rest.slice(0, 1), rest.slice(1, 2), rest.slice(2)];
    const waiting = rest.map((m) => verdict(m.mac, { kind: 'waiting_for_wave', wave: 2, current: 1 }));
    return plan([
      ...(waiting.length ? [group('waiting_for_wave', waiting)] : []),
      ...(first.length ? [group('offer', first.map((m) => verdict(m.mac, { kind: 'offer' })))] : []),
    ], { rollout: rollout(waves, {}, p) });
  };
}

describe('rollout words', () => {
  test('all at once sends no plan (a deployment as before), presets go by name, custom sends the plan', () => {
    expect(rolloutFields('all_at_once', () => CANARY)).toEqual({});
    expect(rolloutFields('canary', () => CANARY)).toEqual({ preset: 'canary' });
    expect(rolloutFields('one_at_a_time', () => CANARY)).toEqual({ preset: 'one_at_a_time' });
    expect(rolloutFields('custom', () => CANARY)).toEqual({ plan: CANARY });
  });

  test('a plan in phrases', () => {
    expect(sentence(planPhrases(CANARY))).toBe(
      'Each device must stay healthy for 1 min; the next wave starts when 100 % of a wave succeeded; pauses by itself when more than 10 % failed.');
    expect(planPhrases({ waves: [{ by: 'percent', percent: 100 }], soak_s: 0, error_limit: { devices: 2, percent: null }, max_parallel: 1, pause_after_wave: true, offline_limit_s: 300 }))
      .toEqual(['no soak time', 'pauses by itself when more than 2 devices failed', 'at most 1 updating at once', 'waits for your approval after each wave',
        'silent for more than 5 min while soaking counts as failed']);
    expect(planPhrases({ waves: [{ by: 'count', count: 1 }, { by: 'percent', percent: 100 }], error_limit: { devices: null, percent: null } }))
      .toContain('never pauses by itself');
    expect([duration(45), duration(300), duration(5400), duration(7200), duration(61)]).toEqual(['45 s', '5 min', '1 h 30 min', '2 h', '61 s']);
  });

  test('an empty tag wave warns (a forgotten tag); other empty waves just say so', () => {
    const r = rollout([[], [], [member('A1')], []]);
    expect(emptyWaveNote(r.waves[0], CANARY, 4)).toEqual({ tone: 'warn', text: 'No device is tagged canary: the first wave is empty and starts the next at once.' });
    expect(emptyWaveNote(r.waves[1], CANARY, 4)).toEqual({ tone: 'muted', text: 'Empty: the next wave starts at once.' });
    expect(emptyWaveNote(r.waves[2], CANARY, 4)).toBeNull();
    expect(emptyWaveNote(r.waves[3], CANARY, 4)?.text).toBe('Empty: no device is left for it.');
  });
});

describe('RolloutDraft', () => {
  test('loads a plan, adds a wave before the last one halfway between the shares, removes down to one', () => {
    const d = new RolloutDraft(CANARY);
    expect(d.plan()).toEqual({ ...CANARY });
    d.add();
    expect(d.plan().waves).toEqual([{ by: 'tag', tag: 'canary' }, { by: 'percent', percent: 10 }, { by: 'percent', percent: 50 },
      { by: 'percent', percent: 75 }, { by: 'percent', percent: 100 }]);
    for (const w of [...d.waves]) d.remove(w.id);
    expect(d.waves).toHaveLength(1);
    expect(d.canRemove).toBe(false);
    d.waves[0].percent = 99;
    d.add();
    expect(d.plan().waves).toEqual([{ by: 'percent', percent: 50 }, { by: 'percent', percent: 99 }]);
    d.remove(d.waves[0].id);
    d.waves[0].percent = 1;
    d.add(); // no share fits below 1 %: one device
    expect(d.plan().waves).toEqual([{ by: 'count', count: 1 }, { by: 'percent', percent: 1 }]);
    while (d.canAdd) d.add();
    expect(d.waves).toHaveLength(MAX_WAVES);
  });

  test('a row keeps each kind\'s value; empty fields go to the server as it should judge them', () => {
    const d = new RolloutDraft(CUSTOM_START);
    d.waves[0].by = 'count';
    d.waves[0].count = null;
    d.soak_s = null;
    d.error_percent = null;
    d.max_parallel = 4;
    const p = d.plan();
    expect(p.waves[0]).toEqual({ by: 'count', count: 0 });
    expect('soak_s' in p).toBe(false);
    expect(p.error_limit).toEqual({ devices: null, percent: null });
    expect(p.max_parallel).toBe(4);
    d.waves[0].by = 'tag';
    expect(d.plan().waves[0]).toEqual({ by: 'tag', tag: 'canary' });
  });
});

describe('DeployFlow with a rollout', () => {
  test('Canary plans with the preset; devices waiting for their wave count for Deploy', async () => {
    const b = new MockBackend();
    b.planFor = rolloutPlan(false);
    const flow = new DeployFlow(new DeploymentStore(b), firmware(3), []);
    await flow.replan();
    expect(flow.willGet).toBe(5);
    await flow.setRollout('canary');
    expect(JSON.parse(b.calls.at(-1)!.replace(/^plan /, ''))).toMatchObject({ preset: 'canary' });
    expect(flow.plan?.offered).toBe(0);
    expect(flow.willGet).toBe(5);
    expect(flow.canDeploy).toBe(true);
    const d = await flow.deploy();
    expect(d).not.toBeNull();
    expect(b.calls.at(-1)).toBe('deploy {"firmware_id":3,"project":"blink","chip":"esp32","rollback":false,"allow_other_project":false,"preset":"canary"}');
  });

  test('Custom starts from the preset on screen and sends its plan', async () => {
    const b = new MockBackend();
    b.planFor = rolloutPlan(true);
    const flow = new DeployFlow(new DeploymentStore(b), firmware(3), []);
    await flow.setRollout('one_at_a_time');
    await flow.setRollout('custom');
    expect(flow.draft.max_parallel).toBe(1);
    expect(flow.draft.waves.map((w) => w.by)).toEqual(['percent']);
    flow.draft.soak_s = 300;
    await flow.replan();
    const sent = JSON.parse(b.calls.at(-1)!.replace(/^plan /, ''));
    expect(sent.preset).toBeUndefined();
    expect(sent.plan).toMatchObject({ waves: [{ by: 'percent', percent: 100 }], soak_s: 300, max_parallel: 1 });
    // From All at once (no plan on screen) it starts from the canary shape.
    const fresh = new DeployFlow(new DeploymentStore(b), firmware(3), []);
    await fresh.replan();
    await fresh.setRollout('custom');
    expect(fresh.draft.plan()).toEqual(CUSTOM_START);
  });
});

describe('DeploymentStore and rollouts', () => {
  test('a followed rollout keeps its detail current; pause and resume answer with the deployment', async () => {
    const b = new MockBackend();
    b.deployments = [deployment(4, { plan: CANARY })];
    b.details.set(4, { deployment: b.deployments[0], devices: [], rollout: rollout([[member('A1', { state: 'updating' })], [member('A2')], [], []]) });
    const store = new DeploymentStore(b);
    await store.load();
    const release = store.follow(4);
    await vi.waitFor(() => expect(store.details[4]?.rollout?.waves).toHaveLength(4));
    b.calls = [];
    await store.pause(4, '  flaky sensor  ');
    expect(b.calls[0]).toBe('pause 4 "flaky sensor"');
    expect(store.byId(4)?.status).toBe('paused');
    expect(b.calls).toContain('getDeployment 4');
    const r = await store.resume(4, true);
    expect(r.opened).toHaveLength(1);
    expect(store.byId(4)?.status).toBe('active');
    release();
    b.calls = [];
    await store.refresh();
    expect(b.calls).toEqual(['listDeployments']);
    await store.pause(4, '');
    expect(b.calls).toEqual(['listDeployments', 'pause 4 null']);
  });
});
