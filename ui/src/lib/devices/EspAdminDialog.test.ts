import { fireEvent, render, screen } from '@testing-library/svelte';
import { describe, expect, test, vi } from 'vitest';
import { BackendError } from '../backend/backend';
import { ESP_ADMIN_ID, ESP_ADMIN_KEY, MockBackend, tlsInfo } from '../backend/mock';
import EspAdminDialog from './EspAdminDialog.svelte';

describe('EspAdminDialog', () => {
  test('adds the device, then shows the id, the key (once) and credentials.h, and closes only through Done', async () => {
    const b = new MockBackend();
    const onclose = vi.fn();
    render(EspAdminDialog, { backend: b, projects: ['climate'], tls: tlsInfo('auto'), onclose });
    expect(screen.getByRole('dialog', { name: 'Add an ESP Admin device' })).toBeTruthy();
    const name = screen.getByLabelText('Name');
    expect(document.activeElement).toBe(name);
    await fireEvent.input(name, { target: { value: 'greenhouse' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Add ESP Admin device' }));
    expect((await screen.findByTestId('esp-admin-id')).textContent).toBe(ESP_ADMIN_ID);
    expect(screen.getByTestId('esp-admin-key').textContent).toBe(ESP_ADMIN_KEY);
    // Focus moves to what was added (the form it was in is gone).
    await vi.waitFor(() => expect(document.activeElement?.textContent).toContain('Added greenhouse.'));
    expect(screen.getByTestId('esp-admin-once').textContent).toContain('Shown once — copy it now.');
    expect(screen.getByTestId('esp-admin-once').textContent).toContain('otafleet keeps only a hash');
    expect(screen.getByLabelText('credentials.h').textContent).toContain(ESP_ADMIN_KEY);
    expect(screen.getByText('include/credentials.h')).toBeTruthy();
    expect(screen.getByRole('button', { name: 'Copy the API key' })).toBeTruthy();
    expect(screen.getByRole('button', { name: 'Copy credentials.h' })).toBeTruthy();
    expect(screen.getByRole('link', { name: 'Download' }).getAttribute('download')).toBe('credentials.h');
    expect(b.calls).toEqual(['createEspAdminDevice {"name":"greenhouse"}']);

    // Escape does not throw the key away: it says so and points at Done.
    await fireEvent.keyDown(window, { key: 'Escape' });
    expect(onclose).not.toHaveBeenCalled();
    expect((await screen.findByRole('alert')).textContent).toContain('not shown again');
    const done = screen.getByRole('button', { name: 'Done — I copied the key' });
    expect(document.activeElement).toBe(done);
    await fireEvent.click(done);
    expect(onclose).toHaveBeenCalledTimes(1);
    expect(onclose.mock.calls[0][0].id).toBe(ESP_ADMIN_ID);
  });

  test("before anything is added, Escape just closes; a refusal shows in the form and marks its field", async () => {
    const b = new MockBackend();
    b.espAdminError = new BackendError('invalid_name', 'a device name has at most 64 characters and no control characters', 422);
    const onclose = vi.fn();
    render(EspAdminDialog, { backend: b, onclose });
    const name = screen.getByLabelText('Name');
    await fireEvent.input(name, { target: { value: 'x'.repeat(65) } });
    await fireEvent.click(screen.getByRole('button', { name: 'Add ESP Admin device' }));
    expect((await screen.findByRole('alert')).textContent).toContain('at most 64 characters');
    expect(name.getAttribute('aria-invalid')).toBe('true');
    expect(document.activeElement).toBe(name);
    await fireEvent.input(name, { target: { value: 'greenhouse' } });
    expect(screen.queryByRole('alert')).toBeNull();
    await fireEvent.keyDown(window, { key: 'Escape' });
    expect(onclose).toHaveBeenCalledWith(null);
  });

  test('HTTPS off: warned before adding, and told why there is no credentials.h after', async () => {
    const b = new MockBackend();
    b.espAdminCredentials = null;
    render(EspAdminDialog, { backend: b, tls: tlsInfo('off'), onclose: () => {} });
    expect(screen.getByTestId('esp-admin-tls-off').textContent).toContain('otafleet serve --tls auto');
    await fireEvent.click(screen.getByRole('button', { name: 'Add ESP Admin device' }));
    const note = await screen.findByTestId('esp-admin-no-credentials');
    expect(note.textContent).toContain('HTTPS is off');
    expect(note.textContent).toContain('--tls auto');
    expect(screen.queryByLabelText('credentials.h')).toBeNull();
    expect(screen.getByTestId('esp-admin-key').textContent).toBe(ESP_ADMIN_KEY);
  });
});
