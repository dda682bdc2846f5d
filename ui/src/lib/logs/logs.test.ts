import { describe, expect, it } from 'vitest';
import { BackendError } from '../backend/backend';
import { MockBackend } from '../backend/mock';
import type { LogLine } from '../api/types';
import { KEEP_LINES, LogView } from './logs.svelte';

const MAC = 'AA:00:00:00:00:01';
let seq = 0;
function line(text: string, level: LogLine['level'] = 'info', scope: string | null = 'app'): LogLine {
  seq += 1;
  return { seq, received_at: '2026-12-06T05:00:00Z', level, scope, text, device_time: null };
}
/** Runs queued frames at once. */
const now = (f: () => void) => f();
const tick = () => new Promise((r) => setTimeout(r, 0));

describe('LogView', () => {
  it('holds the lease while watching and releases it on stop', async () => {
    const b = new MockBackend();
    b.logLines.set(MAC, [line('booted')]);
    const v = new LogView(b, MAC, now);
    v.start();
    v.start();
    await tick();
    expect(b.logWatchers.get(MAC)?.size).toBe(1);
    expect(v.status).toBe('open');
    expect(v.lines.map((l) => l.text)).toEqual(['booted']);
    b.emitLogs(MAC, [line('wifi up')]);
    expect(v.lines.map((l) => l.text)).toEqual(['booted', 'wifi up']);
    v.stop();
    expect(b.logWatchers.get(MAC)?.size).toBe(0);
    expect(b.calls).toContain(`unwatchLogs ${MAC}`);
    expect(v.status).toBe('idle');
  });

  it('says why a device cannot send logs', async () => {
    const b = new MockBackend();
    b.logRefusal = new BackendError('logs_unsupported', 'stock updaters have no log channel', 409);
    const v = new LogView(b, MAC, now);
    v.start();
    await tick();
    expect(v.status).toBe('refused');
    expect(v.refusal).toEqual({ code: 'logs_unsupported', message: 'stock updaters have no log channel' });
  });

  it('filters by level and text, pauses without losing lines, and keeps the newest', async () => {
    const b = new MockBackend();
    const v = new LogView(b, MAC, now);
    v.start();
    await tick();
    b.emitLogs(MAC, [line('disk full', 'error'), line('retrying', 'warn', 'store'), line('tick', 'debug')]);
    v.level = 'warn';
    expect(v.shown.map((l) => l.text)).toEqual(['disk full', 'retrying']);
    v.search = 'STORE';
    expect(v.shown.map((l) => l.text)).toEqual(['retrying']);
    v.level = 'verbose';
    v.search = '';
    v.pause();
    b.emitLogs(MAC, [line('while paused')]);
    expect(v.lines).toHaveLength(3);
    expect(v.held).toBe(1);
    v.resume();
    expect(v.lines.at(-1)?.text).toBe('while paused');
    expect(v.held).toBe(0);
    expect(v.text()).toContain('ERROR   [app] disk full');

    b.emitLogs(MAC, Array.from({ length: KEEP_LINES + 10 }, (_, i) => line(`n${i}`)));
    expect(v.lines).toHaveLength(KEEP_LINES);
    expect(v.lines.at(-1)?.text).toBe(`n${KEEP_LINES + 9}`);
  });

  it('draws a burst once per frame', async () => {
    const b = new MockBackend();
    const frames: (() => void)[] = [];
    const v = new LogView(b, MAC, (f) => frames.push(f));
    v.start();
    await tick();
    for (let i = 0; i < 50; i++) b.emitLogs(MAC, [line(`burst ${i}`)]);
    expect(frames).toHaveLength(1);
    expect(v.lines).toHaveLength(0);
    frames[0]();
    expect(v.lines).toHaveLength(50);
  });
});
