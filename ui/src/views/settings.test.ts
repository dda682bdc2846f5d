import { fireEvent, render, screen } from '@testing-library/svelte';
import { describe, expect, test } from 'vitest';
import { BackendError } from '../lib/backend/backend';
import { MockBackend } from '../lib/backend/mock';
import { Fleet } from '../lib/fleet.svelte';
import SettingsView from './SettingsView.svelte';

function show(backend: MockBackend) {
  render(SettingsView, { fleet: new Fleet(backend), baseUrl: 'http://h:1', token: 'T', onforget: () => {} });
}

describe('check-in timing', () => {
  test('the admin sets the interval and the offline threshold; the page says they are set by them', async () => {
    const backend = new MockBackend();
    show(backend);
    const interval = (await screen.findByLabelText(/Check-in interval/)) as HTMLInputElement;
    expect(interval.value).toBe('60');
    expect(screen.getByTestId('interval-source').textContent).toMatch(/default from --checkin-interval/);
    expect(screen.getByTestId('offline-source').textContent).toMatch(/190 s/);
    await fireEvent.input(interval, { target: { value: '30' } });
    const offline = screen.getByLabelText(/Offline after/) as HTMLInputElement;
    await fireEvent.input(offline, { target: { value: '120' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Save' }));
    expect(backend.calls).toContain('patchSettings {"checkin_interval_s":30,"offline_after_s":120}');
    expect(await screen.findByText(/set by you \(the start default is 60 s\)/)).toBeTruthy();
    expect(screen.getByTestId('offline-source').textContent).toMatch(/set by you/);
    expect((screen.getByLabelText(/Check-in interval/) as HTMLInputElement).value).toBe('30');
  });

  test("a refused value shows the server's message and changes nothing", async () => {
    const backend = new MockBackend();
    backend.settingsError = new BackendError(
      'invalid_checkin_interval',
      'checkin_interval_s must be between 10 and 86400 seconds, not 5',
      422,
    );
    show(backend);
    const interval = (await screen.findByLabelText(/Check-in interval/)) as HTMLInputElement;
    await fireEvent.input(interval, { target: { value: '5' } });
    await fireEvent.submit(interval.form!);
    expect(await screen.findByText(/must be between 10 and 86400 seconds, not 5/)).toBeTruthy();
    expect(backend.interval).toBeNull();
    expect(screen.getByTestId('interval-source').textContent).toMatch(/default from --checkin-interval/);
  });
});
