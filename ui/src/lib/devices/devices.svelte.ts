// The fleet as the UI sees it: devices keyed by MAC, updated from batches of live events, and,
// apart from them, the MAC-less hosts heard over mDNS keyed by their `key` (`<service>/<instance>`):
// a host is never merged with a device, nor two hosts with each other.
//
// Why a plain Map plus a revision counter instead of a deep $state: with 10,000 devices and
// hundreds of events per second, proxying every device object would make each change cost more
// than the frame. The Map is mutated freely inside a batch and `commit()` bumps `#rev` once,
// which re-derives the filtered, sorted view once per animation frame.
import { SvelteSet } from 'svelte/reactivity';
import type { Device, DiscoveredHost, Update } from '../api/types';
import { sortVersions } from '../versions';
import { isFailed, isUpdating, showsProgress, stateLabel, targetVersion } from './status';

export type SortKey = 'name' | 'chip' | 'project' | 'version' | 'target' | 'state' | 'progress' | 'ip' | 'rssi' | 'last_seen';
export type StatusFilter = 'all' | 'online' | 'offline' | 'updating' | 'failed';
export const STATUS_FILTERS: readonly StatusFilter[] = ['all', 'online', 'offline', 'updating', 'failed'];

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

/** A MAC's hex digits, upper case, without separators (`24:0a:c4-…` → `240AC4…`), or null when
 *  it is not 12 hex digits. */
export function macHex(mac: string): string | null {
  const h = mac.replace(/[:.\-\s]/g, '').toUpperCase();
  return /^[0-9A-F]{12}$/.test(h) ? h : null;
}

/** MACs in byte order: `…:01` < `…:0A` < `…:10`, whatever the case. (A collator reads `0A` as the
 *  number 0 followed by a letter and puts it before `01`.) Anything that is not a MAC sorts after
 *  the MACs, by text. */
