// Test harness for the browser end-to-end test: the REAL otafleet server (target/debug/otafleet)
// on a free loopback port, simulated devices speaking the native protocol, firmware images made
// by the project's own generator (firmware/test/mkimage.py), and Debian's Chromium driven by
// playwright-core (no browser download, ever).
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const repo = join(here, '..', '..');
export const ADMIN = 'e2e-admin-token';
/** Where the tests save their screenshots: the committed docs/screenshots by default (set
 *  OTAFLEET_SCREENSHOTS to keep a run from touching them). */
export const shots = process.env.OTAFLEET_SCREENSHOTS ?? join(repo, 'docs', 'screenshots');

export function tempDir() {
  return mkdtempSync(join(tmpdir(), 'otafleet-e2e-'));
}

/** An ESP32 app image with the given project and version, from firmware/test/mkimage.py. */
export function makeImage(dir, project, version, chipId = 0) {
  const out = join(dir, `${project}-${version}.bin`);
  execFileSync('python3', [join(repo, 'firmware/test/mkimage.py'), '--project', project, '--version', version,
    '--chip-id', String(chipId), '--payload', '20000', '-o', out]);
  const bytes = readFileSync(out);
  return { path: out, bytes, project, version, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** Start `otafleet serve` and wait for its one "listening" line: on a free port, or on `port`
 *  (to bring a stopped server back where its clients look for it). `netns`: inside that network
 *  namespace (see `netnsLan`), where `mdns: true` lets it browse and announce on the namespace's
 *  LAN (everywhere else mDNS stays off: the machine's own network is never touched). `extraArgs`
 *  go on the command line after the harness's own (a cluster's `--database-url`, …). */
export async function startServer(dataDir, { port = 0, netns = null, mdns = false, mqtt = false, extraArgs = [] } = {}) {
  const bin = process.env.OTAFLEET_BIN ?? join(repo, 'target/debug/otafleet');
  const args = ['serve', ...(mdns ? ['--mdns-name', `otafleet-e2e-${process.pid}`] : ['--no-mdns']), '--listen', `127.0.0.1:${port}`,
    '--data-dir', dataDir, '--admin-token', ADMIN, '--ui-dir', join(repo, 'ui/dist'),
    // Many servers run at once: none takes port 443 or the MQTT port of the machine (`mqtt`: the
    // embedded broker on a free port, told by the `otafleet MQTT broker on:` line).
    '--https-port', 'off', ...(mqtt ? ['--mqtt', 'embedded', '--mqtt-port', '0'] : ['--mqtt', 'off']), ...extraArgs];
  const child = netns
    ? spawn('ip', ['netns', 'exec', netns, bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d) => (log += d));
  let mqttPort = null;
  const base = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/otafleet listening on (http:\/\/\S+)/);
      const b = out.match(/otafleet MQTT broker on: mqtts?:\/\/\S+:(\d+)/);
      if (b) mqttPort = Number(b[1]);
      if (m && (!mqtt || b)) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`otafleet exited with ${code} before listening:\n${log}`)));
  });
  return {
    base,
    port: Number(new URL(base).port),
    mqttPort,
    log: () => log,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Run `otafleet-sim` (target/debug/otafleet-sim, or OTAFLEET_SIM_BIN) against `base` with `args`
 *  until `stop()` (SIGINT, as a person ends `--forever`). Its output is kept for failure messages. */
export function startSim(base, args) {
  const bin = process.env.OTAFLEET_SIM_BIN ?? join(repo, 'target/debug/otafleet-sim');
  const child = spawn(bin, ['--server', base, '--no-progress', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (d) => (log += d));
  child.stderr.on('data', (d) => (log += d));
  return {
    log: () => log,
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGINT');
      return exited;
    },
  };
}

/** Admin API calls with the test's token: `get(path)`, `post(path, body)`, `upload(image, name)`.
 *  Each answers the parsed JSON; a status other than 2xx throws with the server's body. `token`:
 *  another one (an API token, e.g. another organisation's owner's) instead of the admin token. */
export function adminApi(base, token = ADMIN) {
  const call = async (method, path, body) => {
    const headers = { authorization: `Bearer ${token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    const json = text ? JSON.parse(text) : null;
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return json;
  };
  return {
    get: (path) => call('GET', path),
    post: (path, body) => call('POST', path, body),
    patch: (path, body) => call('PATCH', path, body),
    put: (path, body) => call('PUT', path, body),
    async upload(image, filename) {
      const res = await fetch(`${base}/api/v1/firmware?filename=${encodeURIComponent(filename)}`, {
        method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' }, body: image.bytes,
      });
      if (!res.ok) throw new Error(`upload ${filename}: ${res.status} ${await res.text()}`);
      return res.json();
    },
  };
}

/** A device speaking the native protocol v1, as the reference client does. `failFirst: N` makes
 *  its first N installs fail (a flash write error), as a device with a bad flash sector would. */
export class SimDevice {
  token = null;
  offer = null;
  constructor(base, { mac, name, chip = 'esp32', project, version, sha256, ip, rssi, failFirst = 0 }) {
    Object.assign(this, { base, mac, name, chip, project, version, sha256, ip, rssi, failuresLeft: failFirst });
  }

  async #post(path, body) {
    const headers = { 'content-type': 'application/json' };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    const res = await fetch(`${this.base}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
    const json = await res.json();
    if (!res.ok) throw new Error(`${path} for ${this.mac}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  }

  async checkin() {
    const r = await this.#post('/api/v1/device/checkin', {
      mac: this.mac, name: this.name, chip: this.chip, project: this.project, version: this.version,
      sha256: this.sha256, ip: this.ip, rssi: this.rssi, free_space: 1966080, uptime_s: 120,
    });
    if (r.token) this.token = r.token;
    this.offer = r.update;
    return r;
  }

  progress(state, progress, error) {
    return this.#post('/api/v1/device/progress', { update_id: this.offer.id, state, progress, error });
  }

  /** "Reboot" into the offered image and check in running it: the server marks the update done. */
  async finish(image) {
    this.version = this.offer.version;
    this.sha256 = image.sha256;
    return this.checkin();
  }

  /** One pass of the reference client's loop: check in and, when an image is offered, download
   *  it (the real bytes, checked against the offer's SHA-256), verify, flash and reboot into it,
   *  or fail at flashing while `failFirst` lasts. The device then runs an image it reported, so
   *  the project follows the image's (`images`: what makeImage made, to know the project).
   *  Answers 'idle' (nothing offered), 'failed' or 'done'. */
  async cycle(images) {
    await this.checkin();
    if (!this.offer) return 'idle';
    const res = await fetch(`${this.base}${this.offer.url}`, { headers: { authorization: `Bearer ${this.token}` } });
    const bytes = Buffer.from(await res.arrayBuffer());
    if (createHash('sha256').update(bytes).digest('hex') !== this.offer.sha256) throw new Error(`${this.mac}: the download does not match the offer`);
    await this.progress('downloading', 100);
    await this.progress('verifying', 100);
    if (this.failuresLeft > 0) {
      this.failuresLeft--;
      await this.progress('failed', 40, 'flash write failed at 0x110000 (simulated bad sector)');
      return 'failed';
    }
    await this.progress('flashing', 100);
    await this.progress('rebooting', 100);
    const image = images.find((i) => i.sha256 === this.offer.sha256);
    if (!image) throw new Error(`${this.mac}: offered an image the test did not make`);
    this.project = image.project;
    await this.finish(image);
    return 'done';
  }
}

/** Debian's Chromium with the flags this machine needs (see the env notes), on a fresh profile
 *  directory (playwright passes it as --user-data-dir). Returns the browser context. `netns`:
 *  the browser runs inside that network namespace (through a wrapper that `ip netns exec`s it;
 *  playwright drives it over a pipe, so no port has to cross the namespace). */
export async function launchBrowser(profileDir, viewport, { netns = null } = {}) {
  const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
  let executablePath = chromiumPath;
  if (netns) {
    executablePath = `${profileDir}-in-${netns}.sh`;
    writeFileSync(executablePath, `#!/bin/sh\nexec ip netns exec ${netns} ${chromiumPath} "$@"\n`);
    chmodSync(executablePath, 0o755);
  }
  return chromium.launchPersistentContext(profileDir, {
    executablePath,
    headless: true,
    viewport,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}

/** Chromium with its profile in `dir` and a page whose admin token is injected the way the
 *  desktop shell does it (window.__OTAFLEET__), so no prompt appears. */
export async function adminPage(dir, viewport, opts = {}) {
  const browser = await launchBrowser(join(dir, 'chromium-profile'), viewport, opts);
  await browser.addInitScript(({ token }) => (window.__OTAFLEET__ = { token }), { token: ADMIN });
  return { browser, page: await browser.newPage() };
}

/** A fresh server and an [`adminPage`]. `close()` stops both and removes the temp dir. */
export async function injectedSession(viewport, serverOptions = {}) {
  const dir = tempDir();
  const server = await startServer(join(dir, 'data'), serverOptions);
  const { browser, page } = await adminPage(dir, viewport);
  const close = async () => {
    await browser.close();
    await server.stop();
    cleanup(dir);
  };
  return { dir, server, browser, page, close };
}

export function cleanup(dir) {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * A private LAN for mDNS (root only): two network namespaces joined by a veth pair, as the Rust
 * LAN tests make it (crates/otafleet-cli/tests/mdns_lan/netns.rs): loopback up, the link up with
 * multicast on and a route for 224.0.0.0/4 in each. The server and the browser go in `a`, the
 * python-zeroconf peer in `b`, so announcements cross a real link and never reach the machine's
 * own network. `close()` deletes both namespaces (and with them the pair).
 */
export function netnsLan() {
  if (process.getuid?.() !== 0) throw new Error('the mDNS end-to-end test needs root to create network namespaces');
  const id = `${process.pid % 100000}`;
  const n = process.pid % 250;
  const lan = { a: `ofe2e${id}a`, b: `ofe2e${id}b`, ipA: `10.232.${n}.1`, ipB: `10.232.${n}.2`, devA: `vofe${id}a`, devB: `vofe${id}b` };
  const ip = (...args) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const close = () => {
    for (const ns of [lan.a, lan.b]) {
      try {
        ip('netns', 'del', ns);
      } catch {
        /* not made, or already gone */
      }
    }
  };
  try {
    ip('netns', 'add', lan.a);
    ip('netns', 'add', lan.b);
    ip('link', 'add', lan.devA, 'netns', lan.a, 'type', 'veth', 'peer', 'name', lan.devB, 'netns', lan.b);
    for (const [ns, dev, addr] of [[lan.a, lan.devA, lan.ipA], [lan.b, lan.devB, lan.ipB]]) {
      ip('-n', ns, 'addr', 'add', `${addr}/24`, 'dev', dev);
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      ip('-n', ns, 'link', 'set', dev, 'up', 'multicast', 'on');
      ip('-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', dev);
    }
  } catch (e) {
    close();
    throw e;
  }
  return { ...lan, close };
}

/** A Python with python-zeroconf: the venv the Rust LAN tests make (target/tmp/zeroconf-venv),
 *  made the same way when it is missing (`pip install zeroconf`), or `$OTAFLEET_ZEROCONF_PYTHON`. */
export function zeroconfPython() {
  if (process.env.OTAFLEET_ZEROCONF_PYTHON) return process.env.OTAFLEET_ZEROCONF_PYTHON;
  const venv = join(process.env.CARGO_TARGET_DIR ?? join(repo, 'target'), 'tmp', 'zeroconf-venv');
  const py = join(venv, 'bin', 'python');
  const ready = () => {
    try {
      execFileSync(py, ['-c', 'import zeroconf'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  };
  if (!existsSync(py) || !ready()) {
    execFileSync('python3', ['-m', 'venv', venv], { stdio: 'inherit' });
    execFileSync(join(venv, 'bin', 'pip'), ['install', '-q', 'zeroconf>=0.150,<1'], { stdio: 'inherit' });
  }
  if (!ready()) throw new Error(`python-zeroconf is not importable from ${py}`);
  return py;
}

/**
 * The independent mDNS peer (crates/otafleet-cli/tests/mdns/peer.py, python-zeroconf) inside
 * namespace `netns`, announcing `services` ([{type, name, host, ip, port, txt}]). Resolves once
 * they are registered; `unregister()` sends their goodbyes; `stop()` ends it.
 */
export async function mdnsPeer(netns, services) {
  const script = join(repo, 'crates/otafleet-cli/tests/mdns/peer.py');
  const child = spawn('ip', ['netns', 'exec', netns, zeroconfPython(), script, 'advertise', JSON.stringify(services)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let log = '';
  child.stderr.on('data', (d) => (log += d));
  const waiters = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    for (const w of waiters.splice(0)) if (!w(line)) waiters.push(w);
  });
  const line = (event) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the mDNS peer never said ${event}:\n${log}`)), 30000);
      waiters.push((l) => {
        if (!l.includes(`"${event}"`)) return false;
        clearTimeout(timer);
        resolve(l);
        return true;
      });
    });
  await line('registered');
  return {
    async unregister() {
      const done = line('unregistered');
      child.stdin.write('unregister\n');
      await done;
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.stdin.end();
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** A free TCP port on loopback (bound and released: for a process that must know its port
 *  before another starts, as an OpenID provider's issuer URL must). */
export async function freePort() {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** A fresh RSA signing key as a JWK file (for `startOidcProvider`); a new file is a new key. */
export async function signingKey(dir, name) {
  const { generateKeyPairSync, randomUUID } = await import('node:crypto');
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' };
  const path = join(dir, `${name}.jwk.json`);
  writeFileSync(path, JSON.stringify(jwk));
  return { path, kid: jwk.kid };
}

/** The real OpenID provider of `oidc-provider.mjs` on `port`, signing with the key in `keyFile`,
 *  with one client whose redirect URI is `redirectUri`. `stop()` ends it. */
export async function startOidcProvider({ port, keyFile, clientId, clientSecret, redirectUri }) {
  const child = spawn(process.execPath, [join(here, 'oidc-provider.mjs'), String(port), keyFile, clientId, clientSecret, redirectUri],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d) => (log += d));
  await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('oidc-provider ready')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`oidc-provider exited with ${code}:\n${log}`)));
  });
  return {
    issuer: `http://127.0.0.1:${port}`,
    log: () => log,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
