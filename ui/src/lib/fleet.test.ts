import { describe, expect, test, vi } from 'vitest';
import { BackendError } from './backend/backend';
import { MockBackend, deployment, device, firmware, host, update } from './backend/mock';
import { Fleet } from './fleet.svelte';
import { EventBatcher } from './live';

/** A scheduler the test fires by hand, standing in for requestAnimationFrame. */
function manualFrames() {
  const pending: (() => void)[] = [];
  return { schedule: (f: () => void) => void pending.push(f), frame: () => pending.splice(0).forEach((f) => f()) };
}

describe('EventBatcher', () => {
  test('hundreds of events become one delivery per frame', () => {
    const frames = manualFrames();
    const got: number[][] = [];
    const b = new EventBatcher<number>((batch) => got.push(batch), frames.schedule);
    for (let i = 0; i < 500; i++) b.push(i);
    expect(got).toHaveLength(0);
    frames.frame();
    expect(got).toHaveLength(1);
    expect(got[0]).toHaveLength(500);
    b.push(1);
    frames.frame();
    expect(got).toHaveLength(2);
  });
});

describe('Fleet', () => {
  test('loads, then applies live events in frame batches', async () => {
    const b = new MockBackend();
    b.devices = [device('A1')];
    const frames = manualFrames();
    const fleet = new Fleet(b, frames.schedule);
    await fleet.start();
    expect(fleet.devices.counts.total).toBe(1);
    b.emit({ type: 'device', device: device('A2') });
    for (let p = 0; p <= 100; p += 10) b.emit({ type: 'update', update: update('A1', { progress: p }) });
    b.emit({ type: 'firmware', firmware: firmware(5) });
    expect(fleet.devices.counts.total).toBe(1); // not before the frame
    frames.frame();
    expect(fleet.devices.counts.total).toBe(2);
    expect(fleet.devices.get('A1')?.update?.progress).toBe(100);
    expect(fleet.firmware.items.map((f) => f.id)).toEqual([5]);
  });

  test('MAC-less mDNS hosts load as their own rows and mdns_host events update one of them live', async () => {
    const b = new MockBackend();
    b.devices = [device('AA:00:00:00:00:01', { name: 'bench-relay' })];
    b.hosts = [host('bench-relay'), host('bench-lamp')];
    const frames = manualFrames();
    const fleet = new Fleet(b, frames.schedule);
    await fleet.start();
    expect(fleet.devices.hosts.map((h) => h.mdns_instance)).toEqual(['bench-lamp', 'bench-relay']);
    expect(fleet.devices.counts.total).toBe(1);
    // The relay says goodbye: that row goes offline, the other host and the device stay as they were.
    b.emit({ type: 'mdns_host', host: host('bench-relay', { online: false, mdns_gone: '2026-11-22T20:05:00Z' }) });
    frames.frame();
    expect(fleet.devices.getHost('_arduino._tcp/bench-relay')?.online).toBe(false);
    expect(fleet.devices.getHost('_arduino._tcp/bench-lamp')?.online).toBe(true);
    expect(fleet.devices.hosts).toHaveLength(2);
    expect(fleet.devices.get('AA:00:00:00:00:01')?.online).toBe(true);
    // A third one is announced: a third row.
    b.emit({ type: 'mdns_host', host: host('garage') });
    frames.frame();
    expect(fleet.devices.hosts.map((h) => h.mdns_instance)).toEqual(['bench-lamp', 'bench-relay', 'garage']);
  });

  test('a lagged stream reloads everything', async () => {
    const b = new MockBackend();
    const frames = manualFrames();
    const fleet = new Fleet(b, frames.schedule);
    await fleet.start();
    b.devices = [device('A1'), device('A2')];
    b.emit({ type: 'lagged' });
    frames.frame();
    await Promise.resolve();
    await new Promise((r) => setTimeout(r));
    expect(fleet.devices.counts.total).toBe(2);
  });

  test("attempts moving refresh the deployments' tallies while a page watches them", async () => {
    const b = new MockBackend();
    b.devices = [device('A1')];
    const frames = manualFrames();
    const fleet = new Fleet(b, frames.schedule);
    await fleet.start();
    const loads = () => b.calls.filter((c) => c === 'listDeployments').length;
    const before = loads();
    vi.useFakeTimers();
    try {
      const release = fleet.deployments.watch();
      b.deployments = [deployment(1, { tally: { done: 1, in_progress: 0, waiting: 0, failed: 0, held: 0, superseded: 0 } })];
      b.emit({ type: 'update', update: update('A1', { state: 'rebooting', progress: 100 }) });
      frames.frame();
      await vi.runAllTimersAsync();
      expect(loads()).toBe(before + 1);
      expect(fleet.deployments.items[0].tally.done).toBe(1);
      release();
    } finally {
      vi.useRealTimers();
    }
  });

  test('a dropped stream marks everything stale; reconnecting reloads it all and says so', async () => {
    const b = new MockBackend();
    b.devices = [device('A1', { online: true })];
    const frames = manualFrames();
    const fleet = new Fleet(b, frames.schedule, 50);
    await fleet.start();
    expect([fleet.lost, fleet.devices.stale]).toEqual([false, false]);
    // The server goes away: the stream is retried, and nothing shown can be trusted as current.
    b.status('connecting');
    expect([fleet.lost, fleet.devices.stale, fleet.reconnected]).toEqual([true, true, false]);
    // While it was down a device joined and another image was imported.
    b.devices = [device('A1', { online: false }), device('A2')];
    b.firmwareList = [firmware(9)];
    b.deployments = [deployment(4)];
    const calls = b.calls.length;
    b.status('open');
    expect(fleet.lost).toBe(true); // not before the reload that the hello brings
    b.emit({ type: 'hello' });
    frames.frame();
    await vi.waitFor(() => expect(fleet.lost).toBe(false));
    expect(b.calls.slice(calls)).toEqual(expect.arrayContaining(['listDevices', 'listFirmware', 'listDeployments']));
    expect([fleet.devices.stale, fleet.reconnected]).toEqual([false, true]);
    expect(fleet.devices.all.map((d) => d.mac)).toEqual(['A1', 'A2']);
    expect(fleet.devices.get('A1')?.online).toBe(false);
    expect(fleet.firmware.items.map((f) => f.id)).toEqual([9]);
    expect(fleet.deployments.items.map((d) => d.id)).toEqual([4]);
    await vi.waitFor(() => expect(fleet.reconnected).toBe(false));
  });

  test('the first connection is not a lost one; a refused stream asks for the token', async () => {
    const b = new MockBackend();
    const fleet = new Fleet(b);
    b.subscribe = (_e, onStatus) => (onStatus?.('connecting'), () => {});
    await fleet.start();
    expect(fleet.lost).toBe(false);
    let status!: (s: 'down') => void;
    b.subscribe = (_e, onStatus) => ((status = onStatus!), () => {});
    await fleet.start();
    b.listError = new BackendError('admin_token_invalid', 'the admin token is wrong', 401);
    status('down');
    await vi.waitFor(() => expect(fleet.needsToken).toBe(true));
  });

  test('asks for a token on auth errors (by code), shows other errors', async () => {
    const b = new MockBackend();
    b.listError = new BackendError('admin_token_invalid', 'the admin token is wrong', 401);
    const fleet = new Fleet(b);
    await fleet.start();
    expect(fleet.needsToken).toBe(true);
    b.listError = new BackendError('network', 'Cannot reach the otafleet server');
    await fleet.useToken('T2');
    expect(fleet.needsToken).toBe(false);
    expect(fleet.error?.code).toBe('network');
  });
});

describe('desktop notifications', () => {
  test('one notification per batch for finished and failed updates, none in a browser', async () => {
    const b = new MockBackend();
    b.devices = [
      device('A1', { name: 'one', update: update('A1', { id: 1, state: 'rebooting' }) }),
      device('A2', { name: 'two', update: update('A2', { id: 2, state: 'downloading' }) }),
    ];
    const frames = manualFrames();
    const fleet = new Fleet(b, frames.schedule);
    await fleet.start();
    b.emit({ type: 'update', update: update('A1', { id: 1, state: 'done', progress: 100 }) });
    frames.frame(); // no native adapter: nothing to call, nothing breaks
    const notes: string[] = [];
    b.native = {
      notify: async (t, body) => void notes.push(`${t}: ${body}`),
      pickFirmware: async () => {},
      importPaths: async () => [],
      onImportResults: async () => () => {},
    };
    b.emit({ type: 'update', update: update('A2', { id: 2, state: 'failed', error: 'flash write error' }) });
    b.emit({ type: 'update', update: update('A2', { id: 2, state: 'failed', error: 'flash write error' }) });
    frames.frame();
    expect(notes).toEqual(['Update failed: two: see the device table for the reason.']);
  });
});
