import { fireEvent, render, screen, within } from '@testing-library/svelte';
import { describe, expect, test, vi } from 'vitest';
import type { NewDeployment } from '../api/types';
import { BackendError } from '../backend/backend';
import { CANARY, MockBackend, firmware, group, member, plan, rollout, verdict } from '../backend/mock';
import DeployDialog from './DeployDialog.svelte';
import { DeploymentStore } from './deployments.svelte';

/** 42 to offer, 35 running it, 8 newer (offered with rollback), 3 of another project (offered with consent). */
function breakdown(d: NewDeployment) {
  const n = (prefix: string, count: number, v: Parameters<typeof verdict>[1], over = {}) =>
    Array.from({ length: count }, (_, i) => verdict(`${prefix}:${String(i).padStart(2, '0')}`, v, { reason: `why ${prefix}`, ...over }));
  const offer = n('OF', 42, { kind: 'offer' });
  const newer = n('NW', 8, { kind: 'newer_running', running: '3.0.0', target: '2.0.2' });
  const other = n('OP', 3, { kind: 'other_project', device: 'door', image: 'blink' }, { project: 'door' });
  const groups = [
    group('offer', [...offer, ...(d.rollback ? newer : []), ...(d.allow_other_project ? other : [])]),
    group('already_running', n('AR', 35, { kind: 'already_running' })),
    ...(d.rollback ? [] : [group('newer_running', newer)]),
    ...(d.allow_other_project ? [] : [group('other_project', other)]),
  ];
  return plan(groups, { rollback: !!d.rollback, allow_other_project: !!d.allow_other_project });
}

function setup(selected: string[] = []) {
  const b = new MockBackend();
  b.planFor = breakdown;
  const store = new DeploymentStore(b);
  const onclose = vi.fn();
  render(DeployDialog, { firmware: firmware(2), selected, store, onclose });
  return { b, store, onclose };
}

const groupText = (kind: string) => screen.getByTestId(`group-${kind}`).textContent?.replace(/\s+/g, ' ').trim();

