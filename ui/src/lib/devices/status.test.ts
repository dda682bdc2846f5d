import { describe, expect, test } from 'vitest';
import type { DeviceAuth, UpdateFailure, UpdateState } from '../api/types';
import { device, update } from '../backend/mock';
import { connectionLabel, DEVICE_AUTH, FAILURE_HINTS, failureHint, failuresByKind, failureText, isDone, isFailed, isUpdating, showsProgress, stateLabel, targetVersion, UPDATE_FAILURES, UPDATE_STATES } from './status';

// Every variant of the server's UpdateState, spelled out once here: if the Rust enum gains one,
// `UPDATE_STATES` stops type-checking, and this list (typed by the same enum) stops compiling too.
const ALL: UpdateState[] = ['offered', 'downloading', 'verifying', 'flashing', 'rebooting', 'installing', 'interrupted', 'done', 'failed', 'cancelled'];

describe('UPDATE_STATES', () => {
  test('has one entry per server state, each with words of its own', () => {
    expect(Object.keys(UPDATE_STATES).sort()).toEqual([...ALL].sort());
    for (const s of ALL) expect(UPDATE_STATES[s].label).not.toBe('');
  });

  test('a state is under way, went wrong, or finished', () => {
    const moving = ALL.filter((s) => UPDATE_STATES[s].moving);
    expect(moving).toEqual(['offered', 'downloading', 'verifying', 'flashing', 'rebooting', 'installing']);
    expect(ALL.filter((s) => UPDATE_STATES[s].problem)).toEqual(['interrupted', 'failed']);
    expect(ALL.filter((s) => UPDATE_STATES[s].finished)).toEqual(['done', 'failed', 'cancelled']);
  });

  test('a cancelled attempt is neither updating nor failed, and shows no bar or target', () => {
    const d = device('A', { update: update('A', { state: 'cancelled' }), online: true });
    expect([isUpdating(d), isFailed(d), showsProgress(d.update), targetVersion(d)]).toEqual([false, false, false, null]);
    expect(stateLabel(d)).toBe('online');
  });

  test('a failed attempt keeps its bar and target; done has neither', () => {
    const failed = device('A', { update: update('A', { state: 'failed', version: '2.0.0' }) });
    expect([isFailed(failed), showsProgress(failed.update), targetVersion(failed)]).toEqual([true, true, '2.0.0']);
    expect(isDone(update('A', { state: 'done' }))).toBe(true);
    expect(isDone(update('A', { state: 'rebooting' }))).toBe(false);
  });
});

describe('UPDATE_FAILURES', () => {
  const KINDS: UpdateFailure[] = ['device_reported', 'rolled_back', 'not_installed', 'download_cut', 'superseded', 'stopped', 'image_deleted'];
  test('one line per kind; the server\'s own words first', () => {
    expect(Object.keys(UPDATE_FAILURES).sort()).toEqual([...KINDS].sort());
    expect(failureText(update('A', { state: 'failed', error: 'flash write failed', failure: 'device_reported' }))).toBe('flash write failed');
    expect(failureText(update('A', { state: 'cancelled', error: null, failure: 'superseded' }))).toBe('replaced by a newer deployment');
    expect(failureText(update('A', { state: 'failed', error: null }))).toBe('');
  });
});

describe('FAILURE_HINTS', () => {
  const KINDS: UpdateFailure[] = ['device_reported', 'rolled_back', 'not_installed', 'download_cut', 'superseded', 'stopped', 'image_deleted'];
  test('every kind says what to check, by the kind and never by the error text', () => {
    expect(Object.keys(FAILURE_HINTS).sort()).toEqual([...KINDS].sort());
    for (const k of KINDS) expect(FAILURE_HINTS[k].short.length).toBeLessThan(FAILURE_HINTS[k].hint.length);
    const rolled = failureHint(update('A', { state: 'failed', failure: 'rolled_back', error: 'device still runs the previous image' }));
    expect(rolled?.short).toMatch(/did not boot/);
    expect(rolled?.hint).toMatch(/serial log/);
    expect(rolled?.hint).toMatch(/partition/);
    expect(failureHint(update('A', { state: 'failed', failure: 'not_installed' }))?.hint).toMatch(/free OTA space.*partition.*signature/s);
    expect(failureHint(update('A', { state: 'interrupted', failure: 'download_cut' }))?.short).toMatch(/Wi-Fi or power.*retries/);
    // Words in the error text that name another kind change nothing: the kind decides.
    expect(failureHint(update('A', { state: 'failed', failure: 'device_reported', error: 'rolled back, download cut' }))).toBe(FAILURE_HINTS.device_reported);
    expect(failureHint(update('A', { state: 'failed', failure: null, error: 'rolled back' }))).toBeNull();
    expect(failureHint(null)).toBeNull();
  });

  test('failed attempts grouped by kind, largest group first; done and moving ones are not failures', () => {
    const u = (state: UpdateState, failure: UpdateFailure | null) => update('A', { state, failure });
    expect(failuresByKind([
      u('failed', 'device_reported'), u('failed', 'rolled_back'), u('interrupted', 'download_cut'), u('failed', 'rolled_back'),
      u('done', null), u('downloading', null), u('cancelled', 'superseded'), null, u('failed', null),
    ])).toEqual([
      { kind: 'rolled_back', count: 2 }, { kind: 'device_reported', count: 1 }, { kind: 'download_cut', count: 1 }, { kind: null, count: 1 },
    ]);
  });
});

describe('DEVICE_AUTH', () => {
  test('one wording per auth the server derives; a stock client says plainly it holds no token', () => {
    const ALL_AUTH: DeviceAuth[] = ['token', 'api_key', 'shared_secret', 'mac', 'pending_enrolment', 'unclaimed'];
    expect(Object.keys(DEVICE_AUTH).sort()).toEqual([...ALL_AUTH].sort());
    expect(DEVICE_AUTH.mac.label).toBe('MAC only');
    expect(DEVICE_AUTH.mac.detail).toMatch(/holds no token/);
    expect(DEVICE_AUTH.shared_secret.label).toMatch(/legacy/);
  });
});

describe('connectionLabel', () => {
  test('says how the last check-in came, from device.tls', () => {
    expect([true, false, null].map(connectionLabel)).toEqual(['HTTPS', 'Plain HTTP', 'not known yet']);
  });
});
