import { describe, expect, test } from 'vitest';
import { device, host, update } from '../backend/mock';
import { DeviceStore, compareDevices, compareMacs, filtersFromQuery, filtersToQuery, hasTag, matchesSearch } from './devices.svelte';
import { stateLabel, targetVersion } from './status';

describe('DeviceStore', () => {
  test('filters by status, project and search, and sorts with missing values last', () => {
    const s = new DeviceStore();
    s.setAll([
      device('AA:00:00:00:00:03', { name: 'gamma', ip: '10.0.0.10', online: false }),
      device('AA:00:00:00:00:01', { name: 'alpha', ip: '10.0.0.9', update: update('AA:00:00:00:00:01', { progress: 40 }) }),
      device('AA:00:00:00:00:02', { name: 'beta', ip: null, project: 'door', chip: 'esp32c3' }),
    ]);
    expect(s.counts).toEqual({ total: 3, online: 2, offline: 1, updating: 1, failed: 0 });
    expect(s.visible.map((d) => d.name)).toEqual(['alpha', 'beta', 'gamma']);
    s.sortBy('ip');
    expect(s.visible.map((d) => d.name)).toEqual(['alpha', 'gamma', 'beta']); // numeric IP order, null last
    s.sortBy('ip');
    expect(s.visible.map((d) => d.name)).toEqual(['gamma', 'alpha', 'beta']); // still last when descending
    s.status = 'updating';
    expect(s.visible.map((d) => d.name)).toEqual(['alpha']);
    s.status = 'all';
    s.project = 'door';
    expect(s.visible.map((d) => d.name)).toEqual(['beta']);
    s.project = '';
    s.search = 'c3 door';
    expect(s.visible.map((d) => d.name)).toEqual(['beta']);
    expect(s.projects).toEqual(['blink', 'door']);
    expect(s.chips).toEqual(['esp32', 'esp32c3']);
  });

  test('sorts the version column by version order, not by text', () => {
    const s = new DeviceStore();
    s.setAll([
      device('AA:00:00:00:00:01', { name: 'release', version: '1.0.0' }),
      device('AA:00:00:00:00:02', { name: 'rc10', version: '1.0.0-rc.10' }),
      device('AA:00:00:00:00:03', { name: 'hash', version: 'd4572e1' }),
      device('AA:00:00:00:00:04', { name: 'rc9', version: '1.0.0-rc.9' }),
      device('AA:00:00:00:00:05', { name: 'built', version: '1.0.0+build.7' }),
    ]);
    s.sortBy('version');
    expect(s.visible.map((d) => d.name)).toEqual(['rc9', 'rc10', 'release', 'built', 'hash']);
  });

  test('applies a batch of events and notifies once on commit', () => {
    const s = new DeviceStore();
    s.setAll([device('AA:00:00:00:00:01')]);
    const before = s.visible;
    s.applyDevice(device('AA:00:00:00:00:02'));
    s.applyUpdate(update('AA:00:00:00:00:01', { id: 5, progress: 10 }));
    expect(s.visible).toBe(before); // nothing re-derived until the batch is committed
    s.commit();
    expect(s.visible).toHaveLength(2);
    expect(s.get('AA:00:00:00:00:01')?.update?.progress).toBe(10);
  });

  test('a seen event refreshes last seen, signal and uptime and keeps the rest', () => {
    const s = new DeviceStore();
    const u = update('AA:00:00:00:00:01', { id: 3, state: 'done', progress: 100 });
    s.setAll([device('AA:00:00:00:00:01', { online: false, rssi: -70, update: u, name: 'bench' })]);
    s.applySeen('AA:00:00:00:00:01', '2026-11-22T21:00:00.000Z', -48, 3600);
    s.applySeen('AA:00:00:00:00:01', '2026-11-22T20:30:00.000Z', -90, 1); // older: ignored
    s.applySeen('AA:00:00:00:00:09', '2026-11-22T21:00:00.000Z', -48, 1); // unknown: ignored
    s.commit();
    const d = s.get('AA:00:00:00:00:01')!;
    expect([d.last_seen, d.rssi, d.uptime_s, d.online]).toEqual(['2026-11-22T21:00:00.000Z', -48, 3600, true]);
    expect(d.update?.id).toBe(3);
    expect(d.name).toBe('bench');
    expect(s.get('AA:00:00:00:00:09')).toBeUndefined();
  });

  test('a late event about an older update does not overwrite the current one', () => {
    const s = new DeviceStore();
    s.setAll([device('AA:00:00:00:00:01', { update: update('AA:00:00:00:00:01', { id: 9, progress: 50 }) })]);
    s.applyUpdate(update('AA:00:00:00:00:01', { id: 8, state: 'failed' }));
    s.commit();
    expect(s.get('AA:00:00:00:00:01')?.update?.id).toBe(9);
  });

  test('selection follows removals and "select all shown" respects the filter', () => {
    const s = new DeviceStore();
    s.setAll([device('A1', { project: 'x' }), device('A2', { project: 'y' })]);
    s.project = 'x';
    s.toggleAllVisible();
    expect([...s.selected]).toEqual(['A1']);
    s.applyRemoved('A1');
    s.commit();
    expect(s.selected.size).toBe(0);
  });

  test('keeps up with 10,000 devices', () => {
    const s = new DeviceStore();
    const many = Array.from({ length: 10000 }, (_, i) =>
      device(`AA:BB:CC:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`, { name: `dev-${i}` }),
    );
    s.setAll(many);
    expect(s.visible).toHaveLength(10000);
    expect(s.visible[1].name).toBe('dev-1'); // numeric collation: dev-1 < dev-10 < dev-2
    expect(s.visible[2].name).toBe('dev-2');
  });
});

