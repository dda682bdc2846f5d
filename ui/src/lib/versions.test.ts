import { describe, expect, test } from 'vitest';
import { compareVersions, sortVersions } from './versions';

// Each list strictly ascending; every pair both ways. The same table as the server's.
function ascending(list: string[]) {
  for (let i = 0; i < list.length; i++)
    for (let j = 0; j < list.length; j++)
      expect(Math.sign(compareVersions(list[i], list[j]) ?? NaN), `${list[i]} vs ${list[j]}`).toBe(Math.sign(i - j));
}

describe('compareVersions', () => {
  test('semver 2.0.0 precedence, with the red-team cases', () => {
    ascending(['0.9.9', '1.0.0-alpha', '1.0.0-alpha.1', '1.0.0-alpha.beta', '1.0.0-beta', '1.0.0-beta.2',
      '1.0.0-beta.11', '1.0.0-rc.1', '1.0.0', '1.0.1', '1.2.0', '1.10.0', '2.0.0', '10.0.0']);
    ascending(['1.0.0-rc.2', '1.0.0-rc.9', '1.0.0-rc.10', '1.0.0-rc.100', '1.0.0']);
    ascending(['1.2.4-rc.1', '1.2.4+build.7', '1.2.5-rc.1+build.1']);
    ascending(['1.0.0-1', '1.0.0-2', '1.0.0-10', '1.0.0-RC', '1.0.0-a', '1.0.0-a.1', '1.0.0-a.1.0', '1.0.0-a-b',
      '1.0.0-rc10', '1.0.0-rc9']);
  });

  test('git describe sits between its tag and the next version', () => {
    ascending(['v1.2.3-rc.1', 'v1.2.3-rc.1-3-g1a2b3c4', '1.2.3', 'v1.2.3-1-gdeadbee', 'v1.2.3-4-gabc1234',
      'v1.2.3-10-g0123abc-dirty', '1.2.3.4', '1.2.3.4.1', '1.2.4-rc.1', '1.2.4']);
  });

  test('equal versions and what is not a version', () => {
    for (const [a, b] of [['1.2', '1.2.0'], ['v1.2.3', '1.2.3'], ['1.2.3+build.5', '1.2.3'], ['1.2.3-dirty', '1.2.3'],
      ['v1.2.3-4-gabc1234', 'v1.2.3-4-g9999999'], ['01.002.3', '1.2.3'], ['1.0.0-rc.01', '1.0.0-rc.1']]) {
      expect(compareVersions(a, b), `${a} = ${b}`).toBe(0);
      expect(compareVersions(b, a), `${b} = ${a}`).toBe(0);
    }
    for (const odd of ['9036908-dirty', 'd4572', 'heads/idf-release/v4.4-0-gd4572', '1.2.3.4.5.6', '1.0.', '1.0.0-',
      '1.0.0-rc..1', '1.0.0-rc_1', '', 'v']) {
      expect(compareVersions(odd, '1.0.0'), odd).toBeNull();
      expect(compareVersions('1.0.0', odd), odd).toBeNull();
    }
  });

  test('sorting puts versions in order and the rest after them', () => {
    const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
    const sorted = ['d4572', '1.0.0', '1.0.0-rc.10', 'abc', '1.0.0-rc.9'].sort((a, b) => sortVersions(a, b, byText));
    expect(sorted).toEqual(['1.0.0-rc.9', '1.0.0-rc.10', '1.0.0', 'abc', 'd4572']);
  });
});
