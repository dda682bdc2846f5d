import { fireEvent, render, screen, within } from '@testing-library/svelte';
import { describe, expect, test, vi } from 'vitest';
import { device, firmware, MockBackend } from '../backend/mock';
import { Fleet } from '../fleet.svelte';
import FirmwareView from '../../views/FirmwareView.svelte';
import SettingsView from '../../views/SettingsView.svelte';
import TeamView from '../../views/TeamView.svelte';
import { can, rolesUpTo, whoLabel } from './access.svelte';

async function started(backend: MockBackend) {
  const fleet = new Fleet(backend);
  await fleet.reload();
  return fleet;
}

describe('roles in the UI', () => {
  test('a viewer sees the library but no upload, deploy or delete', async () => {
    const backend = new MockBackend().asRole('viewer');
    backend.firmwareList = [firmware(1)];
    backend.devices = [device('AA:00:00:00:00:01')];
    const fleet = await started(backend);
    expect(can('viewer')).toBe(true);
    expect(can('operator')).toBe(false);
    render(FirmwareView, { fleet });
    expect(await screen.findByText(firmware(1).filename)).toBeTruthy();
    expect(screen.queryByRole('button', { name: 'Deploy…' })).toBeNull();
    expect(screen.queryByRole('button', { name: 'Delete' })).toBeNull();
    expect(screen.queryByLabelText('Drop firmware here')).toBeNull();
    expect(screen.getByText(/watch folders needs the admin role/)).toBeTruthy();
  });

  test('an operator deploys but does not delete', async () => {
    const backend = new MockBackend().asRole('operator');
    backend.firmwareList = [firmware(1)];
    const fleet = await started(backend);
    render(FirmwareView, { fleet });
    expect(await screen.findByRole('button', { name: 'Deploy…' })).toBeTruthy();
    expect(screen.queryByRole('button', { name: 'Delete' })).toBeNull();
  });

  test('an admin makes a token, sees its secret once, and revokes it', async () => {
    const backend = new MockBackend().asRole('admin');
    const fleet = await started(backend);
    render(TeamView, { fleet });
    const roles = (await screen.findByLabelText('Token role')) as HTMLSelectElement;
    // Nobody hands out more than their own role.
    expect([...roles.options].map((o) => o.value)).toEqual(['viewer', 'operator', 'admin']);
    await fireEvent.input(screen.getByLabelText('Token name'), { target: { value: 'ci-blink' } });
    await fireEvent.change(roles, { target: { value: 'operator' } });
    await fireEvent.input(screen.getByLabelText('Upload scope project'), { target: { value: 'blink' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Make token' }));
    expect(backend.calls).toContain('createToken ci-blink operator upload:blink');
    const note = await screen.findByTestId('token-created');
    expect(within(note).getByText(/not shown again/)).toBeTruthy();
    await fireEvent.click(within(note).getByRole('button', { name: 'Done' }));
    expect(screen.queryByTestId('token-created')).toBeNull();
    const row = await screen.findByTestId('token-row');
    await fireEvent.click(within(row).getByRole('button', { name: 'Revoke…' }));
    await fireEvent.click(within(row).getByRole('button', { name: 'Revoke ci-blink' }));
    expect(backend.calls).toContain('revokeToken 1');
    expect(await within(await screen.findByTestId('token-row')).findByText(/revoked/)).toBeTruthy();
  });

  test('a viewer sees the settings read-only and no tokens', async () => {
    const backend = new MockBackend().asRole('viewer');
    const fleet = await started(backend);
    render(SettingsView, { fleet, baseUrl: 'http://h:1', token: 'T', onforget: () => {} });
    expect(await screen.findByTestId('settings-read-only')).toBeTruthy();
    expect(screen.getByLabelText(/Check-in interval/).matches(':disabled')).toBe(true);
    expect(screen.queryByText('API tokens')).toBeNull();
    expect(screen.getByText('Your API token')).toBeTruthy();
  });
});

describe('a signed-in person (session cookie, no token)', () => {
  test('the UI follows the session, sends its CSRF token, and signs out', async () => {
    const backend = new MockBackend();
    backend.clearToken();
    backend.session = true;
    backend.whoami = { actor: 'user:alice@lab.test', role: 'operator', scope: null, csrf: 'C5RF', organisation: { id: 'default', name: 'Default', device_path: null } };
    const fleet = new Fleet(backend);
    await fleet.start();
    expect(fleet.needsToken).toBe(false);
    expect(fleet.signedIn).toBe(true);
    expect(backend.csrf).toBe('C5RF');
    await fleet.signOut();
    expect(backend.calls).toContain('signOut');
    expect(fleet.needsToken).toBe(true);
    expect(backend.csrf).toBeNull();
    fleet.stop();
  });

  test('without a token or a session the UI asks how to connect', async () => {
    const backend = new MockBackend();
    backend.clearToken();
    const fleet = new Fleet(backend);
    await fleet.start();
    expect(fleet.needsToken).toBe(true);
  });

  test('an admin adds a member, changes their role and removes them', async () => {
    const backend = new MockBackend().asRole('admin');
    const fleet = await started(backend);
    backend.providers = { oidc: { label: 'Lab ID', login_url: '/api/v1/auth/oidc/login' }, password: true };
    render(TeamView, { fleet });
    expect(await screen.findByText(/People sign in with Lab ID or with a password/)).toBeTruthy();
    const roles = screen.getByLabelText('Member role') as HTMLSelectElement;
    expect([...roles.options].map((o) => o.value)).toEqual(['viewer', 'operator', 'admin']);
    await fireEvent.input(screen.getByLabelText('Member e-mail'), { target: { value: 'Bob@Lab.Test' } });
    await fireEvent.change(roles, { target: { value: 'operator' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Add member' }));
    expect(backend.calls).toContain('addMember Bob@Lab.Test operator');
    const row = await screen.findByTestId('member-row');
    await fireEvent.change(within(row).getByLabelText('Role of bob@lab.test'), { target: { value: 'viewer' } });
    expect(backend.calls).toContain('setMemberRole 1 viewer');
    await fireEvent.click(within(await screen.findByTestId('member-row')).getByRole('button', { name: 'Remove…' }));
    await fireEvent.click(screen.getByRole('button', { name: 'Remove bob@lab.test' }));
    expect(backend.calls).toContain('removeMember 1');
  });
});

describe('local accounts', () => {
  test('the prompt signs in with a password and the admin sets one', async () => {
    const { default: TokenPrompt } = await import('../../views/TokenPrompt.svelte');
    const backend = new MockBackend();
    backend.clearToken();
    backend.providers = { oidc: null, password: true };
    backend.passwords.set('alice@lab.test', 'correct horse battery');
    let signedIn = 0;
    render(TokenPrompt, { backend, invalid: false, onsubmit: () => {}, onsignedin: () => signedIn++ });
    await fireEvent.input(await screen.findByLabelText('E-mail'), { target: { value: 'alice@lab.test' } });
    await fireEvent.input(screen.getByLabelText('Password'), { target: { value: 'wrong one here' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    expect((await screen.findByTestId('sign-in-error')).getAttribute('data-code')).toBe('bad_credentials');
    await fireEvent.input(screen.getByLabelText('Password'), { target: { value: 'correct horse battery' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    await vi.waitFor(() => expect(signedIn).toBe(1));
  });
});

describe('rolesUpTo', () => {
  test('offers the roles up to and including one\'s own, least first', () => {
    expect(rolesUpTo('viewer')).toEqual(['viewer']);
    expect(rolesUpTo('operator')).toEqual(['viewer', 'operator']);
    expect(rolesUpTo('admin')).toEqual(['viewer', 'operator', 'admin']);
    expect(rolesUpTo('owner')).toEqual(['viewer', 'operator', 'admin', 'owner']);
  });

  test('before anyone is known, all of them (as everything is shown then)', () => {
    expect(rolesUpTo(null)).toEqual(['viewer', 'operator', 'admin', 'owner']);
    expect(rolesUpTo(undefined)).toEqual(['viewer', 'operator', 'admin', 'owner']);
  });
});

describe('whoLabel', () => {
  const org = { id: 'acme', name: 'acme lab', device_path: null };
  test('a person by address, a token by name, the server\'s own as "admin token"', () => {
    expect(whoLabel({ actor: 'user:carol@acme.test', role: 'operator', organisation: org })).toBe('carol@acme.test');
    expect(whoLabel({ actor: 'token:ci-blink', role: 'operator', organisation: org })).toBe('ci-blink');
    expect(whoLabel({ actor: 'admin', role: 'owner', organisation: org })).toBe('admin token');
  });

  test('a token named after its role (an organisation\'s first, "owner") reads as a token', () => {
    expect(whoLabel({ actor: 'token:owner', role: 'owner', organisation: org })).toBe('owner token');
  });
});

describe('organisations', () => {
  test('the owner of the server\'s own organisation makes one and sees its owner token once', async () => {
    const backend = new MockBackend();
    const fleet = await started(backend);
    render(TeamView, { fleet });
    const section = await screen.findByTestId('organisation');
    expect(within(section).getByText('Default')).toBeTruthy();
    expect(within(section).getByText(/Devices use this server's address, as before/)).toBeTruthy();
    expect(await screen.findByText('No other organisations yet.')).toBeTruthy();
    await fireEvent.input(screen.getByLabelText('Organisation id'), { target: { value: 'acme' } });
    await fireEvent.input(screen.getByLabelText('Organisation name'), { target: { value: 'acme lab' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Make organisation' }));
    expect(backend.calls).toContain('createOrganisation acme acme lab');
    const note = await screen.findByTestId('organisation-created');
    expect(within(note).getByLabelText('owner token of acme').textContent).toBe('otf_acme.SECRET');
    const row = await screen.findByTestId('organisation-row');
    expect(within(row).getByLabelText('device base URL of acme').textContent).toBe(`${backend.baseUrl}/o/key-acme`);
    await fireEvent.click(within(note).getByRole('button', { name: 'Done' }));
    expect(screen.queryByTestId('organisation-created')).toBeNull();
    // The same id again: the server's refusal, as it wrote it.
    await fireEvent.input(screen.getByLabelText('Organisation id'), { target: { value: 'acme' } });
    await fireEvent.input(screen.getByLabelText('Organisation name'), { target: { value: 'again' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Make organisation' }));
    expect((await screen.findByRole('alert')).textContent).toMatch(/organisation "acme" exists already/);
  });

  test('in another organisation the page names it and its devices\' base URL, and lists no organisations', async () => {
    const backend = new MockBackend().inOrganisation('acme', 'acme lab');
    const fleet = await started(backend);
    render(TeamView, { fleet });
    const section = await screen.findByTestId('organisation');
    expect(within(section).getByText('acme lab')).toBeTruthy();
    expect(within(section).getByLabelText("devices' base URL").textContent).toBe(`${backend.baseUrl}/o/key-acme`);
    expect(screen.queryByRole('heading', { name: 'Organisations' })).toBeNull();
  });

  test('an admin of the server\'s own organisation does not get the Organisations panel', async () => {
    const backend = new MockBackend().asRole('admin');
    const fleet = await started(backend);
    render(TeamView, { fleet });
    await screen.findByTestId('organisation');
    expect(screen.queryByRole('heading', { name: 'Organisations' })).toBeNull();
  });

  test('the prompt signs in to the organisation typed, and remembers it', async () => {
    const { default: TokenPrompt } = await import('../../views/TokenPrompt.svelte');
    localStorage.removeItem('otafleet.signInOrganisation');
    const backend = new MockBackend();
    backend.clearToken();
    backend.providers = { oidc: { label: 'Lab ID', login_url: '/api/v1/auth/oidc/login' }, password: true };
    backend.organisations = [{ id: 'acme', name: 'acme lab', enrolment_key: 'k', created_at: '2026-12-07T10:00:00Z', created_by: 'admin' }];
    backend.passwords.set('bob@acme.test', 'correct horse battery');
    let signedIn = 0;
    render(TokenPrompt, { backend, invalid: false, onsubmit: () => {}, onsignedin: () => signedIn++ });
    const field = await screen.findByLabelText('Organisation');
    await fireEvent.input(field, { target: { value: 'nobody' } });
    await fireEvent.change(field);
    expect((await screen.findByTestId('organisation-error')).getAttribute('data-code')).toBe('organisation_unknown');
    expect(screen.getByTestId('sign-in').getAttribute('href')).toBeNull();
    await fireEvent.input(field, { target: { value: 'acme' } });
    await fireEvent.change(field);
    await vi.waitFor(() => expect(screen.queryByTestId('organisation-error')).toBeNull());
    expect(backend.calls).toContain('signInProviders org=acme');
    const href = new URL(screen.getByTestId('sign-in').getAttribute('href')!, location.origin);
    expect(href.pathname).toBe('/api/v1/auth/oidc/login');
    expect(href.searchParams.get('org')).toBe('acme');
    expect(href.searchParams.get('return_to')).toBe(location.pathname);
    await fireEvent.input(screen.getByLabelText('E-mail'), { target: { value: 'bob@acme.test' } });
    await fireEvent.input(screen.getByLabelText('Password'), { target: { value: 'correct horse battery' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    await vi.waitFor(() => expect(signedIn).toBe(1));
    expect(backend.calls).toContain('passwordSignIn bob@acme.test org=acme');
    expect(localStorage.getItem('otafleet.signInOrganisation')).toBe('acme');
  });
});
