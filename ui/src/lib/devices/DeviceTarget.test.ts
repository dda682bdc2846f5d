import { fireEvent, render, screen } from '@testing-library/svelte';
import { describe, expect, test, vi } from 'vitest';
import { BackendError } from '../backend/backend';
import { MockBackend, device, update } from '../backend/mock';
import { DeploymentStore } from '../deployments/deployments.svelte';
import DeviceTarget from './DeviceTarget.svelte';
import { previousImage } from './target';

describe('device page: current deployment', () => {
  const mac = 'AA:BB:CC:DD:EE:01';

  test('a held device says why; Retry appears when the deployment gave up on it', async () => {
    const b = new MockBackend();
    b.targets.set(mac, { deployment_id: 4, firmware_id: 2, version: '1.1.0', verdict: { kind: 'failed', attempts: 3 },
      reason: '3 attempts at this image failed; press Retry to try again, or fix the device' });
    const deployments = new DeploymentStore(b);
    const failed = device(mac, { update: update(mac, { id: 3, state: 'failed' }) });
    const { rerender } = render(DeviceTarget, { device: failed, history: [], deployments });
    const target = await screen.findByTestId('target');
    await vi.waitFor(() => expect(target.textContent).toContain('3 attempts at this image failed'));
    expect(target.textContent).toContain('Deployment 4');
    b.targets.set(mac, { deployment_id: 4, firmware_id: 2, version: '1.1.0', verdict: { kind: 'in_progress', state: 'offered', progress: 0 }, reason: 'an attempt is under way (offered)' });
    await fireEvent.click(screen.getByRole('button', { name: 'Retry' }));
    expect(b.calls).toContain(`retryDevice ${mac}`);
    // The server's event brings the new attempt (id 99): the note stays while it is under way.
    await rerender({ device: device(mac, { update: update(mac, { id: 99, state: 'offered', retry: true }) }), history: [], deployments });
    await screen.findByText(/A new attempt: the image is offered at its next check-in/);
    expect(screen.queryByRole('button', { name: 'Retry' })).toBeNull();
    b.targets.set(mac, { deployment_id: 4, firmware_id: 2, version: '1.1.0', verdict: { kind: 'already_running' }, reason: 'the device runs this image already' });
    await rerender({ device: device(mac, { version: '1.1.0', update: update(mac, { id: 99, state: 'done', retry: true }) }), history: [], deployments });
    await vi.waitFor(() => expect(screen.queryByText(/A new attempt/)).toBeNull());
    await vi.waitFor(() => expect(screen.getByTestId('target').textContent).toContain('runs it'));
  });

  test('no Retry for a device the deployment holds for another reason', async () => {
    const b = new MockBackend();
    b.targets.set(mac, { deployment_id: 4, firmware_id: 2, version: '1.0.0', verdict: { kind: 'newer_running', running: '1.1.0', target: '1.0.0' },
      reason: 'the deployed version 1.0.0 is older than the running 1.1.0; deploy it as a rollback to install it' });
    render(DeviceTarget, { device: device(mac), history: [], deployments: new DeploymentStore(b) });
    await vi.waitFor(() => expect(screen.getByTestId('target').textContent).toContain('deploy it as a rollback'));
    expect(screen.queryByRole('button', { name: 'Retry' })).toBeNull();
  });

  test('roll back names the version it returns to, and asks first', async () => {
    const b = new MockBackend();
    const history = [
      update(mac, { id: 3, state: 'done', from_version: '1.0.0', version: '1.1.0', from_sha256: 'aa'.repeat(32) }),
      update(mac, { id: 2, state: 'failed', from_version: '1.0.0', version: '1.1.0' }),
    ];
    expect(previousImage(history)?.version).toBe('1.0.0');
    const store = new DeploymentStore(b);
    b.targets.set(mac, { deployment_id: 8, firmware_id: 1, version: '1.0.0', verdict: { kind: 'offer' }, reason: 'the image is offered' });
    render(DeviceTarget, { device: device(mac, { name: 'bench-01', version: '1.1.0' }), history, deployments: store });
    await fireEvent.click(await screen.findByRole('button', { name: 'Roll back to 1.0.0…' }));
    expect(b.calls.some((c) => c.startsWith('rollbackDevice'))).toBe(false);
    expect(screen.getByText(/the image it ran before its update to 1.1.0/)).toBeTruthy();
    await fireEvent.click(screen.getByRole('button', { name: 'Roll back to 1.0.0' }));
    await screen.findByText('Deployment 8 created: bench-01 goes back to 1.0.0 at its next check-in.');
    expect(store.byId(8)?.rollback).toBe(true);
  });

  test("the server's reason is shown when there is nothing to roll back to", async () => {
    const b = new MockBackend();
    b.rollbackResult = new BackendError('conflict', 'the image device AA:BB:CC:DD:EE:01 ran before (1.0.0) is not in the library; add it, then deploy it as a rollback', 409);
    const history = [update(mac, { id: 3, state: 'done', from_version: '1.0.0', version: '1.1.0' })];
    render(DeviceTarget, { device: device(mac), history, deployments: new DeploymentStore(b) });
    await fireEvent.click(await screen.findByRole('button', { name: 'Roll back to 1.0.0…' }));
    await fireEvent.click(screen.getByRole('button', { name: 'Roll back to 1.0.0' }));
    expect((await screen.findByRole('alert')).textContent).toContain('is not in the library; add it');
    expect(previousImage([update(mac, { state: 'failed' })])).toBeNull();
  });
});
