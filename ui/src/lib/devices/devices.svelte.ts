// The fleet as the UI sees it: devices keyed by MAC, updated from batches of live events.
//
// Why a plain Map plus a revision counter instead of a deep $state: with 10,000 devices and
// hundreds of events per second, proxying every device object would make each change cost more
// than the frame. The Map is mutated freely inside a batch and `commit()` bumps `#rev` once,
// which re-derives the filtered, sorted view once per animation frame.
import { SvelteSet } from 'svelte/reactivity';
import type { Device, Update } from '../api/types';
import { sortVersions } from '../versions';
import { isFailed, isUpdating, showsProgress, stateLabel, targetVersion } from './status';

export type SortKey = 'name' | 'chip' | 'project' | 'version' | 'target' | 'state' | 'progress' | 'ip' | 'rssi' | 'last_seen';
export type StatusFilter = 'all' | 'online' | 'offline' | 'updating' | 'failed';

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

function sortValue(d: Device, key: SortKey): string | number | null {
  switch (key) {
    case 'name':
      return d.name || d.mac;
    case 'target':
      return targetVersion(d);
    case 'state':
      return stateLabel(d);
    case 'progress':
      return showsProgress(d.update) ? d.update.progress : null;
    case 'last_seen':
      return d.last_seen ? Date.parse(d.last_seen) : null;
    case 'ip':
      // Numeric order for IPv4 (10.0.0.9 before 10.0.0.10).
      return d.ip ? d.ip.split('.').reduce((a, o) => a * 256 + (Number(o) || 0), 0) : null;
    default:
      return d[key] ?? null;
  }
}

export function compareDevices(a: Device, b: Device, key: SortKey, dir: 1 | -1): number {
  const x = sortValue(a, key);
  const y = sortValue(b, key);
  // Missing values sort last whatever the direction: an empty column should not lead.
  if (x == null || y == null) return x == null && y == null ? collator.compare(a.mac, b.mac) : x == null ? 1 : -1;
  const c =
    typeof x === 'number' && typeof y === 'number'
      ? x - y
      : key === 'version' || key === 'target'
        ? sortVersions(String(x), String(y), collator.compare)
        : collator.compare(String(x), String(y));
  return c !== 0 ? c * dir : collator.compare(a.mac, b.mac);
}

export function matchesSearch(d: Device, q: string): boolean {
  if (!q) return true;
  const hay = `${d.name ?? ''} ${d.mac} ${d.ip ?? ''} ${d.project ?? ''} ${d.version ?? ''} ${d.chip ?? ''}`.toLowerCase();
  // Every word must match somewhere: "c3 blink" finds ESP32-C3 devices running blink.
  return q
    .toLowerCase()
    .split(/\s+/)
    .filter(Boolean)
    .every((w) => hay.includes(w));
}

export class DeviceStore {
  #map = new Map<string, Device>();
  #rev = $state(0);

  loaded = $state(false);
  search = $state('');
  status = $state<StatusFilter>('all');
  project = $state('');
  chip = $state('');
  sortKey = $state<SortKey>('name');
  sortDir = $state<1 | -1>(1);
  /** MACs ticked in the table (for "deploy to selected"). */
  selected = new SvelteSet<string>();

