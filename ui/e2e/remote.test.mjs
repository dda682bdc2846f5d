// Remote management in a real browser (issue 15): the real server, real `otafleet-sim` devices
// (native protocol, as the reference client behaves), the built UI in Chromium.
// (a) Config: the devices' project gets a variable through the API; on a device's Config tab the
// admin changes its value, and the page shows the new version `pending`, then `applied` once the
// device (which reads its config when its check-in's `config_version` changes) confirms it.
// (b) A failed boot: a device whose every boot of the deployed image fails reports `error`
// "boot of <version> failed, back on <old version>", which shows in the Activity page's Device
// reports and on the device's Reports tab, live. Every wait is for a condition, never for time.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { expect } from './expect.mjs';
import { adminApi, adminPage, cleanup, makeImage, shots, startServer, startSim, tempDir } from './harness.mjs';

let dir, server, browser, page, api;
const sims = [];

/** The enrolled (token) devices of `project`. */
const enrolled = async (project) =>
  (await api.get('/api/v1/devices')).filter((d) => d.mac && d.auth === 'token' && d.project === project);

before(async () => {
  dir = tempDir();
  server = await startServer(join(dir, 'data'));
  api = adminApi(server.base);
  ({ browser, page } = await adminPage(dir, { width: 1440, height: 900 }));
});

after(async () => {
  await browser?.close();
  for (const s of sims) await s.stop();
  await server?.stop();
  if (dir) cleanup(dir);
});

test("config: a value changed on the device's Config tab goes pending, then applied by the device", async () => {
  const sim = startSim(server.base, ['--devices', '2', '--protocols', 'native=2', '--project', 'remote-cfg', '--seed', '1501',
    '--wait-for-deployment', '--forever', '--interval', '1', '--jitter', '0']);
  sims.push(sim);
  await expect(async () => (await enrolled('remote-cfg')).length, 2, { timeout: 30000 });
  const [{ mac }] = await enrolled('remote-cfg');

  await api.patch('/api/v1/projects/remote-cfg', {
    variables: [
      { key: 'interval_s', type: 'int', default: 60, description: 'seconds between readings' },
      { key: 'site', type: 'string', default: 'lab' },
    ],
  });
  // The devices learn of the config at their next check-in and confirm the project's defaults.
  await expect(async () => (await api.get(`/api/v1/devices/${mac}/config`)).state, 'applied', { timeout: 30000 });

  await page.goto(`${server.base}/devices/${mac}/config`);
  const state = page.getByTestId('config-state');
  await state.and(page.locator('[data-state="applied"]')).waitFor();
  const before = (await api.get(`/api/v1/devices/${mac}/config`)).version;
  // Every state the page shows from here on, in order (the device may confirm within a frame or
  // two of the save, so the sequence is recorded rather than sampled).
  await page.evaluate(() => {
    const seen = (window.__configStates = []);
    const read = () => {
      const s = document.querySelector('[data-testid="config-state"]')?.getAttribute('data-state');
      if (s && seen.at(-1) !== s) seen.push(s);
    };
    read();
    new MutationObserver(read).observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
  });

  const input = page.locator('[data-testid="config-row"][data-key="interval_s"] input[aria-label="interval_s"]');
  assert.equal(await input.inputValue(), '60', 'the default shows');
  await input.fill('5');
  await page.getByTestId('config-save').click();
  await state.and(page.locator('[data-state="applied"]')).filter({ hasText: `Version ${before + 1}` }).waitFor({ timeout: 30000 });
  const states = await page.evaluate(() => window.__configStates);
  assert.deepEqual(states, ['applied', 'pending', 'applied'], 'the page showed the new version pending, then applied');

  const config = await api.get(`/api/v1/devices/${mac}/config`);
  assert.equal(config.state, 'applied');
  assert.equal(config.version, before + 1);
  assert.equal(config.applied_version, before + 1);
  assert.equal(config.values.interval_s, 5);
  const rows = page.getByTestId('config-row');
  await expect(() => rows.count(), 2);
});

test('an error report from a device whose boot failed shows in Activity and on its Reports tab', async () => {
  const old = makeImage(dir, 'remote-boot', '1.1.0');
  const next = makeImage(dir, 'remote-boot', '2.0.0');
  await api.upload(old, 'remote-boot-1.1.0.bin');
  const fw = await api.upload(next, 'remote-boot-2.0.0.bin');

  // Every boot of a new image fails; the run ends by itself once the server has stopped offering
  // the image (its attempt limit), with the failed boots on record.
  const sim = startSim(server.base, ['--devices', '1', '--protocols', 'native=1', '--project', 'remote-boot', '--seed', '1502',
    '--wait-for-deployment', '--failed-boots', '100', '--interval', '1', '--jitter', '0', '--reboot-ms', '100']);
  sims.push(sim);
  await expect(async () => (await enrolled('remote-boot')).length, 1, { timeout: 30000 });
  const [{ mac, version: runs }] = await enrolled('remote-boot');

  // The Activity page is open while it happens: the reports arrive live, through the `report` event.
  await page.goto(`${server.base}/activity`);
  await page.getByRole('heading', { name: 'Device reports' }).waitFor();
  await api.post('/api/v1/deployments', { firmware_id: fw.id, project: 'remote-boot', chip: 'esp32' });

  const subject = `boot of 2.0.0 failed, back on ${runs}`;
  const errorRows = page.getByTestId('report-row').filter({ hasText: subject });
  await errorRows.first().waitFor({ timeout: 60000 });

  // The run ends on its own, its summary counting the reports the server stored: one per failed
  // boot (the server's attempt limit, 3), each shown.
  await expect(() => /result\s+OK/.test(sim.log()), true, { timeout: 60000 });
  assert.match(sim.log(), /boot reports\s+0 success, 3 error/, sim.log());
  const stored = await api.get(`/api/v1/reports?mac=${encodeURIComponent(mac)}&type=error`);
  assert.equal(stored.length, 3, JSON.stringify(stored));
  assert.ok(stored.every((r) => r.subject === subject), JSON.stringify(stored));
  await expect(() => errorRows.count(), 3);
  const newest = errorRows.first();
  assert.match(await newest.innerText(), new RegExp(`${mac}[\\s\\S]*error`, 'i'), 'the row names the device and the type');
  await newest.locator('summary').click();
  await newest.getByText('did not boot; the bootloader rolled back').waitFor();
  await page.screenshot({ path: join(shots, 'browser-activity-error-report.png'), fullPage: true, animations: 'disabled' });

  // The type filter keeps the errors; the device's Reports tab shows the same.
  await page.getByLabel('Report type').selectOption('error');
  await expect(() => page.getByTestId('report-row').count(), 3);
  await page.goto(`${server.base}/devices/${mac}/reports`);
  await expect(() => page.getByTestId('report-row').filter({ hasText: subject }).count(), 3);
  assert.equal(await page.getByTestId('tab-reports').locator('.count').innerText(), '3');
});
