// Scale in a real browser: 10,000 devices in the table and a burst of live progress events.
// Asserts behaviour (bounded DOM, correct counts, the burst's final state shown), not timings;
// frame statistics are printed for a person to read, never compared to a number.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { expect } from './expect.mjs';
import { ADMIN, SimDevice, cleanup, adminPage, makeImage, startServer, tempDir } from './harness.mjs';

const N = Number(process.env.E2E_SCALE_DEVICES ?? 10000);
let dir, server, browser, page, image, devices;

/** Run `fn` over `items` with at most `width` in flight. */
async function pool(items, width, fn) {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

before(async () => {
  dir = tempDir();
  image = makeImage(dir, 'swarm', '2.0.0');
  server = await startServer(join(dir, 'data'));
  devices = Array.from({ length: N }, (_, i) => new SimDevice(server.base, {
    mac: `02:00:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`.toUpperCase(),
    name: `node-${String(i).padStart(5, '0')}`, project: 'swarm', version: '1.0.0', ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, rssi: -40 - (i % 50),
  }));
  await pool(devices, 32, (d) => d.checkin());
  ({ browser, page } = await adminPage(dir, { width: 1440, height: 900 }));
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (dir) cleanup(dir);
});

test(`${N} devices: counts are right and only the rows in view are in the DOM`, async () => {
  await page.goto(server.base);
  await page.getByText(`${N} devices`, { exact: false }).first().waitFor({ timeout: 60000 });
  const rows = await page.locator('[role=row][data-mac]').count();
  assert.ok(rows > 10 && rows < 100, `${rows} rows in the DOM`);
  // Scroll to the end: the last device is there, the first is gone.
  await page.locator('.viewport').evaluate((v) => (v.scrollTop = v.scrollHeight));
  await page.locator(`[data-mac="${devices[N - 1].mac}"]`).waitFor();
  assert.equal(await page.locator(`[data-mac="${devices[0].mac}"]`).count(), 0);
  await page.locator('.viewport').evaluate((v) => (v.scrollTop = 0));
});

test('a burst of progress events ends in the right state, applied in frame batches', async () => {
  const res = await fetch(`${server.base}/api/v1/firmware?filename=swarm-2.0.0.bin`, {
    method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/octet-stream' }, body: image.bytes,
  });
  const fw = await res.json();
  const dep = await fetch(`${server.base}/api/v1/deployments`, {
    method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ firmware_id: fw.id, project: 'swarm', chip: 'esp32' }),
  });
  assert.equal(dep.status, 201);
  const burst = devices.slice(0, 1000);
  await pool(burst, 32, (d) => d.checkin());
  // Count frames and long tasks while the burst lands (for the log only).
  await page.evaluate(() => {
    window.__stats = { frames: 0, long: 0 };
    const tick = () => { window.__stats.frames++; requestAnimationFrame(tick); };
    requestAnimationFrame(tick);
    try {
      new PerformanceObserver((l) => (window.__stats.long += l.getEntries().length)).observe({ entryTypes: ['longtask'] });
    } catch { /* not supported: fine */ }
  });
  const started = Date.now();
  await pool(burst, 32, async (d) => {
    for (const p of [20, 60, 100]) await d.progress('downloading', p);
  });
  const sent = Date.now() - started;
  await page.getByRole('button', { name: /Updating/ }).click();
  await expect(() => page.locator(`[data-mac="${burst[0].mac}"] [role=progressbar]`).getAttribute('aria-valuenow'), '100', { timeout: 30000 });
  await page.getByRole('button', { name: /^Updating 1000$/ }).waitFor();
  const stats = await page.evaluate(() => window.__stats);
  console.log(`# burst: ${burst.length * 3} progress events sent in ${sent} ms; the page drew ${stats.frames} frames, ${stats.long} long tasks (>50 ms) meanwhile`);
});
