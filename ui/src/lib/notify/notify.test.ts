import { fireEvent, render, screen, waitFor, within } from '@testing-library/svelte';
import { describe, expect, test } from 'vitest';
import type { Delivery } from '../api/types';
import { BackendError } from '../backend/backend';
import { MockBackend, report } from '../backend/mock';
import { Fleet } from '../fleet.svelte';
import SettingsView from '../../views/SettingsView.svelte';
import ActivityView from '../../views/ActivityView.svelte';
import { recipients, smtpPatch, smtpForm } from './form';

function show(backend: MockBackend) {
  render(SettingsView, { fleet: new Fleet(backend), baseUrl: 'http://h:1', token: 'T', onforget: () => {} });
}

const patches = (b: MockBackend) => b.calls.filter((c) => c.startsWith('patchSettings'));

describe('notification settings', () => {
  test('the admin sets a webhook; the secret is sent once, never shown, and kept when left empty', async () => {
    const backend = new MockBackend();
    show(backend);
    const form = await screen.findByRole('form', { name: 'Webhook' });
    await fireEvent.input(within(form).getByLabelText(/URL/), { target: { value: ' https://hooks.example.com/ota ' } });
    await fireEvent.input(within(form).getByLabelText(/Secret/), { target: { value: 'whsec-1' } });
    // Errors and warnings by default; add successes.
    expect((within(form).getByLabelText('error') as HTMLInputElement).checked).toBe(true);
    expect((within(form).getByLabelText('info') as HTMLInputElement).checked).toBe(false);
    await fireEvent.click(within(form).getByLabelText('success'));
    await fireEvent.click(within(form).getByRole('button', { name: 'Save webhook' }));
    await waitFor(() =>
      expect(patches(backend)).toEqual([
        'patchSettings {"notify":{"webhook":{"url":"https://hooks.example.com/ota","types":["warn","error","success"],"enabled":true,"secret":"whsec-1"}}}',
      ]),
    );
    const secret = within(form).getByLabelText(/Secret/) as HTMLInputElement;
    await waitFor(() => expect(secret.placeholder).toMatch(/set — leave empty to keep it/));
    expect(secret.value).toBe('');
    expect(document.body.innerHTML).not.toContain('whsec-1');
    // Saved again without typing a secret: the stored one is kept (no `secret` sent).
    await fireEvent.click(within(form).getByLabelText('Enabled'));
    await fireEvent.click(within(form).getByRole('button', { name: 'Save webhook' }));
    await waitFor(() => expect(patches(backend).length).toBe(2));
    expect(patches(backend)[1]).toBe(
      'patchSettings {"notify":{"webhook":{"url":"https://hooks.example.com/ota","types":["warn","error","success"],"enabled":false}}}',
    );
    expect(backend.notify.webhook?.secret.set).toBe(true);
  });

  test('e-mail: recipients split, the security decides the port, a refusal shows the server message', async () => {
    const backend = new MockBackend();
    show(backend);
    const form = await screen.findByRole('form', { name: 'E-mail' });
    await fireEvent.input(within(form).getByLabelText(/SMTP server/), { target: { value: 'smtp.example.com' } });
    await fireEvent.change(within(form).getByLabelText(/Security/), { target: { value: 'none' } });
    expect((within(form).getByLabelText(/Port/) as HTMLInputElement).placeholder).toBe('25');
    await fireEvent.input(within(form).getByLabelText(/^From/), { target: { value: 'otafleet <ota@example.com>' } });
    await fireEvent.input(within(form).getByLabelText(/^To/), { target: { value: 'a@example.com, b@example.com' } });
    backend.settingsError = new BackendError('invalid_email_address', "smtp.to: 'b@' is not an e-mail address", 422);
    await fireEvent.click(within(form).getByRole('button', { name: 'Save e-mail' }));
    expect(await screen.findByText(/is not an e-mail address/)).toBeTruthy();
    expect(backend.notify.smtp).toBeNull();
    await fireEvent.click(within(form).getByRole('button', { name: 'Save e-mail' }));
    await waitFor(() => expect(backend.notify.smtp?.to).toEqual(['a@example.com', 'b@example.com']));
    expect(patches(backend)[1]).toBe(
      'patchSettings {"notify":{"smtp":{"host":"smtp.example.com","security":"none","username":null,"from":"otafleet <ota@example.com>","to":["a@example.com","b@example.com"],"types":["warn","error"],"enabled":true,"port":25,"max_per_hour":10}}}',
    );
    expect(await within(form).findByRole('button', { name: 'Remove e-mail' })).toBeTruthy();
  });

  test('"Send test" shows what happened per target', async () => {
    const backend = new MockBackend();
    backend.notify = {
      webhook: { url: 'https://hooks.example.com/ota', secret: { set: true }, types: ['error'], enabled: true },
      smtp: null,
    };
    backend.testResult = {
      results: [
        { channel: 'webhook', recipient: 'https://hooks.example.com/ota', delivered: true, status: 204, error: null },
        { channel: 'email', recipient: 'ops@example.com', delivered: false, status: null, error: 'connection refused' },
      ],
    };
    show(backend);
    await fireEvent.click(await screen.findByRole('button', { name: 'Send test' }));
    const list = await screen.findByTestId('notify-test');
    expect(list.textContent).toMatch(/Webhook https:\/\/hooks.example.com\/ota: delivered \(204\)/);
    expect(list.textContent).toMatch(/E-mail ops@example.com: not delivered — connection refused/);
    expect(backend.calls).toContain('testNotify');
  });

  test('the patch builders', () => {
    expect(recipients(' a@x.io;b@x.io\nc@x.io ,, ')).toEqual(['a@x.io', 'b@x.io', 'c@x.io']);
    const f = smtpForm({ webhook: null, smtp: null });
    expect(f.security).toBe('starttls');
    expect(smtpPatch({ ...f, host: 'h', from: 'a@x.io', to: 'b@x.io', password: 'pw', username: 'u' })).toMatchObject({
      port: 587, username: 'u', password: 'pw',
    });
    expect(smtpPatch({ ...f, host: 'h', from: 'a@x.io', to: 'b@x.io' })).not.toHaveProperty('password');
  });
});

