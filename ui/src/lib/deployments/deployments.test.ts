import { describe, expect, test, vi } from 'vitest';
import { MockBackend, deployment, verdict } from '../backend/mock';
import { DeploymentStore } from './deployments.svelte';

describe('DeploymentStore', () => {
  test('events replace a deployment by id and keep the list newest first', async () => {
    const b = new MockBackend();
    b.deployments = [deployment(2), deployment(1)];
    const s = new DeploymentStore(b);
    await s.load();
    s.apply(deployment(3));
    s.apply(deployment(1, { status: 'completed' }));
    expect(s.items.map((d) => [d.id, d.status])).toEqual([[3, 'active'], [2, 'active'], [1, 'completed']]);
  });

  test('an image is in use while a deployment that is not stopped targets it', () => {
    const s = new DeploymentStore(new MockBackend());
    s.apply(deployment(1, { firmware_id: 5, status: 'completed' }));
    s.apply(deployment(2, { firmware_id: 5, status: 'stopped' }));
    s.apply(deployment(3, { firmware_id: 6 }));
    expect(s.targeting(5).map((d) => d.id)).toEqual([1]);
  });

  test('stop stops that one deployment only', async () => {
    const b = new MockBackend();
    b.deployments = [deployment(2), deployment(1)];
    const s = new DeploymentStore(b);
    await s.load();
    await s.stop(1);
    expect(b.calls.filter((c) => c.startsWith('stop'))).toEqual(['stop 1']);
    expect(s.items.map((d) => d.status)).toEqual(['active', 'stopped']);
  });

  test('an opened device list is loaded, and reloaded when its deployment changes', async () => {
    const b = new MockBackend();
    b.deployments = [deployment(4)];
    b.details.set(4, { deployment: deployment(4), devices: [verdict('A1', { kind: 'offer' })] });
    const s = new DeploymentStore(b);
    await s.load();
    await s.toggle(4);
    expect(s.details[4].devices.map((d) => d.mac)).toEqual(['A1']);
    b.details.set(4, { deployment: deployment(4, { status: 'completed' }), devices: [verdict('A1', { kind: 'already_running' })] });
    s.apply(deployment(4, { status: 'completed' }));
    await vi.waitFor(() => expect(s.details[4].devices[0].verdict.kind).toBe('already_running'));
    await s.toggle(4);
    expect(s.open.has(4)).toBe(false);
  });

  test('device activity refreshes the tallies only while a page watches, at most once per delay', async () => {
    vi.useFakeTimers();
    try {
      const b = new MockBackend();
      const s = new DeploymentStore(b, 1000);
      s.noteActivity();
      vi.advanceTimersByTime(5000);
      expect(b.calls.filter((c) => c === 'listDeployments')).toHaveLength(0);
      const release = s.watch();
      for (let i = 0; i < 50; i++) s.noteActivity();
      vi.advanceTimersByTime(1000);
      await vi.runAllTimersAsync();
      expect(b.calls.filter((c) => c === 'listDeployments')).toHaveLength(1);
      release();
      s.noteActivity();
      vi.advanceTimersByTime(5000);
      expect(b.calls.filter((c) => c === 'listDeployments')).toHaveLength(1);
    } finally {
      vi.useRealTimers();
    }
  });

  test('retry asks the server for new attempts and re-reads the tallies', async () => {
    const b = new MockBackend();
    b.deployments = [deployment(3, { tally: { done: 1, in_progress: 0, waiting: 0, failed: 1, held: 0, superseded: 0 } })];
    const s = new DeploymentStore(b);
    const opened = await s.retry(3);
    expect(opened.map((u) => u.retry)).toEqual([true]);
    expect(b.calls).toEqual(['retryDeployment 3', 'listDeployments']);
  });
});