describe('DeployDialog', () => {
  test('shows the dry run as a breakdown, and the button says how many will be offered', async () => {
    const { b } = setup();
    expect((await screen.findByTestId('reach')).textContent).toBe('88');
    expect(groupText('offer')).toBe('▸ 42 will be offered the image');
    expect(groupText('already_running')).toBe('▸ 35 already run it');
    expect(groupText('newer_running')).toBe('▸ 8 run a newer version — allow rollback');
    expect(groupText('other_project')).toBe('▸ 3 run another project — install on devices of another project');
    expect(screen.getByRole('button', { name: 'Deploy to 42 devices' })).toBeTruthy();
    expect(b.calls).toEqual(['plan {"firmware_id":2,"project":"blink","chip":"esp32","rollback":false,"allow_other_project":false}']);
  });

  test('a group opens to its devices with their reasons', async () => {
    setup();
    await screen.findByTestId('reach');
    await fireEvent.click(within(screen.getByTestId('group-newer_running')).getByRole('button'));
    const table = screen.getByRole('table', { name: /run a newer version/ });
    expect(within(table).getAllByRole('row')).toHaveLength(9);
    expect(within(table).getAllByText('why NW')).toHaveLength(8);
  });

  test('"allow rollback" plans again with rollback: true and offers the newer devices too', async () => {
    const { b, onclose } = setup();
    await screen.findByTestId('reach');
    await fireEvent.click(screen.getByLabelText('allow rollback'));
    await screen.findByRole('button', { name: 'Deploy to 50 devices' });
    expect(b.calls.at(-1)).toBe('plan {"firmware_id":2,"project":"blink","chip":"esp32","rollback":true,"allow_other_project":false}');
    // The newer group is gone; the option stays, ticked, so it can be turned off again.
    expect(screen.queryByTestId('group-newer_running')).toBeNull();
    expect((screen.getByLabelText('allow rollback') as HTMLInputElement).checked).toBe(true);
    await fireEvent.click(screen.getByRole('button', { name: 'Deploy to 50 devices' }));
    await vi.waitFor(() => expect(onclose).toHaveBeenCalled());
    expect(b.calls.at(-1)).toBe('deploy {"firmware_id":2,"project":"blink","chip":"esp32","rollback":true,"allow_other_project":false}');
  });

  test('"install on devices of another project" plans again with allow_other_project: true', async () => {
    const { b } = setup();
    await screen.findByTestId('reach');
    await fireEvent.click(screen.getByLabelText('install on devices of another project'));
    await screen.findByRole('button', { name: 'Deploy to 45 devices' });
    expect(b.calls.at(-1)).toContain('"allow_other_project":true');
  });

  test('Deploy is off when nothing would be offered, and says why', async () => {
    const b = new MockBackend();
    b.planFor = () => plan([group('already_running', [verdict('A1', { kind: 'already_running' })])]);
    render(DeployDialog, { firmware: firmware(2), selected: [], store: new DeploymentStore(b), onclose: () => {} });
    const button = (await screen.findByRole('button', { name: 'Deploy to 0 devices' })) as HTMLButtonElement;
    expect(button.disabled).toBe(true);
    expect(screen.getByTestId('nothing-offered').textContent).toContain('No device would be offered this image');
  });

  test('with devices ticked, plans exactly those', async () => {
    const { b } = setup(['A1', 'A2']);
    await screen.findByTestId('reach');
    expect(b.calls[0]).toBe('plan {"firmware_id":2,"devices":["A1","A2"],"rollback":false,"allow_other_project":false}');
  });

  test("the server's other_project refusal is a question, not an error; confirming deploys with consent", async () => {
    const b = new MockBackend();
    b.planFor = breakdown;
    b.createErrorFor = (d) => (d.allow_other_project ? null : new BackendError('other_project', '3 device(s) run another project than the image (blink): …', 409));
    const onclose = vi.fn();
    render(DeployDialog, { firmware: firmware(2), selected: [], store: new DeploymentStore(b), onclose });
    await fireEvent.click(await screen.findByRole('button', { name: 'Deploy to 42 devices' }));
    const question = await screen.findByRole('alertdialog', { name: 'Install on devices of another project?' });
    expect(question.textContent).toContain('3 device(s) run another project than the image (blink)');
    expect(screen.queryByRole('alert')).toBeNull();
    await fireEvent.click(within(question).getByRole('button', { name: 'Install on them too' }));
    await vi.waitFor(() => expect(onclose).toHaveBeenCalled());
    expect(b.calls.at(-1)).toBe('deploy {"firmware_id":2,"project":"blink","chip":"esp32","rollback":false,"allow_other_project":true}');
  });

  test('Canary: the dry run shows each wave with its devices, and warns when no device is tagged canary', async () => {
    const b = new MockBackend();
    const waits = ['A1', 'A2', 'A3'].map((m) => verdict(m, { kind: 'waiting_for_wave', wave: 2, current: 1 }));
    b.planFor = (d) => (d.preset === 'canary'
      ? plan([group('waiting_for_wave', waits)], {
        rollout: rollout([[], [member('A1', { name: 'bench-01' })], [member('A2')], [member('A3', { state: 'skipped', reason: 'another chip' })]]),
      })
      : plan([group('offer', waits.map((v) => ({ ...v, verdict: { kind: 'offer' as const } })))]));
    render(DeployDialog, { firmware: firmware(2), selected: [], store: new DeploymentStore(b), onclose: vi.fn() });
    await screen.findByRole('button', { name: 'Deploy to 3 devices' });
    expect(screen.queryByRole('list', { name: 'Waves of the rollout' })).toBeNull();
    await fireEvent.click(screen.getByRole('radio', { name: 'Canary' }));
    const waves = await screen.findByRole('list', { name: 'Waves of the rollout' });
    const wave = (n: number) => within(waves).getByRole('listitem', { name: new RegExp(`^Wave ${n}:`) });
    expect(wave(1).textContent).toContain('No device is tagged canary: the first wave is empty and starts the next at once.');
    expect(within(wave(2)).getByRole('listitem', { name: 'bench-01' }).textContent).toContain('A1');
    expect(within(wave(4)).getByRole('listitem', { name: 'A3: skipped' }).getAttribute('title')).toContain('another chip');
    expect(wave(4).textContent).toContain('the rest');
    // Devices waiting for their wave get the image too: Deploy counts them.
    expect(screen.getByRole('button', { name: 'Deploy to 3 devices in 4 waves' })).toBeTruthy();
    expect(b.calls.at(-1)).toContain('"preset":"canary"');
    expect(screen.getByTestId('rollout-hint').textContent).toContain('pauses by itself when more than 10 % failed');
  });

  test('Custom: rows are added and removed, and each change plans again with the edited plan', async () => {
    const b = new MockBackend();
    b.planFor = (d) => plan([group('offer', [verdict('A1', { kind: 'offer' })])], d.plan ? { rollout: rollout(d.plan.waves.map(() => []), {}, d.plan) } : {});
    render(DeployDialog, { firmware: firmware(2), selected: [], store: new DeploymentStore(b), onclose: vi.fn() });
    await screen.findByRole('button', { name: 'Deploy to 1 device' });
    await fireEvent.click(screen.getByRole('radio', { name: 'Custom' }));
    const rows = () => within(screen.getByRole('table', { name: 'Waves of the custom plan' })).getAllByRole('row');
    expect(rows()).toHaveLength(4);
    await fireEvent.click(screen.getByRole('button', { name: '+ Add wave' }));
    await fireEvent.click(screen.getByRole('button', { name: 'Remove wave 1' }));
    expect(rows()).toHaveLength(4);
    await fireEvent.input(screen.getByLabelText('Max at once'), { target: { value: '2' } });
    await fireEvent.change(screen.getByLabelText('Max at once'));
    await vi.waitFor(() => expect(JSON.parse(b.calls.at(-1)!.replace(/^plan /, '')).plan).toMatchObject({
      waves: [{ by: 'percent', percent: 10 }, { by: 'percent', percent: 50 }, { by: 'percent', percent: 75 }, { by: 'percent', percent: 100 }],
      max_parallel: 2,
    }));
    expect(await screen.findByRole('button', { name: 'Deploy to 1 device in 4 waves' })).toBeTruthy();
  });

  test('the dry run names the live deployments that share devices with it: those devices follow the newest', async () => {
    const b = new MockBackend();
    b.planFor = (d) => ({ ...breakdown(d), overlaps: [{ deployment_id: 7, rollout: true, devices: 12 }, { deployment_id: 5, rollout: false, devices: 1 }] });
    render(DeployDialog, { firmware: firmware(2), selected: [], store: new DeploymentStore(b), onclose: vi.fn() });
    await screen.findByTestId('reach');
    const lines = screen.getAllByTestId('overlap').map((p) => p.textContent?.replace(/\s+/g, ' ').trim());
    expect(lines).toEqual([
      'Rollout 7 also covers 12 of these devices: they follow this one, the newest; its other devices stay with it.',
      'Deployment 5 also covers 1 of these devices: it follows this one, the newest; its other devices stay with it.',
    ]);
  });
});