function delivery(id: number, over: Partial<Delivery> = {}): Delivery {
  return {
    id, report_id: 1, channel: 'webhook', recipient: 'https://hooks.example.com/ota', attempts: 1, state: 'delivered',
    last_status: 200, last_error: null, next_attempt_at: null, created_at: '2026-12-06T05:00:00.000Z',
    updated_at: '2026-12-06T05:00:01.000Z', ...over,
  };
}

describe('report deliveries on the Activity page', () => {
  test('each report says where it was sent, and a live delivery event updates it', async () => {
    const backend = new MockBackend();
    backend.reports = [report(1, { type: 'error', subject: 'bus stuck' }), report(2, { type: 'info', subject: 'booted' })];
    backend.deliveries = [
      delivery(1),
      delivery(2, { channel: 'email', recipient: 'ops@example.com', state: 'rate_limited', attempts: 0, last_status: null }),
    ];
    const fleet = new Fleet(backend, (flush) => flush());
    await fleet.start();
    render(ActivityView, { fleet });
    const cells = await screen.findAllByTestId('report-deliveries');
    await waitFor(() => expect(cells[1].textContent).toMatch(/webhook: sent/));
    expect(cells[1].textContent).toMatch(/e-mail: rate limited/);
    expect(cells[0].textContent?.trim()).toBe('');
    backend.emit({ type: 'delivery', delivery: delivery(3, { report_id: 2, state: 'pending', attempts: 0 }) });
    await waitFor(() => expect(screen.getAllByTestId('report-deliveries')[0].textContent).toMatch(/webhook: sending/));
    backend.emit({ type: 'delivery', delivery: delivery(3, { report_id: 2, state: 'failed', attempts: 8, last_error: 'HTTP 500' }) });
    await waitFor(() => expect(screen.getAllByTestId('report-deliveries')[0].textContent).toMatch(/webhook: failed/));
  });
});
