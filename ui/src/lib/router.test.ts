import { describe, expect, test } from 'vitest';
import { href, parse, type Route } from './router.svelte';

describe('router', () => {
  test('paths and routes round-trip, the Deployments page with or without one opened', () => {
    const routes: Route[] = [
      { name: 'devices' },
      { name: 'device', mac: '24:0A:C4:00:00:01' },
      { name: 'device', mac: '24:0A:C4:00:00:01', tab: 'logs' },
      { name: 'device', mac: '24:0A:C4:00:00:01', tab: 'reports' },
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
    // A device tab is part of the path (reloads and links keep it); an unknown one is the overview.
    expect(href({ name: 'device', mac: '24:0A:C4:00:00:01', tab: 'logs' })).toBe('/devices/24%3A0A%3AC4%3A00%3A00%3A01/logs');
    expect(href({ name: 'device', mac: 'AA:BB:CC:DD:EE:FF', tab: 'overview' })).toBe(href({ name: 'device', mac: 'AA:BB:CC:DD:EE:FF' }));
    expect(parse('/devices/AA:BB:CC:DD:EE:FF/nonsense')).toEqual({ name: 'device', mac: 'AA:BB:CC:DD:EE:FF' });
  });
});
