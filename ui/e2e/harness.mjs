// Test harness for the browser end-to-end test: the REAL otafleet server (target/debug/otafleet)
// on a free loopback port, simulated devices speaking the native protocol, firmware images made
// by the project's own generator (firmware/test/mkimage.py), and Debian's Chromium driven by
// playwright-core (no browser download, ever).
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
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
  return { path: out, bytes, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** Start `otafleet serve` and wait for its one "listening" line. */
export async function startServer(dataDir) {
  const bin = process.env.OTAFLEET_BIN ?? join(repo, 'target/debug/otafleet');
  const child = spawn(bin, ['serve', '--no-mdns', '--listen', '127.0.0.1:0', '--data-dir', dataDir,
    '--admin-token', ADMIN, '--ui-dir', join(repo, 'ui/dist')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d) => (log += d));
  const base = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/otafleet listening on (http:\/\/\S+)/);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`otafleet exited with ${code} before listening:\n${log}`)));
  });
  return {
    base,
    log: () => log,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** A device speaking the native protocol v1, as the reference client does. */
export class SimDevice {
  token = null;
  offer = null;
  constructor(base, { mac, name, chip = 'esp32', project, version, sha256, ip, rssi }) {
    Object.assign(this, { base, mac, name, chip, project, version, sha256, ip, rssi });
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
}

/** Debian's Chromium with the flags this machine needs (see the env notes), on a fresh profile
 *  directory (playwright passes it as --user-data-dir). Returns the browser context. */
export async function launchBrowser(profileDir, viewport) {
  return chromium.launchPersistentContext(profileDir, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    viewport,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}

/** A fresh server and a browser page whose token is injected the way the desktop shell does it
 *  (window.__OTAFLEET__), so no prompt appears. `close()` stops both and removes the temp dir. */
export async function injectedSession(viewport) {
  const dir = tempDir();
  const server = await startServer(join(dir, 'data'));
  const browser = await launchBrowser(join(dir, 'chromium-profile'), viewport);
  await browser.addInitScript(({ token }) => {
    window.__OTAFLEET__ = { token };
  }, { token: ADMIN });
  const page = await browser.newPage();
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
