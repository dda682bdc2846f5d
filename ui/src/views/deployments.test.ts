import { fireEvent, render, screen, within } from '@testing-library/svelte';
import { describe, expect, test, vi } from 'vitest';
import { CANARY, MockBackend, deployment, firmware, member, rollout, update, verdict } from '../lib/backend/mock';
import { Fleet } from '../lib/fleet.svelte';
import DeploymentsView from './DeploymentsView.svelte';

const tally = (t: Partial<Record<'done' | 'in_progress' | 'waiting' | 'failed' | 'held' | 'superseded', number>>) => ({
  done: 0, in_progress: 0, waiting: 0, failed: 0, held: 0, superseded: 0, ...t,
});

async function page() {
  const b = new MockBackend();
  b.firmwareList = [firmware(5, { project: 'blink', version: '1.1.0' })];
  b.deployments = [
    deployment(2, { firmware_id: 5, reach: 10, tally: tally({ done: 6, in_progress: 1, waiting: 1, failed: 1, held: 1 }) }),
    deployment(1, { firmware_id: 5, status: 'completed', reach: 4, tally: tally({ done: 4 }), ended_at: '2026-11-22T20:10:00Z', end_reason: '4 done, 0 failed, 0 held' }),
  ];
  b.details.set(2, {
    deployment: b.deployments[0],
    devices: [
      verdict('A1', { kind: 'failed', attempts: 3 }, { name: 'bench-01', reason: '3 attempts at this image failed; press Retry', update: update('A1', { state: 'failed', error: 'flash write failed' }) }),
      verdict('A2', { kind: 'newer_running', running: '2.0.0', target: '1.1.0' }, { reason: 'the deployed version 1.1.0 is older than the running 2.0.0' }),
      verdict('A3', { kind: 'in_progress', state: 'downloading', progress: 30 }, { update: update('A3', { state: 'downloading', progress: 30, retry: true }) }),
    ],
  });
  const fleet = new Fleet(b);
  await fleet.reload();
  render(DeploymentsView, { fleet });
  return { b, fleet };
}

