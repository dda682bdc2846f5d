import { fireEvent, render, screen, within } from '@testing-library/svelte';
import { describe, expect, test, vi } from 'vitest';
import { MockBackend, deployment, firmware, update, verdict } from '../lib/backend/mock';
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
});
