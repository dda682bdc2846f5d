import { fireEvent, render, screen } from '@testing-library/svelte';
import { describe, expect, test, vi } from 'vitest';
import { BackendError } from '../backend/backend';
import { MockBackend, device } from '../backend/mock';
import AddDeviceDialog from './AddDeviceDialog.svelte';

describe('AddDeviceDialog', () => {
  test('starts in the MAC field, suggests the protocol the project uses, and hands the new device on', async () => {
    const b = new MockBackend();
    const onadded = vi.fn();
    const fleet = [device('AA:00:00:00:00:01', { project: 'blink', chip: 'esp32', protocol: 'arduino' })];
    render(AddDeviceDialog, { backend: b, devices: () => fleet, projects: ['blink'], onadded, onclose: () => {} });
    const mac = screen.getByLabelText('MAC address');
    expect(document.activeElement).toBe(mac);
    const expectSel = screen.getByLabelText('Expected protocol') as HTMLSelectElement;
    expect(expectSel.value).toBe('any');
    expect(screen.getByRole('button', { name: 'Add device' })).toHaveProperty('disabled', true);
    await fireEvent.input(mac, { target: { value: '24:0a:c4:a3:15:3c' } });
    await fireEvent.input(screen.getByLabelText('Project'), { target: { value: 'blink' } });
    expect(expectSel.value).toBe('arduino');
    expect(screen.getByText('like the other device of blink')).toBeTruthy();
    await fireEvent.click(screen.getByRole('button', { name: 'Add device' }));
    await vi.waitFor(() => expect(onadded).toHaveBeenCalled());
    expect(onadded.mock.calls[0][0].mac).toBe('24:0A:C4:A3:15:3C');
    expect(b.calls.at(-1)).toBe('createDevice {"mac":"24:0a:c4:a3:15:3c","expect_protocol":"arduino","project":"blink"}');
  });

  test("shows the server's refusal in the form and marks the MAC field", async () => {
    const b = new MockBackend();
    b.createError = new BackendError('conflict', 'device 24:0A:C4:A3:15:3C already exists', 409);
    const onadded = vi.fn();
    render(AddDeviceDialog, { backend: b, onadded, onclose: () => {} });
    const mac = screen.getByLabelText('MAC address');
    await fireEvent.input(mac, { target: { value: '24:0a:c4:a3:15:3c' } });
    await fireEvent.input(screen.getByLabelText('Name'), { target: { value: 'relay' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Add device' }));
    expect((await screen.findByRole('alert')).textContent).toContain('device 24:0A:C4:A3:15:3C already exists');
    expect(mac.getAttribute('aria-invalid')).toBe('true');
    expect(document.activeElement).toBe(mac);
    expect(onadded).not.toHaveBeenCalled();
    // Editing the refused MAC takes the stale refusal away.
    await fireEvent.input(mac, { target: { value: '24:0a:c4:a3:15:3d' } });
    expect(screen.queryByRole('alert')).toBeNull();
    expect(mac.getAttribute('aria-invalid')).toBe('false');
  });
});
