import { fireEvent, render, screen, waitFor, within } from '@testing-library/svelte';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { CA_SHA256, MockBackend, device, tlsInfo } from '../backend/mock';
import { Fleet } from '../fleet.svelte';
import { copyText } from '../clipboard';
import { fromNow } from '../format';
import SettingsView from '../../views/SettingsView.svelte';
import DevicesView from '../../views/DevicesView.svelte';
import TlsSettings from './TlsSettings.svelte';
import { TlsStore, markPlainHttp } from './tls.svelte';

/** Stand-in for navigator.clipboard (jsdom has none); restored after each test. */
function fakeClipboard() {
  const writeText = vi.fn(async (_text: string) => {});
  Object.defineProperty(navigator, 'clipboard', { configurable: true, value: { writeText } });
  return writeText;
}
afterEach(() => {
  Reflect.deleteProperty(navigator, 'clipboard');
  vi.restoreAllMocks();
});

async function settingsWith(backend: MockBackend) {
  const fleet = new Fleet(backend);
  await fleet.reload();
  render(SettingsView, { fleet, baseUrl: 'http://h:1', token: 'T', onforget: () => {} });
  return fleet;
}

describe('the Secure connection (HTTPS) section', () => {
  test('off: says HTTPS is off and how to turn it on; no fingerprint, no snippets', async () => {
    const backend = new MockBackend();
    backend.tlsAnswer = tlsInfo('off');
    await settingsWith(backend);
    const off = await screen.findByTestId('tls-off');
    expect(off.textContent).toMatch(/HTTPS is off/);
    const section = screen.getByRole('region', { name: 'Secure connection (HTTPS)' });
    expect(section.textContent).toContain('otafleet serve --tls auto');
    expect(section.textContent).toContain('--tls require');
    expect(screen.queryByTestId('ca-fingerprint')).toBeNull();
    expect(screen.queryByRole('tablist')).toBeNull();
    expect(screen.queryByRole('link', { name: /Download CA/ })).toBeNull();
  });

  test('auto: mode, addresses, fingerprint, CA download, certificate, snippets in tabs', async () => {
    const backend = new MockBackend();
    backend.tlsAnswer = tlsInfo('auto');
    await settingsWith(backend);
    expect((await screen.findByTestId('tls-mode')).textContent).toBe('HTTPS beside HTTP');
    const section = screen.getByRole('region', { name: 'Secure connection (HTTPS)' });
    expect(section.textContent).toContain('otafleet serve --tls auto');
    expect(section.textContent).toContain('https://192.168.1.20:8470');
    expect(section.textContent).toContain('https://otafleet.local:8470');
    expect(screen.getByTestId('ca-fingerprint').textContent).toBe(CA_SHA256);
    const download = screen.getByRole('link', { name: 'Download CA (otafleet-ca.pem)' }) as HTMLAnchorElement;
    expect(download.getAttribute('href')).toBe('/api/v1/tls/ca.pem');
    expect(download.getAttribute('download')).toBe('otafleet-ca.pem');
    const names = within(screen.getByLabelText('Certificate names')).getAllByText(/:/).map((e) => e.textContent);
    expect(names).toEqual(['DNS:otafleet.local', 'IP:192.168.1.20']);
    expect(screen.getByTestId('cert-expiry').textContent).toMatch(/^expires 2027-11-2\d \d\d:\d\d \((in \d+ d|\d+ d ago)\)$/);
    const tabs = within(screen.getByRole('tablist')).getAllByRole('tab').map((t) => t.textContent);
    expect(tabs).toEqual(['Arduino', 'ESP-IDF', 'esp32FOTA', 'ESP Admin credentials.h', 'curl', 'PEM']);
    expect(screen.getByRole('tab', { name: 'Arduino' }).getAttribute('aria-selected')).toBe('true');
    expect(screen.getByTestId('snippet-text').textContent).toBe(backend.tlsAnswer.snippets.find((s) => s.id === 'arduino')!.text);
    await fireEvent.click(screen.getByRole('tab', { name: 'curl' }));
    expect(screen.getByTestId('snippet-text').textContent).toBe(backend.tlsAnswer.snippets.find((s) => s.id === 'curl')!.text);
    expect(screen.queryByTestId('tls-own-cert')).toBeNull();
  });

  test('require: HTTPS only', async () => {
    const backend = new MockBackend();
    backend.tlsAnswer = tlsInfo('require');
    await settingsWith(backend);
    expect((await screen.findByTestId('tls-mode')).textContent).toBe('HTTPS only');
    expect(screen.getByRole('region', { name: 'Secure connection (HTTPS)' }).textContent).toContain('otafleet serve --tls require');
  });

  test("the admin's own certificate: names and expiry, no CA, no snippets, and it says whose it is", async () => {
    const backend = new MockBackend();
    backend.tlsAnswer = tlsInfo('user');
    await settingsWith(backend);
    expect((await screen.findByTestId('tls-own-cert')).textContent).toMatch(/certificate is your own/);
    expect(screen.getByLabelText('Certificate names').textContent).toContain('IP:192.168.1.20');
    expect(screen.getByTestId('cert-expiry').textContent).toMatch(/^expires 2027-/);
    expect(screen.queryByRole('tablist')).toBeNull();
    expect(screen.queryByTestId('ca-fingerprint')).toBeNull();
    expect(screen.queryByRole('link', { name: /Download CA/ })).toBeNull();
  });

  test('Copy puts the exact snippet text on the clipboard and says Copied', async () => {
    const writeText = fakeClipboard();
    const info = tlsInfo('auto');
    render(TlsSettings, { info, caPemUrl: '/api/v1/tls/ca.pem', plainHttp: 0 });
    await fireEvent.click(screen.getByRole('button', { name: 'Copy the Arduino snippet' }));
    const arduino = info.snippets.find((s) => s.id === 'arduino')!.text;
    expect(arduino).toContain('\n-----END CERTIFICATE-----\n');
    expect(writeText).toHaveBeenCalledWith(arduino);
    expect(await screen.findByRole('button', { name: 'Copy the Arduino snippet' })).toHaveProperty('textContent', 'Copied');
    await fireEvent.click(screen.getByRole('tab', { name: 'PEM' }));
    await fireEvent.click(screen.getByRole('button', { name: 'Copy the PEM snippet' }));
    expect(writeText).toHaveBeenLastCalledWith(info.snippets.find((s) => s.id === 'pem')!.text);
    await fireEvent.click(screen.getByRole('button', { name: 'Copy the CA fingerprint' }));
    expect(writeText).toHaveBeenLastCalledWith(CA_SHA256);
  });

  test('no clipboard: asks to copy by hand', async () => {
    render(TlsSettings, { info: tlsInfo('auto'), caPemUrl: '/x', plainHttp: 0 });
    await fireEvent.click(screen.getByRole('button', { name: 'Copy the Arduino snippet' }));
    expect((await screen.findByText(/select the text and press Ctrl\+C/)).textContent).toBeTruthy();
  });

  test('how many devices still check in over plain HTTP, with a link to the device list', async () => {
    const backend = new MockBackend();
    backend.tlsAnswer = tlsInfo('auto');
    backend.devices = [device('A1', { tls: false }), device('A2', { tls: false }), device('A3', { tls: true }), device('A4', { tls: null })];
    await settingsWith(backend);
    const count = await screen.findByTestId('plain-http-count');
    expect(count.textContent).toMatch(/2 devices still check in over plain HTTP/);
    expect(within(count).getByRole('link', { name: 'device list' }).getAttribute('href')).toBe('/');
  });
});

