import { describe, expect, test } from 'vitest';
import type { UpdateFailure, UpdateState } from '../api/types';
import { device, update } from '../backend/mock';
import { failureText, isDone, isFailed, isUpdating, showsProgress, stateLabel, targetVersion, UPDATE_FAILURES, UPDATE_STATES } from './status';

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
