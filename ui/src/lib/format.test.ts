import { describe, expect, test } from 'vitest';
import { ago, dateTime, when } from './format';

describe('dates', () => {
  // Built from local fields, so the test holds in any time zone the machine is in.
  const local = new Date(2026, 10, 2, 9, 5, 42).toISOString();

  test('absolute times are local YYYY-MM-DD HH:MM, never a locale\'s order', () => {
    expect(dateTime(local)).toBe('2026-11-02 09:05');
    expect(dateTime(local)).not.toContain('/');
    expect(dateTime(null)).toBe('—');
  });

  test('relative ages stay relative past a day, and `when` gives both', () => {
    const t = Date.parse(local);
    expect(ago(local, t + 2_000)).toBe('just now');
    expect(ago(local, t + 3 * 60_000 + 5_000)).toBe('3 min ago');
    expect(ago(local, t + 5 * 3_600_000)).toBe('5 h ago');
    expect(ago(local, t + 3 * 86_400_000)).toBe('3 d ago');
    expect(when(local, t + 3 * 60_000)).toBe('2026-11-02 09:05 (3 min ago)');
    expect(when(null, t)).toBe('never');
  });
});