  all = $derived.by(() => {
    void this.#rev;
    return [...this.#map.values()];
  });

  counts = $derived.by(() => {
    let online = 0;
    let updating = 0;
    let failed = 0;
    for (const d of this.all) {
      if (d.online) online++;
      if (isUpdating(d)) updating++;
      if (isFailed(d)) failed++;
    }
    return { total: this.all.length, online, offline: this.all.length - online, updating, failed };
  });

  projects = $derived([...new Set(this.all.map((d) => d.project).filter((p): p is string => !!p))].sort(collator.compare));
  chips = $derived([...new Set(this.all.map((d) => d.chip).filter((c): c is string => !!c))].sort(collator.compare));

  /** What the table shows: filtered, searched, sorted. */
  visible = $derived.by(() => {
    void this.#rev;
    const { status, project, chip, sortKey, sortDir } = this;
    const q = this.search.trim();
    const params = [status, project, chip, sortKey, sortDir, q].join('\u0000');
    // Fast path: most live events (progress, check-ins) change neither which devices match nor
    // their order. Then the last order is reused and only the objects are refreshed: no
    // 10,000-row sort per frame during an update wave.
    if (!this.#viewDirty && this.#order?.params === params) {
      return this.#order.macs.map((m) => this.#map.get(m)!);
    }
    const rows = [...this.#map.values()].filter(
      (d) =>
        (status === 'all' ||
          (status === 'online' && d.online) ||
          (status === 'offline' && !d.online) ||
          (status === 'updating' && isUpdating(d)) ||
          (status === 'failed' && isFailed(d))) &&
        (!project || d.project === project) &&
        (!chip || d.chip === chip) &&
        matchesSearch(d, q),
    );
    rows.sort((a, b) => compareDevices(a, b, sortKey, sortDir));
    this.#order = { params, macs: rows.map((d) => d.mac) };
    this.#viewDirty = false;
    return rows;
  });

  // Plain fields (not reactive): bookkeeping for the fast path above.
  #order: { params: string; macs: string[] } | null = null;
  #viewDirty = true;

  /** Could replacing `a` by `b` change whether it is shown or where? */
  #movesInView(a: Device | undefined, b: Device): boolean {
    if (!a) return true;
    return (
      a.online !== b.online ||
      isUpdating(a) !== isUpdating(b) ||
      isFailed(a) !== isFailed(b) ||
      a.name !== b.name ||
      a.ip !== b.ip ||
      a.project !== b.project ||
      a.chip !== b.chip ||
      a.version !== b.version ||
      sortValue(a, this.sortKey) !== sortValue(b, this.sortKey)
    );
  }

  get(mac: string): Device | undefined {
    void this.#rev;
    return this.#map.get(mac);
  }

  /** Replace everything (initial load, reconnect, `lagged`). */
  setAll(list: Device[]) {
    this.#map = new Map(list.map((d) => [d.mac, d]));
    this.#viewDirty = true;
    for (const mac of [...this.selected]) if (!this.#map.has(mac)) this.selected.delete(mac);
    this.loaded = true;
    this.commit();
  }

  // The apply* methods change the map without notifying; the caller commits once per batch.
  applyDevice(d: Device) {
    if (this.#movesInView(this.#map.get(d.mac), d)) this.#viewDirty = true;
    this.#map.set(d.mac, d);
  }

  /** A check-in with nothing new: the device is alive, with this signal and uptime. */
  applySeen(mac: string, lastSeen: string, rssi: number | null, uptime: number | null) {
    const d = this.#map.get(mac);
    if (d && (!d.last_seen || d.last_seen <= lastSeen)) {
      this.applyDevice({ ...d, last_seen: lastSeen, rssi, uptime_s: uptime, online: true });
    }
  }

  applyRemoved(mac: string) {
    if (this.#map.delete(mac)) this.#viewDirty = true;
    this.selected.delete(mac);
  }

  applyUpdate(u: Update) {
    const d = this.#map.get(u.mac);
    // An older attempt's late event must not overwrite the current one.
    if (d && (!d.update || d.update.id <= u.id)) this.applyDevice({ ...d, update: u });
  }

  commit() {
    this.#rev++;
  }

  sortBy(key: SortKey) {
    if (this.sortKey === key) this.sortDir = this.sortDir === 1 ? -1 : 1;
    else {
      this.sortKey = key;
      this.sortDir = 1;
    }
  }

  toggle(mac: string) {
    if (this.selected.has(mac)) this.selected.delete(mac);
    else this.selected.add(mac);
  }

  /** Tick or untick every row the current filter shows. */
  toggleAllVisible() {
    const rows = this.visible;
    const all = rows.length > 0 && rows.every((d) => this.selected.has(d.mac));
    for (const d of rows) {
      if (all) this.selected.delete(d.mac);
      else this.selected.add(d.mac);
    }
  }
}
