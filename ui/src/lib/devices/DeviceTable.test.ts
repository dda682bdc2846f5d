import { fireEvent, render, screen } from '@testing-library/svelte';
import { flushSync } from 'svelte';
import { describe, expect, test, vi } from 'vitest';
import { BackendError } from '../backend/backend';
import { device, host, update } from '../backend/mock';
import DeviceTable from './DeviceTable.svelte';
import { DeviceStore } from './devices.svelte';

const mac = (i: number) => `AA:BB:CC:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`.toUpperCase();

describe('DeviceTable', () => {
  test('renders only the rows in view out of 10,000, and follows scrolling', async () => {
    const store = new DeviceStore();
    store.setAll(Array.from({ length: 10000 }, (_, i) => device(mac(i), { name: `dev-${String(i).padStart(5, '0')}` })));
    const { container } = render(DeviceTable, { store });
    const rows = () => container.querySelectorAll('[role=row][data-mac]');
    // 600 px viewport (test-setup) / 38 px rows + overscan: a few dozen, not ten thousand.
    expect(rows().length).toBeGreaterThan(10);
    expect(rows().length).toBeLessThan(50);
    expect(rows()[0].textContent).toContain('dev-00000');
    const viewport = container.querySelector('.viewport') as HTMLElement;
    viewport.scrollTop = 38 * 5000;
    await fireEvent.scroll(viewport);
    const names = [...rows()].map((r) => r.querySelector('b')?.textContent);
    expect(names).toContain('dev-05000');
    expect(names).not.toContain('dev-00000');
  });

  test('a progress event moves the bar; sorting by a header flips order', async () => {
    const store = new DeviceStore();
    store.setAll([device('A1', { name: 'one' }), device('A2', { name: 'two' })]);
    render(DeviceTable, { store });
    store.applyUpdate(update('A1', { progress: 30 }));
    store.commit();
    flushSync();
    const bar = screen.getByRole('progressbar');
    expect(bar.getAttribute('aria-valuenow')).toBe('30');
    store.applyUpdate(update('A1', { progress: 65 }));
    store.commit();
    flushSync();
    expect(screen.getByRole('progressbar').getAttribute('aria-valuenow')).toBe('65');

    await fireEvent.click(screen.getByRole('button', { name: /^Device/ }));
    expect(store.sortDir).toBe(-1);
    const first = document.querySelector('[role=row][data-mac]');
    expect(first?.getAttribute('data-mac')).toBe('A2');
  });

  test('a long version ends in "…" in its cell and shows whole in the title', () => {
    const store = new DeviceStore();
    const long = 'v2.14.0-rc.3-187-gd4572e1-dirty'; // 31 characters, the longest a device may report
    store.setAll([device('A1', { name: 'one', version: long })]);
    const { container } = render(DeviceTable, { store });
    const cell = container.querySelector('[data-mac="A1"] [data-testid=running]') as HTMLElement;
    expect(cell.textContent).toBe(long);
    expect(cell.getAttribute('title')).toBe(long);
    expect(cell.classList.contains('trunc')).toBe(true);
  });

  test('a failed update says why on the row, not only in a tooltip', () => {
    const store = new DeviceStore();
    const why = 'flash write failed at 0x110000 (simulated bad sector)';
    store.setAll([device('A1', { name: 'one', update: update('A1', { state: 'failed', progress: 40, error: why }) })]);
    const { container } = render(DeviceTable, { store });
    const reason = container.querySelector('[data-mac="A1"] [data-testid=failure-reason]') as HTMLElement;
    expect(reason.textContent).toBe(why);
    expect(reason.getAttribute('title')).toBe(why);
  });

  test('while the connection is lost no dot is green', () => {
    const store = new DeviceStore();
    store.setAll([device('A1', { online: true }), device('A2', { online: false })]);
    const { container } = render(DeviceTable, { store });
    const dots = () => [...container.querySelectorAll('[data-testid=status-dot]')].map((d) => d.classList.contains('on'));
    expect(dots()).toEqual([true, false]);
    store.stale = true;
    flushSync();
    expect(dots()).toEqual([false, false]);
    expect(container.querySelector('[data-testid=status-dot]')?.getAttribute('title')).toBe('unknown: connection lost (was online)');
  });

  test('rename in place: Enter saves, Escape cancels, a refusal shows the server\'s message under the field', async () => {
    const store = new DeviceStore();
    store.setAll([device('A1', { name: 'esp-7f3a', name_source: 'reported', reported_name: 'esp-7f3a' })]);
    const rename = vi.fn(async (_mac: string, _name: string | null): Promise<unknown> => undefined);
    const { container } = render(DeviceTable, { store, rename });
    const input = () => container.querySelector('[data-mac="A1"] [data-testid=name-input]') as HTMLInputElement | null;

    await fireEvent.click(screen.getByRole('button', { name: 'Rename esp-7f3a' }));
    expect(input()?.value).toBe('esp-7f3a');
    await fireEvent.input(input()!, { target: { value: 'Boiler room' } });
    await fireEvent.keyDown(input()!, { key: 'Escape' });
    expect(input()).toBeNull();
    expect(rename).not.toHaveBeenCalled();

    await fireEvent.click(screen.getByRole('button', { name: 'Rename esp-7f3a' }));
    rename.mockRejectedValueOnce(new BackendError('invalid_name', 'A name holds at most 64 characters.', 422));
    await fireEvent.input(input()!, { target: { value: 'x'.repeat(65) } });
    await fireEvent.keyDown(input()!, { key: 'Enter' });
    await vi.waitFor(() => expect(container.querySelector('[data-testid=name-error]')?.textContent).toBe('A name holds at most 64 characters.'));
    expect(input()).not.toBeNull(); // still editing, the value kept to correct it

    await fireEvent.input(input()!, { target: { value: '  Boiler room ' } });
    await fireEvent.keyDown(input()!, { key: 'Enter' });
    await vi.waitFor(() => expect(input()).toBeNull());
    expect(rename.mock.calls.at(-1)).toEqual(['A1', 'Boiler room']);
  });

  test('tags show as chips; a click on one filters the table by it', async () => {
    const store = new DeviceStore();
    store.setAll([device('A1', { name: 'one', tags: ['bench', 'rack 2'] }), device('A2', { name: 'two', tags: [] })]);
    const { container } = render(DeviceTable, { store });
    const chips = [...container.querySelectorAll('[data-mac="A1"] [data-testid=tag-chip]')].map((c) => c.textContent);
    expect(chips).toEqual(['bench', 'rack 2']);
    await fireEvent.click(container.querySelectorAll('[data-mac="A1"] [data-testid=tag-chip]')[1]);
    expect(store.tag).toBe('rack 2');
    expect([...container.querySelectorAll('[role=row][data-mac]')].map((r) => r.getAttribute('data-mac'))).toEqual(['A1']);
  });

  test('MAC-less hosts follow the devices as "discovered, not enrolled" rows, one per host', () => {
    const store = new DeviceStore();
    store.setAll([device('A1', { name: 'bench-relay' })], [host('bench-relay'), host('bench-lamp', { online: false })]);
    const { container } = render(DeviceTable, { store });
    const hosts = [...container.querySelectorAll('[data-testid=host-row]')];
    expect(hosts.map((r) => r.getAttribute('data-key'))).toEqual(['_arduino._tcp/bench-lamp', '_arduino._tcp/bench-relay']);
    expect(hosts.map((r) => r.querySelector('[data-testid=host-state]')?.textContent)).toEqual(['discovered, not enrolled', 'discovered, not enrolled']);
    expect(container.querySelectorAll('[role=row][data-mac]')).toHaveLength(1);
  });

  test('a device that checks in over plain HTTP is marked beside its address; over HTTPS or not known yet, not', () => {
    const store = new DeviceStore();
    store.setAll([device('A1', { tls: false, ip: '10.0.0.7' }), device('A2', { tls: true }), device('A3', { tls: null })]);
    const { container } = render(DeviceTable, { store });
    const marker = (mac: string) => container.querySelector(`[data-mac="${mac}"] [data-testid=plain-http]`);
    expect(marker('A1')?.getAttribute('title')).toBe('Checks in over plain HTTP: its token and traffic can be read on the LAN');
    expect(marker('A1')?.parentElement?.textContent).toContain('10.0.0.7');
    expect(marker('A2')).toBeNull();
    expect(marker('A3')).toBeNull();
  });

  test('the plain-HTTP marker stays away when the page turns it off', () => {
    const store = new DeviceStore();
    store.setAll([device('A1', { tls: false })]);
    const { container } = render(DeviceTable, { store, markPlainHttp: false });
    expect(container.querySelector('[data-testid=plain-http]')).toBeNull();
  });
});
