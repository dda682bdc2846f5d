import { describe, expect, test } from 'vitest';
import { BackendError } from '../backend/backend';
import { ESP_ADMIN_ID, ESP_ADMIN_KEY, MockBackend, tlsInfo } from '../backend/mock';
import { EspAdminForm, espAdminAddedMessage, noCredentials } from './espAdmin.svelte';

describe('EspAdminForm', () => {
  test('posts trimmed fields, leaves blank ones unset, keeps the answer and adds only once', async () => {
    const b = new MockBackend();
    const form = new EspAdminForm(b);
    expect(form.body()).toEqual({});
    form.name = '  greenhouse ';
    form.project = ' climate ';
    const a = await form.submit();
    expect(b.calls).toEqual(['createEspAdminDevice {"name":"greenhouse","project":"climate"}']);
    expect([a?.id, a?.api_key, form.added]).toEqual([ESP_ADMIN_ID, ESP_ADMIN_KEY, a]);
    // The key is on screen: a second press (a double click) adds no second device.
    expect(await form.submit()).toBeNull();
    expect(b.calls.length).toBe(1);
  });

  test("keeps the server's refusal verbatim and says which field it is about, by its code", async () => {
    const b = new MockBackend();
    const form = new EspAdminForm(b);
    b.espAdminError = new BackendError('invalid_name', 'a device name has at most 64 characters and no control characters', 422);
    expect(await form.submit()).toBeNull();
    expect(form.error).toEqual({ code: 'invalid_name', message: 'a device name has at most 64 characters and no control characters' });
    expect([form.invalid, form.added]).toEqual(['name', null]);
    b.espAdminError = new BackendError('invalid_project', "'a b' is not a usable project name", 422);
    await form.submit();
    expect(form.invalid).toBe('project');
    form.edited('name'); // the project is still what was refused
    expect(form.invalid).toBe('project');
    form.edited('project');
    expect(form.error).toBeNull();
    b.espAdminError = new BackendError('storage_full', 'the disk is full', 507);
    await form.submit();
    expect([form.error?.code, form.invalid]).toEqual(['storage_full', null]);
    form.edited('name'); // about no field in particular: any edit retires it
    expect(form.error).toBeNull();
    b.espAdminError = null;
    expect(await form.submit()).not.toBeNull();
    expect([form.error, form.busy]).toEqual([null, false]);
  });
});

describe('noCredentials', () => {
  test('before adding: warns only when the server can give no credentials.h', () => {
    expect(noCredentials(null)).toBeNull();
    expect(noCredentials(tlsInfo('auto'))).toBeNull();
    expect(noCredentials(tlsInfo('off'))).toBe('tls_off');
    expect(noCredentials(tlsInfo('user'))).toBe('own_certificate');
  });

  test('after adding: why the answer has none (unknown when the TLS state is not known)', () => {
    expect(noCredentials(tlsInfo('auto'), '#ifndef H_CREDENTIALS\n')).toBeNull();
    expect(noCredentials(tlsInfo('off'), null)).toBe('tls_off');
    expect(noCredentials(tlsInfo('user'), null)).toBe('own_certificate');
    expect(noCredentials(null, null)).toBe('unknown');
  });
});

test('espAdminAddedMessage names the device and its ESP Admin id', () => {
  const b = { id: ESP_ADMIN_ID, api_key: ESP_ADMIN_KEY, credentials_h: null };
  expect(espAdminAddedMessage({ ...b, device: { name: 'greenhouse' } as never })).toBe(
    `Added greenhouse (ESP Admin id ${ESP_ADMIN_ID}): it shows as online once its firmware calls in with its key.`,
  );
  expect(espAdminAddedMessage({ ...b, device: { name: null } as never })).toMatch(/^Added ESP Admin device 1e0f/);
});