describe('Deployments page', () => {
  test('each deployment with its image, target, status and tally', async () => {
    await page();
    const card = (await screen.findByRole('article', { name: 'Deployment 2' }));
    expect(within(card).getByText('blink 1.1.0')).toBeTruthy();
    expect(within(card).getByText(/every esp32 device of project blink/)).toBeTruthy();
    expect(within(card).getByTestId('status').textContent).toBe('active');
    expect(within(card).getByRole('img').getAttribute('aria-label')).toBe('Deployment 2: 6 done, 1 in progress, 1 waiting, 1 failed, 1 held');
    const done = screen.getByRole('article', { name: 'Deployment 1' });
    expect(within(done).getByTestId('status').textContent).toBe('completed');
    expect(within(done).getByText('(4 done, 0 failed, 0 held)')).toBeTruthy();
    // Nothing failed in the completed one: no Retry there.
    expect(within(done).queryByRole('button', { name: /Retry/ })).toBeNull();
  });

  test('a row opens to its devices, each with its verdict, reason and attempt (retries marked)', async () => {
    await page();
    const card = await screen.findByRole('article', { name: 'Deployment 2' });
    await fireEvent.click(within(card).getByRole('button', { name: /Devices \(10\)/ }));
    const table = await within(card).findByRole('table', { name: 'Devices of deployment 2' });
    const row = (mac: string) => within(table).getAllByRole('row').find((r) => r.getAttribute('data-mac') === mac)!;
    expect(row('A1').textContent).toContain('3 attempts at this image failed');
    expect(row('A1').textContent).toContain('flash write failed');
    expect(row('A2').textContent).toContain('newer running');
    expect(row('A3').textContent).toContain('downloading 30%');
    expect(within(row('A3')).getByText('retry')).toBeTruthy();
    expect(within(card).getByText(/1 failed at the attempt limit · 1 runs a newer version · 1 is getting it already/)).toBeTruthy();
  });

  test('stop asks first, then stops only that deployment', async () => {
    const { b } = await page();
    const card = await screen.findByRole('article', { name: 'Deployment 2' });
    await fireEvent.click(within(card).getByRole('button', { name: 'Stop…' }));
    expect(b.calls.some((c) => c.startsWith('stop'))).toBe(false);
    expect(within(card).getByText(/Stop deployment 2\? Its devices are no longer offered blink 1.1.0/)).toBeTruthy();
    await fireEvent.click(within(card).getByRole('button', { name: 'Stop deployment 2' }));
    await within(card).findByText('Deployment 2 stopped.');
    expect(b.calls.filter((c) => c.startsWith('stop'))).toEqual(['stop 2']);
    expect(within(card).getByTestId('status').textContent).toBe('stopped');
    expect(within(screen.getByRole('article', { name: 'Deployment 1' })).getByTestId('status').textContent).toBe('completed');
  });

  test('roll back asks first, then stops it and says where each device goes and which stay', async () => {
    const { b } = await page();
    const card = await screen.findByRole('article', { name: 'Deployment 2' });
    await fireEvent.click(within(card).getByRole('button', { name: 'Roll back…' }));
    expect(b.calls.some((c) => c.startsWith('rollback'))).toBe(false);
    expect(within(card).getByText(/Roll back deployment 2\? It is stopped, and each of the 6 devices running blink 1.1.0 is offered the image it ran before/)).toBeTruthy();
    await fireEvent.click(within(card).getByRole('button', { name: 'Roll back deployment 2' }));
    await within(card).findByText(/Deployment 2 stopped and rolled back: rollback deployment #102 returns each device to the image it ran before\. 1 device is left as it is: B \(the image it ran before \(1\.0\.0\) is not in the library/);
    expect(b.calls.filter((c) => c.startsWith('rollback'))).toEqual(['rollback 2']);
    expect(within(card).getByTestId('status').textContent).toBe('stopped');
    expect(await screen.findByRole('article', { name: 'Deployment 102' })).toBeTruthy();
  });

  test('Retry failed asks the server for new attempts for that deployment', async () => {
    const { b } = await page();
    const card = await screen.findByRole('article', { name: 'Deployment 2' });
    await fireEvent.click(within(card).getByRole('button', { name: 'Retry failed (1)' }));
    await within(card).findByText(/1 new attempt: offered at the device's next check-in/);
    expect(b.calls).toContain('retryDeployment 2');
  });

  test('a live deployment event shows a wave finishing as completed', async () => {
    const { fleet } = await page();
    const card = await screen.findByRole('article', { name: 'Deployment 2' });
    fleet.applyBatch([{ type: 'deployment', deployment: deployment(2, { firmware_id: 5, status: 'completed', tally: tally({ done: 10 }) }) }]);
    await vi.waitFor(() => expect(within(card).getByTestId('status').textContent).toBe('completed'));
    expect(within(card).getByRole('img').getAttribute('aria-label')).toBe('Deployment 2: 10 done');
  });

  test('a rollout shows its waves live, pauses with a reason shown prominently, and resumes', async () => {
    const b = new MockBackend();
    b.firmwareList = [firmware(5, { project: 'blink', version: '1.1.0' })];
    b.deployments = [deployment(3, { firmware_id: 5, reach: 5, plan: CANARY, wave: 2, tally: tally({ done: 2, in_progress: 1, waiting: 2 }) })];
    const waves = (second: Parameters<typeof member>[1]) => rollout([
      [member('C1', { name: 'canary-1', state: 'succeeded' })],
      [member('A1', { state: 'soaking' }), member('A2', second)],
      [member('A3'), member('A9', { name: 'late-one', late: true })],
      [member('A4', { state: 'skipped', reason: 'another chip' })],
    ], { current_wave: 2 });
    b.details.set(3, { deployment: b.deployments[0], devices: [], rollout: waves({ state: 'updating' }) });
    const fleet = new Fleet(b);
    await fleet.reload();
    render(DeploymentsView, { fleet });
    const card = await screen.findByRole('article', { name: 'Deployment 3' });
    const list = await within(card).findByRole('list', { name: 'Waves of rollout 3' });
    const wave = (n: number) => within(list).getByRole('listitem', { name: new RegExp(`^Wave ${n}:`) });
    expect(wave(2).getAttribute('aria-current')).toBe('step');
    expect(wave(2).textContent).toContain('under way');
    expect(wave(2).textContent).toContain('1 updating · 1 soaking');
    expect(within(wave(1)).getByRole('listitem', { name: 'canary-1: succeeded' })).toBeTruthy();
    expect(within(wave(3)).getByRole('listitem', { name: 'late-one: waiting, late' }).textContent).toContain('late');
    expect(within(wave(4)).getByRole('listitem', { name: 'A4: skipped' }).getAttribute('data-state')).toBe('skipped');
    expect(within(card).getByTestId('rollout-wave').textContent).toContain('Wave 2 of 4 under way');

    // Live: an event that decides an outcome redraws the waves.
    b.details.set(3, { deployment: b.deployments[0], devices: [], rollout: waves({ state: 'failed', reason: 'it restarted while soaking' }) });
    fleet.applyBatch([{ type: 'deployment', deployment: b.deployments[0] }]);
    await vi.waitFor(() => expect(within(wave(2)).getByRole('listitem', { name: 'A2: failed' })).toBeTruthy());

    // Pause asks for an optional reason first.
    await fireEvent.click(within(card).getByRole('button', { name: 'Pause…' }));
    expect(b.calls.some((c) => c.startsWith('pause'))).toBe(false);
    await fireEvent.input(within(card).getByLabelText('Why (optional)'), { target: { value: 'A2 restarted' } });
    b.details.set(3, { deployment: b.deployments[0], devices: [], rollout: waves({ state: 'failed' }) });
    await fireEvent.click(within(card).getByRole('button', { name: 'Pause rollout 3' }));
    await vi.waitFor(() => expect(within(card).getByTestId('status').textContent).toBe('paused'));
    expect(b.calls).toContain('pause 3 "A2 restarted"');
    expect(within(card).getByTestId('pause-reason').textContent).toContain('paused by the admin: A2 restarted');
    expect(within(card).queryByRole('button', { name: 'Pause…' })).toBeNull();
    expect(wave(2).textContent).toContain('paused');

    await fireEvent.click(within(card).getByRole('button', { name: 'Resume and retry failed (1)' }));
    await vi.waitFor(() => expect(within(card).getByTestId('status').textContent).toBe('active'));
    expect(b.calls).toContain('resume 3 retry=true');
    expect(within(card).queryByTestId('pause-reason')).toBeNull();
    expect(await within(card).findByText('Resumed; 1 failed device gets a new attempt.')).toBeTruthy();
  });
});
