// A tiny history router: six views do not need a library. Paths: `/`, `/devices/<mac>` (and
// `/devices/<mac>/<tab>` for a tab of the device page other than its overview),
// `/deployments` (or `/deployments/<id>` with that one's devices open), `/firmware`, `/activity`,
// `/projects`, `/team`, `/settings`.
// The server answers unknown paths with index.html, so reloads work.
/** The device page's tabs; `overview` is the page's own path. */
export const DEVICE_TABS = ['overview', 'control', 'config', 'logs', 'reports'] as const;
export type DeviceTab = (typeof DEVICE_TABS)[number];

export type Route =
  | { name: 'devices' }
  | { name: 'device'; mac: string; tab?: DeviceTab }
  | { name: 'deployments'; id?: number }
  | { name: 'firmware' }
  | { name: 'activity' }
  | { name: 'projects' }
  | { name: 'team' }
  | { name: 'settings' };

export function parse(path: string): Route {
  const p = path.replace(/\/index\.html$/, '/').replace(/\/+$/, '') || '/';
  const m = p.match(/^\/devices\/([^/]+)(?:\/([a-z]+))?$/);
  if (m) {
    const tab = DEVICE_TABS.find((t) => t === m[2] && t !== 'overview');
    return tab ? { name: 'device', mac: decodeURIComponent(m[1]), tab } : { name: 'device', mac: decodeURIComponent(m[1]) };
  }
  const d = p.match(/^\/deployments(?:\/(\d+))?$/);
  if (d) return d[1] ? { name: 'deployments', id: Number(d[1]) } : { name: 'deployments' };
  if (p === '/firmware') return { name: 'firmware' };
  if (p === '/activity') return { name: 'activity' };
  if (p === '/projects') return { name: 'projects' };
  if (p === '/team') return { name: 'team' };
  if (p === '/settings') return { name: 'settings' };
  return { name: 'devices' };
}

export function href(r: Route): string {
  switch (r.name) {
    case 'devices':
      return '/';
    case 'device':
      return `/devices/${encodeURIComponent(r.mac)}${r.tab && r.tab !== 'overview' ? `/${r.tab}` : ''}`;
    case 'deployments':
      return r.id != null ? `/deployments/${r.id}` : '/deployments';
    case 'firmware':
      return '/firmware';
    case 'activity':
      return '/activity';
    case 'projects':
      return '/projects';
    case 'team':
      return '/team';
    case 'settings':
      return '/settings';
  }
}

class Router {
  route = $state<Route>(parse(typeof location === 'undefined' ? '/' : location.pathname));

  constructor() {
    if (typeof window !== 'undefined') {
      window.addEventListener('popstate', () => (this.route = parse(location.pathname)));
    }
  }

  go(r: Route) {
    const url = href(r);
    if (location.pathname !== url) history.pushState(null, '', url);
    this.route = r;
    window.scrollTo?.(0, 0);
  }
}

export const router = new Router();

/** Click handler for links: client-side navigation unless a modifier asks for a new tab. */
export function navigate(e: MouseEvent, r: Route) {
  if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  e.preventDefault();
  router.go(r);
}