describe('MACs, counts and filters', () => {
  test('MACs sort by byte value, whatever the case: …:01 < …:0a < …:0F < …:10', () => {
    const macs = ['24:0A:C4:00:00:10', '24:0a:c4:00:00:0f', '24:0A:C4:00:00:0A', '24:0A:C4:00:00:01', 'A4:00:00:00:00:00', '24:0A:C4:00:00:09'];
    expect([...macs].sort(compareMacs)).toEqual([
      '24:0A:C4:00:00:01', '24:0A:C4:00:00:09', '24:0A:C4:00:00:0A', '24:0a:c4:00:00:0f', '24:0A:C4:00:00:10', 'A4:00:00:00:00:00',
    ]);
    // Unnamed devices are listed by MAC in that order (after the named ones), both ways.
    const s = new DeviceStore();
    s.setAll(['24:0A:C4:00:00:10', '24:0A:C4:00:00:0A', '24:0A:C4:00:00:01'].map((m) => device(m)).concat(device('24:0A:C4:00:00:02', { name: 'zeta' })));
    expect(s.visible.map((d) => d.name ?? d.mac)).toEqual(['zeta', '24:0A:C4:00:00:01', '24:0A:C4:00:00:0A', '24:0A:C4:00:00:10']);
    s.sortBy('name');
    expect(s.visible.map((d) => d.name ?? d.mac)).toEqual(['zeta', '24:0A:C4:00:00:10', '24:0A:C4:00:00:0A', '24:0A:C4:00:00:01']);
    // Ties in another column fall back to the same byte order.
    s.sortBy('chip');
    expect(s.visible.map((d) => d.mac)).toEqual(['24:0A:C4:00:00:01', '24:0A:C4:00:00:02', '24:0A:C4:00:00:0A', '24:0A:C4:00:00:10']);
  });

  test('a MAC is found however it is typed: without separators, with dashes or dots, any case', () => {
    const d = device('24:0A:C4:12:00:7F', { name: 'bench' });
    for (const q of ['240ac412007f', '240AC4', '24-0a-c4-12-00-7f', '240a.c412.007f', '24:0a:c4', '12007F', 'bench 0ac4'])
      expect(matchesSearch(d, q), q).toBe(true);
    for (const q of ['240ac5', '24-0a-c5', 'zz:0a']) expect(matchesSearch(d, q), q).toBe(false);
  });

  test('the status buttons count within the project, chip and search filters', () => {
    const s = new DeviceStore();
    s.setAll([
      device('AA:00:00:00:00:01', { project: 'door', chip: 'esp32c3' }),
      device('AA:00:00:00:00:02', { project: 'door', chip: 'esp32', online: false }),
      device('AA:00:00:00:00:03', { project: 'blink', update: update('AA:00:00:00:00:03', { state: 'failed' }) }),
      device('AA:00:00:00:00:04', { project: 'blink', update: update('AA:00:00:00:00:04', { state: 'downloading' }) }),
    ]);
    expect(s.filteredCounts).toEqual({ total: 4, online: 3, offline: 1, updating: 1, failed: 1 });
    s.project = 'door';
    expect(s.filteredCounts).toEqual({ total: 2, online: 1, offline: 1, updating: 0, failed: 0 });
    s.chip = 'esp32c3';
    expect(s.filteredCounts).toEqual({ total: 1, online: 1, offline: 0, updating: 0, failed: 0 });
    s.project = '';
    s.chip = '';
    s.search = 'blink';
    expect(s.filteredCounts).toEqual({ total: 2, online: 2, offline: 0, updating: 1, failed: 1 });
    // The fleet-wide summary is not filtered.
    expect(s.counts.total).toBe(4);
    // A button's count is the number of rows it shows.
    s.status = 'failed';
    expect(s.visible).toHaveLength(s.filteredCounts.failed);
  });

  test('filters go to and come back from the URL query', () => {
    const f = { search: 'bench 24:0a', status: 'failed' as const, project: 'door controller', chip: 'esp32c3', tag: 'rack 2' };
    const q = filtersToQuery(f);
    expect(q).toBe('q=bench+24%3A0a&status=failed&project=door+controller&chip=esp32c3&tag=rack+2');
    expect(filtersFromQuery(`?${q}`)).toEqual(f);
    expect(filtersToQuery({ search: ' ', status: 'all', project: '', chip: '', tag: '' })).toBe('');
    expect(filtersFromQuery('?status=bogus&x=1')).toEqual({ search: '', status: 'all', project: '', chip: '', tag: '' });
  });
});

