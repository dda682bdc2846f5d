// The Logs tab under load, in Debian's Chromium (bench/run.sh part `logs`): opens the Logs tab of
// the device of project PROJECT (a device sending hundreds of lines a second, while the rest of
// the fleet sends too) and measures, for SECONDS, what a person would feel: the page's long tasks
// (PerformanceObserver `longtask`: main-thread work over 50 ms), the gaps between animation
// frames, and how many lines it drew. Prints one line; exits 1 when the page never showed a line.
// Usage: node bench/ui-logs.mjs URL ADMIN_TOKEN PROJECT SECONDS
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const require = createRequire(join(process.cwd(), 'ui', 'package.json'));
const { chromium } = require('playwright-core');
const [base, token, project, seconds] = process.argv.slice(2);

const headers = { authorization: `Bearer ${token}` };
let mac = null;
for (let i = 0; i < 300 && !mac; i++) {
  const list = await (await fetch(`${base}/api/v1/devices`, { headers })).json();
  mac = list.find((d) => d.mac && d.project === project)?.mac ?? null;
  if (!mac) await new Promise((r) => setTimeout(r, 100));
}
if (!mac) throw new Error(`no device of project ${project}`);

const profile = mkdtempSync(join(tmpdir(), 'otafleet-bench-ui-'));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', headless: true, viewport: { width: 1440, height: 900 },
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});
await browser.addInitScript((t) => (window.__OTAFLEET__ = { token: t }), token);
const page = await browser.newPage();
await page.goto(`${base}/devices/${encodeURIComponent(mac)}/logs`);
await page.getByTestId('logs-state').filter({ hasText: 'watching' }).waitFor();
await page.locator('[data-testid="logs-lines"] .line').first().waitFor({ timeout: 30000 });
const r = await page.evaluate(async (ms) => {
  const long = [];
  new PerformanceObserver((l) => long.push(...l.getEntries().map((e) => e.duration))).observe({ type: 'longtask', buffered: false });
  const gaps = [];
  let last = performance.now();
  const first = Number(document.querySelector('[data-testid="logs-lines"] .line:last-child')?.getAttribute('data-seq') ?? 0);
  await new Promise((done) => {
    const end = last + ms;
    const frame = (t) => {
      gaps.push(t - last);
      last = t;
      if (t < end) requestAnimationFrame(frame);
      else done();
    };
    requestAnimationFrame(frame);
  });
  const lastSeq = Number(document.querySelector('[data-testid="logs-lines"] .line:last-child')?.getAttribute('data-seq') ?? 0);
  gaps.sort((a, b) => a - b);
  return { long, gaps, drawn: lastSeq - first, shown: document.querySelectorAll('[data-testid="logs-lines"] .line').length };
}, Number(seconds) * 1000);
await browser.close();
rmSync(profile, { recursive: true, force: true });
const p = (a, q) => a[Math.min(a.length - 1, Math.floor(a.length * q))] ?? 0;
const lps = r.drawn / Number(seconds);
console.log(`ui-logs device=${mac}: ${lps.toFixed(0)} lines/s drawn (${r.shown} on the page), frames ${r.gaps.length}, frame gap p50 ${p(r.gaps, 0.5).toFixed(1)} ms p99 ${p(r.gaps, 0.99).toFixed(1)} ms max ${(r.gaps.at(-1) ?? 0).toFixed(1)} ms, long tasks ${r.long.length} (longest ${Math.max(0, ...r.long).toFixed(0)} ms)`);
if (r.drawn <= 0) process.exit(1);