export function compareMacs(a: string, b: string): number {
  const x = macHex(a);
  const y = macHex(b);
  // Fixed-width upper-case hex: text order is byte order.
  if (x && y) return x < y ? -1 : x > y ? 1 : 0;
  if (x || y) return x ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function sortValue(d: Device, key: SortKey): string | number | null {
  switch (key) {
    case 'name':
      return d.name || null;
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
  // Unnamed devices are listed by MAC, after the named ones, in byte order both ways.
  if (key === 'name' && !a.name !== !b.name) return a.name ? -1 : 1;
  if (key === 'name' && !a.name) return compareMacs(a.mac, b.mac) * dir;
  const x = sortValue(a, key);
  const y = sortValue(b, key);
  // Missing values sort last whatever the direction: an empty column should not lead.
  if (x == null || y == null) return x == null && y == null ? compareMacs(a.mac, b.mac) : x == null ? 1 : -1;
  const c =
    typeof x === 'number' && typeof y === 'number'
      ? x - y
      : key === 'version' || key === 'target'
        ? sortVersions(String(x), String(y), collator.compare)
        : collator.compare(String(x), String(y));
  return c !== 0 ? c * dir : compareMacs(a.mac, b.mac);
}

/** Every word of `q` must match somewhere in `hay` (lower case), or, for a word made of hex digits
 *  and MAC separators, in the MAC's digits `hex`. */
function wordsMatch(hay: string, hex: string, q: string): boolean {
  return q
    .toLowerCase()
    .split(/\s+/)
    .filter(Boolean)
    .every((w) => {
      if (hay.includes(w)) return true;
      const digits = w.replace(/[:.\-]/g, '');
      return digits.length >= 2 && /^[0-9a-f]+$/.test(digits) && hex.includes(digits);
    });
}

export function matchesSearch(d: Device, q: string): boolean {
  if (!q) return true;
  // The shown name and both names behind it (the admin's hides the reported one), the tags and
  // the notes, with the MAC, IP, project, version and chip.
  const hay = [d.name, d.admin_name, d.reported_name, d.mac, d.ip, d.project, d.version, d.chip, ...(d.tags ?? []), d.notes]
    .filter(Boolean)
    .join(' ')
    .toLowerCase();
  // Every word must match somewhere: "c3 blink" finds ESP32-C3 devices running blink. A word
  // made of hex digits and MAC separators also matches the MAC's digits, however it was
  // written: 240ac4, 24-0A-C4, 240a.c412.
  return wordsMatch(hay, (macHex(d.mac) ?? '').toLowerCase(), q);
}

/** A MAC-less mDNS host matches by its name, host name, instance, service, IP and TXT values. */
export function matchesHostSearch(h: DiscoveredHost, q: string): boolean {
  if (!q) return true;
  const hay = [h.name, h.hostname, h.mdns_instance, h.mdns_service, h.ip, ...Object.values(h.mdns_txt ?? {})]
    .filter(Boolean)
    .join(' ')
    .toLowerCase();
  return wordsMatch(hay, '', q);
}

/** Tags compare without regard to case, as the server drops repeats. */
export function hasTag(d: Device, tag: string): boolean {
  if (!tag) return true;
  const t = tag.toLowerCase();
  return (d.tags ?? []).some((x) => x.toLowerCase() === t);
}

/** The filters a link or a reload keeps: `?q=…&status=…&project=…&chip=…&tag=…` (defaults left out). */
export type Filters = { search: string; status: StatusFilter; project: string; chip: string; tag: string };

export function filtersToQuery(f: Filters): string {
  const p = new URLSearchParams();
  if (f.search.trim()) p.set('q', f.search);
  if (f.status !== 'all') p.set('status', f.status);
  if (f.project) p.set('project', f.project);
  if (f.chip) p.set('chip', f.chip);
  if (f.tag) p.set('tag', f.tag);
  return p.toString();
}

export function filtersFromQuery(query: string): Filters {
  const p = new URLSearchParams(query);
  const status = p.get('status') as StatusFilter | null;
  return {
    search: p.get('q') ?? '',
    status: status && STATUS_FILTERS.includes(status) ? status : 'all',
    project: p.get('project') ?? '',
    chip: p.get('chip') ?? '',
    tag: p.get('tag') ?? '',
  };
}

type Counts = { total: number; online: number; offline: number; updating: number; failed: number };

function countOf(list: Iterable<Device>): Counts {
  let total = 0;
  let online = 0;
  let updating = 0;
  let failed = 0;
  for (const d of list) {
    total++;
    if (d.online) online++;
    if (isUpdating(d)) updating++;
    if (isFailed(d)) failed++;
  }
  return { total, online, offline: total - online, updating, failed };
}

function matchesStatus(d: Device, status: StatusFilter): boolean {
  return (
    status === 'all' ||
    (status === 'online' && d.online) ||
    (status === 'offline' && !d.online) ||
    (status === 'updating' && isUpdating(d)) ||
    (status === 'failed' && isFailed(d))
  );
}

/** What a host row is called: its announced name, else its mDNS instance. */
export function hostLabel(h: DiscoveredHost): string {
  return h.name || h.mdns_instance || h.hostname;
}

export class DeviceStore {
  #map = new Map<string, Device>();
  #hosts = new Map<string, DiscoveredHost>();
  #rev = $state(0);

  loaded = $state(false);
  search = $state('');
  status = $state<StatusFilter>('all');
  project = $state('');
  chip = $state('');
  /** Only devices with this tag (any case). */
  tag = $state('');
  sortKey = $state<SortKey>('name');
  sortDir = $state<1 | -1>(1);
  /** MACs ticked in the table (for "deploy to selected"). */
  selected = new SvelteSet<string>();
  /** The connection to the server is lost: what the store holds may be out of date, so nothing
   *  is drawn as online (Fleet sets it; a reload after reconnecting clears it). */
  stale = $state(false);

  all = $derived.by(() => {
    void this.#rev;
    return [...this.#map.values()];
  });

  /** The whole fleet (the page's summary line). */
  counts = $derived(countOf(this.all));

  /** What each status button would show with the other filters (project, chip, search) as they
   *  are: the count on a button is the number of rows a click on it gives. */
  filteredCounts = $derived.by(() => {
    const { project, chip, tag } = this;
    const q = this.search.trim();
    return countOf(
      this.all.filter((d) => (!project || d.project === project) && (!chip || d.chip === chip) && hasTag(d, tag) && matchesSearch(d, q)),
    );
  });

  get filters(): Filters {
    return { search: this.search, status: this.status, project: this.project, chip: this.chip, tag: this.tag };
  }

  set filters(f: Filters) {
    this.search = f.search;
    this.status = f.status;
    this.project = f.project;
    this.chip = f.chip;
    this.tag = f.tag;
  }

  /** Every tag in use, once whatever its case (the first spelling seen), sorted. */
  tags = $derived.by(() => {
    const seen = new Map<string, string>();
    for (const d of this.all) for (const t of d.tags ?? []) if (!seen.has(t.toLowerCase())) seen.set(t.toLowerCase(), t);
    return [...seen.values()].sort(collator.compare);
  });

  projects = $derived([...new Set(this.all.map((d) => d.project).filter((p): p is string => !!p))].sort(collator.compare));
  chips = $derived([...new Set(this.all.map((d) => d.chip).filter((c): c is string => !!c))].sort(collator.compare));

  /** What the table shows: filtered, searched, sorted. */
  visible = $derived.by(() => {
    void this.#rev;
    const { status, project, chip, tag, sortKey, sortDir } = this;
    const q = this.search.trim();
    const params = [status, project, chip, tag, sortKey, sortDir, q].join('\u0000');
    // Fast path: most live events (progress, check-ins) change neither which devices match nor
    // their order. Then the last order is reused and only the objects are refreshed: no
    // 10,000-row sort per frame during an update wave.
    if (!this.#viewDirty && this.#order?.params === params) {
      return this.#order.macs.map((m) => this.#map.get(m)!);
    }
    const rows = [...this.#map.values()].filter(
      (d) =>
        matchesStatus(d, status) &&
        (!project || d.project === project) &&
        (!chip || d.chip === chip) &&
        hasTag(d, tag) &&
        matchesSearch(d, q),
    );
    rows.sort((a, b) => compareDevices(a, b, sortKey, sortDir));
    this.#order = { params, macs: rows.map((d) => d.mac) };
    this.#viewDirty = false;
    return rows;
  });

  /** MAC-less mDNS hosts, "discovered, not enrolled": shown after the devices, by name, under
   *  "All" and the search only: they have no project, chip, tags or update, and the status
   *  buttons count devices (a button's number is the rows it shows). */
  hosts = $derived.by(() => {
    void this.#rev;
    return [...this.#hosts.values()].sort((a, b) => collator.compare(hostLabel(a), hostLabel(b)) || (a.key < b.key ? -1 : 1));
  });

  visibleHosts = $derived.by(() => {
    const { status, project, chip, tag } = this;
    const q = this.search.trim();
    if (project || chip || tag || status !== 'all') return [];
    return this.hosts.filter((h) => matchesHostSearch(h, q));
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
      a.admin_name !== b.admin_name ||
      a.reported_name !== b.reported_name ||
      a.notes !== b.notes ||
      (a.tags ?? []).join(',') !== (b.tags ?? []).join(',') ||
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

  /** Replace everything (initial load, reconnect, `lagged`): the devices, and the MAC-less hosts
   *  when given. */
  setAll(list: Device[], hosts?: DiscoveredHost[]) {
    this.#map = new Map(list.map((d) => [d.mac, d]));
    if (hosts) this.#hosts = new Map(hosts.map((h) => [h.key, h]));
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

  /** An `mdns_host` event: a MAC-less host announced, resolved or gone, by its `key`. */
  applyHost(h: DiscoveredHost) {
    this.#hosts.set(h.key, h);
  }

  getHost(key: string): DiscoveredHost | undefined {
    void this.#rev;
    return this.#hosts.get(key);
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