describe('names, notes and tags', () => {
  const fleet = () => [
    // The admin's name hides the one the device reports: both are found.
    device('AA:00:00:00:00:01', { name: 'Boiler room', name_source: 'admin', admin_name: 'Boiler room', reported_name: 'esp-7f3a', tags: ['Basement', 'heating'] }),
    device('AA:00:00:00:00:02', { name: 'porch', name_source: 'reported', reported_name: 'porch', notes: 'Replaced the relay board in March', tags: ['outside'] }),
    device('AA:00:00:00:00:03', { name: null, tags: [] }),
  ];

  test('the search finds the shown name, the reported name behind the admin\'s, a tag and the notes', () => {
    const s = new DeviceStore();
    s.setAll(fleet());
    const find = (q: string) => ((s.search = q), s.visible.map((d) => d.mac.slice(-2)));
    expect(find('boiler')).toEqual(['01']);
    expect(find('esp-7f3a')).toEqual(['01']);
    expect(find('heating')).toEqual(['01']);
    expect(find('relay board')).toEqual(['02']);
    expect(find('outside porch')).toEqual(['02']);
    expect(find('basement relay')).toEqual([]);
    expect(s.filteredCounts.total).toBe(0);
  });

  test('the tag filter keeps the devices with that tag, whatever its case, and counts within it', () => {
    const s = new DeviceStore();
    s.setAll(fleet());
    expect(s.tags).toEqual(['Basement', 'heating', 'outside']);
    s.tag = 'basement';
    expect(s.visible.map((d) => d.mac.slice(-2))).toEqual(['01']);
    expect(s.filteredCounts.total).toBe(1);
    s.search = 'porch';
    expect(s.visible).toEqual([]);
    s.search = '';
    s.tag = 'outside';
    expect(s.visible.map((d) => d.mac.slice(-2))).toEqual(['02']);
    expect(hasTag(fleet()[2], '')).toBe(true);
    expect(matchesSearch(fleet()[2], '')).toBe(true);
  });

  test('a rename lands in the view at once: the fast path does not keep the old order', () => {
    const s = new DeviceStore();
    s.setAll(fleet());
    expect(s.visible.map((d) => d.name)).toEqual(['Boiler room', 'porch', null]);
    s.applyDevice({ ...s.get('AA:00:00:00:00:01')!, name: 'zz attic', admin_name: 'zz attic' });
    s.commit();
    expect(s.visible.map((d) => d.name)).toEqual(['porch', 'zz attic', null]);
    // A tag added to a device makes it match the filter.
    s.tag = 'attic';
    expect(s.visible).toEqual([]);
    s.applyDevice({ ...s.get('AA:00:00:00:00:02')!, tags: ['outside', 'Attic'] });
    s.commit();
    expect(s.visible.map((d) => d.name)).toEqual(['porch']);
  });
});

