import { describe, expect, test } from 'vitest';
import { href, parse, type Route } from './router.svelte';

describe('router', () => {
  test('paths and routes round-trip, the Deployments page with or without one opened', () => {
    const routes: Route[] = [
      { name: 'devices' },
      { name: 'device', mac: '24:0A:C4:00:00:01' },
      { name: 'deployments' },
      { name: 'deployments', id: 12 },
      { name: 'firmware' },
      { name: 'activity' },
      { name: 'settings' },
    ];
    for (const r of routes) expect(parse(href(r))).toEqual(r);
    expect(href({ name: 'deployments', id: 12 })).toBe('/deployments/12');
    expect(parse('/deployments/')).toEqual({ name: 'deployments' });
    expect(parse('/deployments/x')).toEqual({ name: 'devices' });
  });
});
