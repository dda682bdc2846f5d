import { render, screen } from '@testing-library/svelte';
import { describe, expect, test } from 'vitest';
import { device, MockBackend } from '../lib/backend/mock';
import { Fleet } from '../lib/fleet.svelte';
import DeviceDetailView from './DeviceDetailView.svelte';

describe('connection', () => {
  test('the Overview says how the device checks in: HTTPS, plain HTTP or not known yet', async () => {
    const backend = new MockBackend();
    const cases: [string, boolean | null, string][] = [
      ['24:6F:28:00:00:01', true, 'HTTPS'],
      ['24:6F:28:00:00:02', false, 'Plain HTTP'],
      ['24:6F:28:00:00:03', null, 'not known yet'],
    ];
    backend.devices = cases.map(([mac, tls]) => device(mac, { tls }));
    const fleet = new Fleet(backend, (flush) => flush());
    await fleet.start();
    for (const [mac, , words] of cases) {
      const { unmount } = render(DeviceDetailView, { fleet, mac, tab: 'overview' });
      const term = await screen.findByText('Connection');
      expect(term.nextElementSibling?.textContent).toBe(words);
      unmount();
    }
  });
});