describe('MAC-less mDNS hosts', () => {
  test('two hosts stay two rows, apart from the devices, and a host never merges with a device', () => {
    const s = new DeviceStore();
    s.setAll([device('AA:00:00:00:00:01', { name: 'bench-relay', source: 'mdns' })], [host('bench-relay'), host('bench-lamp')]);
    expect(s.hosts.map((h) => h.key)).toEqual(['_arduino._tcp/bench-lamp', '_arduino._tcp/bench-relay']);
    expect(s.all.map((d) => d.mac)).toEqual(['AA:00:00:00:00:01']);
    expect(s.counts.total).toBe(1);
    expect(s.visibleHosts).toHaveLength(2);
    // The same instance under another service is another host.
    s.applyHost(host('bench-lamp', { key: '_esphomelib._tcp/bench-lamp', mdns_service: '_esphomelib._tcp' }));
    s.commit();
    expect(s.hosts).toHaveLength(3);
  });

  test('the search and the device-only filters apply to hosts too', () => {
    const s = new DeviceStore();
    s.setAll([device('AA:00:00:00:00:01')], [host('bench-relay', { mdns_txt: { board: 'esp32s3' } }), host('bench-lamp')]);
    s.search = 'esp32s3';
    expect(s.visibleHosts.map((h) => h.mdns_instance)).toEqual(['bench-relay']);
    s.search = '';
    s.tag = 'x';
    expect(s.visibleHosts).toEqual([]);
    s.tag = '';
    s.status = 'online';
    expect(s.visibleHosts).toEqual([]);
  });
});

describe('status helpers', () => {
  test('target version and state label', () => {
    const d = device('A', { update: update('A', { state: 'offered' }) });
    expect(targetVersion(d)).toBe('2.0.0');
    expect(stateLabel(d)).toBe('update offered');
    const done = device('A', { update: update('A', { state: 'done' }), online: false });
    expect(targetVersion(done)).toBeNull();
    expect(stateLabel(done)).toBe('offline');
  });

  test('search needs every word', () => {
    const d = device('24:0A:C4:00:00:01', { name: 'Bench 1', ip: '192.168.1.5' });
    expect(matchesSearch(d, 'bench 192.168')).toBe(true);
    expect(matchesSearch(d, 'bench door')).toBe(false);
    expect(compareDevices(d, d, 'name', 1)).toBe(0);
  });
});

describe('DeviceStore fast path', () => {
  test('progress that cannot move a row keeps the order but shows the new values', () => {
    const s = new DeviceStore();
    s.setAll([
      device('A1', { name: 'a', update: update('A1', { id: 1, progress: 10 }) }),
      device('A2', { name: 'b', update: update('A2', { id: 2, progress: 50 }) }),
    ]);
    expect(s.visible.map((d) => d.mac)).toEqual(['A1', 'A2']);
    s.applyUpdate(update('A1', { id: 1, progress: 90 }));
    s.commit();
    expect(s.visible.map((d) => [d.mac, d.update?.progress])).toEqual([['A1', 90], ['A2', 50]]);
  });

  test('when the sort column is the one that changed, rows move', () => {
    const s = new DeviceStore();
    s.setAll([
      device('A1', { name: 'a', update: update('A1', { id: 1, progress: 10 }) }),
      device('A2', { name: 'b', update: update('A2', { id: 2, progress: 50 }) }),
    ]);
    s.sortBy('progress');
    expect(s.visible.map((d) => d.mac)).toEqual(['A1', 'A2']);
    s.applyUpdate(update('A1', { id: 1, progress: 90 }));
    s.commit();
    expect(s.visible.map((d) => d.mac)).toEqual(['A2', 'A1']);
  });

  test('a device going offline leaves the "online" filter; a renamed one is re-sorted', () => {
    const s = new DeviceStore();
    s.setAll([device('A1', { name: 'a' }), device('A2', { name: 'b' })]);
    s.status = 'online';
    expect(s.visible).toHaveLength(2);
    s.applyDevice(device('A1', { name: 'a', online: false }));
    s.commit();
    expect(s.visible.map((d) => d.mac)).toEqual(['A2']);
    s.status = 'all';
    s.applyDevice(device('A2', { name: '0-first' }));
    s.commit();
    expect(s.visible.map((d) => d.mac)).toEqual(['A2', 'A1']);
  });
});
