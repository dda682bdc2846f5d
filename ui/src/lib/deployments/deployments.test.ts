import { describe, expect, test } from 'vitest';
import { MockBackend, firmware } from '../backend/mock';
import { DeploymentStore, requestFor } from './deployments.svelte';

describe('DeploymentStore', () => {
  test('dry run first, then the same request for real', async () => {
    const b = new MockBackend();
    b.reach = 12;
    const s = new DeploymentStore(b);
    const fw = firmware(3, { project: 'blink', chip: 'esp32s3' });
    await s.prepare(fw, { kind: 'project' });
    expect(s.plan?.state).toBe('ready');
    expect(s.plan?.reach).toBe(12);
    const d = await s.confirm();
    expect(d?.reach).toBe(12);
    expect(s.plan).toBeNull();
    expect(b.calls).toEqual([
      'deploy {"firmware_id":3,"project":"blink","chip":"esp32s3","dry_run":true}',
      'deploy {"firmware_id":3,"project":"blink","chip":"esp32s3"}',
    ]);
    expect(s.activeFor(3)).toHaveLength(1);
  });

  test('selected devices are sent as a list', () => {
    expect(requestFor(firmware(1), { kind: 'devices', macs: ['A', 'B'] })).toEqual({ firmware_id: 1, devices: ['A', 'B'] });
  });

  test('a slower answer to an older choice does not replace the newer plan', async () => {
    const b = new MockBackend();
    const s = new DeploymentStore(b);
    const first = s.prepare(firmware(1), { kind: 'project' });
    const second = s.prepare(firmware(1), { kind: 'devices', macs: ['A'] });
    await Promise.all([first, second]);
    expect(s.plan?.target).toEqual({ kind: 'devices', macs: ['A'] });
  });
});
