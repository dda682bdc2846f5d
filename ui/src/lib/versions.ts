// Version order for sorting, the rule of docs/versions.md (the server's `compare_versions`):
// semver 2.0.0 precedence, a leading `v`, 1–5 numeric fields, build metadata and `-dirty`
// ignored, and git describe's `-N-g<hash>` read as N commits after the version before it.

interface Parsed {
  core: string[];
  pre: string[];
  after: string | null;
}

const DIGITS = /^[0-9]+$/;
const IDENT = /^[0-9A-Za-z-]+$/;
const DESCRIBE = /^(?:(.*)-)?([0-9]+)-g[0-9a-fA-F]{4,40}$/;

/** The parts that order a version, or null when the text is not a version under the rule. */
function parse(input: string): Parsed | null {
  let s = input.trim();
  if (/^[vV][0-9]/.test(s)) s = s.slice(1);
  const plus = s.indexOf('+');
  if (plus >= 0) s = s.slice(0, plus);
  const dirty = s.endsWith('-dirty');
  if (dirty) s = s.slice(0, -'-dirty'.length);
  const dash = s.indexOf('-');
  const core = (dash >= 0 ? s.slice(0, dash) : s).split('.');
  const tail = dash >= 0 ? s.slice(dash + 1) : null;
  if (core.length > 5 || !core.every((f) => DIGITS.test(f))) return null;
  // A lone number with a suffix ("9036908-dirty") is a git hash, not a version.
  if (core.length === 1 && (tail !== null || dirty)) return null;
  let pre = tail;
  let after: string | null = null;
  const m = tail === null ? null : DESCRIBE.exec(tail);
  if (m) {
    pre = m[1] ?? null;
    after = m[2];
  }
  const ids = pre === null ? [] : pre.split('.');
  if (!ids.every((id) => IDENT.test(id))) return null;
  return { core, pre: ids, after };
}

function cmpNumbers(a: string, b: string): number {
  const x = a.replace(/^0+/, '');
  const y = b.replace(/^0+/, '');
  if (x.length !== y.length) return x.length < y.length ? -1 : 1;
  return x < y ? -1 : x > y ? 1 : 0;
}

function cmpPre(a: string[], b: string[]): number {
  if (a.length === 0 || b.length === 0) return a.length === b.length ? 0 : a.length === 0 ? 1 : -1;
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const da = DIGITS.test(a[i]);
    const db = DIGITS.test(b[i]);
    const c = da && db ? cmpNumbers(a[i], b[i]) : da ? -1 : db ? 1 : a[i] < b[i] ? -1 : a[i] > b[i] ? 1 : 0;
    if (c !== 0) return c;
  }
  return Math.sign(a.length - b.length);
}

/** <0, 0 or >0 as `a` is older, the same or newer than `b`; null when either is not a version. */
export function compareVersions(a: string, b: string): number | null {
  const x = parse(a);
  const y = parse(b);
  if (!x || !y) return null;
  for (let i = 0; i < Math.max(x.core.length, y.core.length); i++) {
    const c = cmpNumbers(x.core[i] ?? '0', y.core[i] ?? '0');
    if (c !== 0) return c;
  }
  return cmpPre(x.pre, y.pre) || cmpNumbers(x.after ?? '0', y.after ?? '0');
}

/** A total order for sorting: versions by the rule, before anything that is not a version. */
export function sortVersions(a: string, b: string, fallback: (a: string, b: string) => number): number {
  const pa = parse(a) !== null;
  const pb = parse(b) !== null;
  if (pa && pb) return compareVersions(a, b) || fallback(a, b);
  if (pa !== pb) return pa ? -1 : 1;
  return fallback(a, b);
}