describe('copyText', () => {
  test('falls back to execCommand where there is no Clipboard API', async () => {
    const exec = vi.fn((_cmd: string) => true);
    Object.defineProperty(document, 'execCommand', { configurable: true, value: exec });
    expect(await copyText('a\nb')).toBe(true);
    expect(exec).toHaveBeenCalledWith('copy');
    expect(document.querySelector('textarea')).toBeNull();
    Reflect.deleteProperty(document, 'execCommand');
  });

  test('a refused Clipboard API also falls back, and says false when nothing works', async () => {
    Object.defineProperty(navigator, 'clipboard', { configurable: true, value: { writeText: () => Promise.reject(new Error('denied')) } });
    expect(await copyText('x')).toBe(false);
  });
});

describe('the plain-HTTP marker follows the server', () => {
  test('markPlainHttp: only when known and not off', () => {
    expect(markPlainHttp(null)).toBe(false);
    expect(markPlainHttp(tlsInfo('off'))).toBe(false);
    expect(markPlainHttp(tlsInfo('auto'))).toBe(true);
    expect(markPlainHttp(tlsInfo('require'))).toBe(true);
    expect(markPlainHttp(tlsInfo('user'))).toBe(true);
  });

  async function devicesWith(kind: 'off' | 'auto') {
    const backend = new MockBackend();
    backend.tlsAnswer = tlsInfo(kind);
    backend.devices = [device('A1', { tls: false }), device('A2', { tls: true })];
    const fleet = new Fleet(backend);
    await fleet.reload();
    const { container } = render(DevicesView, { fleet, baseUrl: 'http://h:1' });
    return { backend, container };
  }

  test('HTTPS served: devices on plain HTTP are marked', async () => {
    const { container } = await devicesWith('auto');
    await waitFor(() => expect(container.querySelector('[data-mac="A1"] [data-testid=plain-http]')).not.toBeNull());
    expect(container.querySelector('[data-mac="A2"] [data-testid=plain-http]')).toBeNull();
  });

  test('HTTPS off: no marker (every device is on plain HTTP)', async () => {
    const { backend, container } = await devicesWith('off');
    await waitFor(() => expect(backend.calls).toContain('tls'));
    await Promise.resolve();
    expect(container.querySelector('[data-mac="A1"]')).not.toBeNull();
    expect(container.querySelector('[data-testid=plain-http]')).toBeNull();
  });

  test('TlsInfo is asked once and shared', async () => {
    const backend = new MockBackend();
    const store = new TlsStore(backend);
    await Promise.all([store.load(), store.load()]);
    await store.load();
    expect(backend.calls.filter((c) => c === 'tls')).toHaveLength(1);
    expect(store.markPlainHttp).toBe(false);
  });
});

test('fromNow: either side of now', () => {
  const now = Date.parse('2026-11-22T20:00:00Z');
  expect(fromNow('2026-11-25T20:00:00Z', now)).toBe('in 3 d');
  expect(fromNow('2026-11-22T22:30:00Z', now)).toBe('in 2 h');
  expect(fromNow('2026-11-22T19:55:00Z', now)).toBe('5 min ago');
});
