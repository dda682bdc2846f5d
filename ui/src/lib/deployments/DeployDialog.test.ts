import { fireEvent, render, screen } from '@testing-library/svelte';
import { describe, expect, test, vi } from 'vitest';
import { MockBackend, firmware } from '../backend/mock';
import DeployDialog from './DeployDialog.svelte';
import { DeploymentStore } from './deployments.svelte';

describe('DeployDialog', () => {
  test('says how many devices it will reach before deploying', async () => {
    const b = new MockBackend();
    b.reach = 4;
    const store = new DeploymentStore(b);
    const onclose = vi.fn();
    render(DeployDialog, { firmware: firmware(2), selected: [], store, onclose });
    expect((await screen.findByTestId('reach')).textContent).toBe('4');
    await fireEvent.click(screen.getByRole('button', { name: 'Deploy to 4 devices' }));
    await vi.waitFor(() => expect(onclose).toHaveBeenCalled());
    expect(b.calls.at(-1)).toBe('deploy {"firmware_id":2,"project":"blink","chip":"esp32"}');
  });

  test('with devices ticked, targets exactly those', async () => {
    const b = new MockBackend();
    b.reach = 2;
    const store = new DeploymentStore(b);
    render(DeployDialog, { firmware: firmware(2), selected: ['A1', 'A2'], store, onclose: () => {} });
    await screen.findByTestId('reach');
    expect(b.calls[0]).toBe('deploy {"firmware_id":2,"devices":["A1","A2"],"dry_run":true}');
  });
});
