import { fireEvent, render, screen } from '@testing-library/svelte';
import { describe, expect, test } from 'vitest';
import { device, MockBackend } from '../lib/backend/mock';
import DeviceActions from '../lib/devices/DeviceActions.svelte';
import { Fleet } from '../lib/fleet.svelte';
import SettingsView from './SettingsView.svelte';

describe('trust settings', () => {
  test('the settings page turns open enrolment off on the server', async () => {
    const backend = new MockBackend();
    render(SettingsView, { fleet: new Fleet(backend), baseUrl: 'http://h:1', token: 'T', onforget: () => {} });
    const box = (await screen.findByLabelText(/Open enrolment/)) as HTMLInputElement;
    expect(box.checked).toBe(true);
    await fireEvent.click(box);
    expect(backend.calls).toContain('patchSettings {"open_enrolment":false}');
    expect(await screen.findByText(/unknown devices are refused/)).toBeTruthy();
  });

  test("a device's expected protocol is set from its page", async () => {
    const backend = new MockBackend();
    const d = device('AA:BB:CC:DD:EE:01', { expect_protocol: null });
    backend.devices = [d];
    render(DeviceActions, { device: d, backend, onforgotten: () => {} });
    const select = screen.getByLabelText('Expected protocol') as HTMLSelectElement;
    await fireEvent.change(select, { target: { value: 'arduino' } });
    expect(backend.calls).toContain('patchDevice AA:BB:CC:DD:EE:01 {"expect_protocol":"arduino"}');
    expect(await screen.findByText(/Only arduino may serve this device/)).toBeTruthy();
  });
});
