import { fireEvent, render, screen, within } from '@testing-library/svelte';
import { describe, expect, test } from 'vitest';
import type { DeviceConfig } from '../api/types';
import { device, deviceConfig, MockBackend } from '../backend/mock';
import { Fleet } from '../fleet.svelte';
import DeviceDetailView from '../../views/DeviceDetailView.svelte';
import { ConfigEditor } from './config.svelte';

const A = '24:6F:28:00:00:01';

async function started(backend: MockBackend) {
  const fleet = new Fleet(backend, (flush) => flush());
  await fleet.start();
  return fleet;
}

const cfg: DeviceConfig = deviceConfig(A, {
  version: 3,
  applied_version: 2,
  state: 'pending',
  values: { ssid: 'home', interval_s: 60, led: true, pass: { set: true } },
  variables: [
    { key: 'ssid', type: 'string', description: '', default: 'lab', set: true, value: 'home' },
    { key: 'interval_s', type: 'int', description: '', default: 60, set: false, value: null },
    { key: 'led', type: 'bool', description: '', default: true, set: false, value: null },
    { key: 'pass', type: 'secret', description: '', default: { set: false }, set: true, value: { set: true } },
  ],
});

describe('config editor', () => {
  test('sends only what changed, typed; a secret only when typed; a reset as null', async () => {
    const backend = new MockBackend();
    backend.configs.set(A, cfg);
    const fleet = await started(backend);
    const ed = new ConfigEditor(fleet, A);
    await ed.load();
    expect(ed.fields).toEqual({ ssid: 'home', interval_s: '60', led: true, pass: '' });
    expect(ed.dirty).toBe(false);
    ed.fields.interval_s = '30';
    ed.fields.led = false;
    ed.reset.ssid = true;
    expect(ed.changes()).toEqual({ values: { interval_s: 30, led: false, ssid: null } });
    ed.fields.pass = 'hunter2';
    expect(ed.changes()).toEqual({ values: { interval_s: 30, led: false, ssid: null, pass: 'hunter2' } });
    ed.fields.interval_s = 'ten';
    expect('error' in ed.changes()).toBe(true);
  });

  test('a reload that lands while someone types keeps what they typed', async () => {
    const backend = new MockBackend();
    backend.configs.set(A, cfg);
    const fleet = await started(backend);
    const ed = new ConfigEditor(fleet, A);
    await ed.load();
    ed.fields.interval_s = '75';
    backend.configs.set(A, { ...cfg, state: 'applied', applied_version: 3 });
    await ed.load();
    expect(ed.config?.state).toBe('applied');
    expect(ed.fields.interval_s).toBe('75');
    expect(ed.changes()).toEqual({ values: { interval_s: 75 } });
  });

  test('follows device_config: pending, then applied, for its own device only', async () => {
    const backend = new MockBackend();
    backend.configs.set(A, cfg);
    const fleet = await started(backend);
    const ed = new ConfigEditor(fleet, A);
    const stop = ed.follow();
    await ed.load();
    backend.emit({ type: 'device_config', config: { ...cfg, mac: 'OTHER', state: 'applied' } });
    expect(ed.config?.state).toBe('pending');
    backend.emit({ type: 'device_config', config: { ...cfg, state: 'applied', applied_version: 3, pending_since: null } });
    expect(ed.config?.state).toBe('applied');
    stop();
  });
});

describe('config panel on the device page', () => {
  test('shows pending since, saves a change, and turns applied on the event', async () => {
    const backend = new MockBackend();
    backend.devices = [device(A)];
    backend.configs.set(A, cfg);
    const fleet = await started(backend);
    render(DeviceDetailView, { fleet, mac: A, tab: 'config' });
    const state = await screen.findByTestId('config-state');
    expect(state.dataset.state).toBe('pending');
    expect(state.textContent).toContain('pending');
    const rows = screen.getAllByTestId('config-row');
    const pass = within(rows[3]).getByLabelText('pass') as HTMLInputElement;
    expect(pass.type).toBe('password');
    expect(pass.value).toBe('');
    await fireEvent.input(within(rows[0]).getByLabelText('ssid'), { target: { value: 'office' } });
    await fireEvent.click(screen.getByTestId('config-save'));
    await screen.findByText(/Version 4/);
    expect(backend.calls).toContain(`patchDeviceConfig ${A} {"values":{"ssid":"office"}}`);
    backend.emit({ type: 'device_config', config: { ...cfg, version: 4, state: 'applied', applied_version: 4, pending_since: null } });
    expect((await screen.findByTestId('config-state')).dataset.state).toBe('applied');
  });
});
