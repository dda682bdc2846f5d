// Live device logs in a real browser: the real server, a fleet of `otafleet-sim` devices (native
// protocol, with a log hook that sends lines while the server asks), the built UI in Chromium.
// Opening the Logs tab of a device makes that device send its lines, which appear live; the
// level filter and the search narrow them; leaving the tab releases the lease and the device
// stops sending soon after. A stock device's page says why it has no logs. Every wait is for a
// condition, never for time.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { expect } from './expect.mjs';
import { adminApi, adminPage, cleanup, shots, startServer, startSim, tempDir } from './harness.mjs';

let dir, server, sim, browser, page, api;

before(async () => {
  dir = tempDir();
  server = await startServer(join(dir, 'data'));
  api = adminApi(server.base);
  sim = startSim(server.base, ['--devices', '3', '--protocols', 'native=3', '--project', 'logs-lab', '--wait-for-deployment',
    '--forever', '--interval', '1', '--jitter', '0', '--log-rate', '12']);
  await expect(async () => (await api.get('/api/v1/devices')).filter((d) => d.mac && d.auth === 'token').length, 3, { timeout: 30000 });
  ({ browser, page } = await adminPage(dir, { width: 1440, height: 900 }));
});

after(async () => {
  await browser?.close();
  await sim?.stop();
  await server?.stop();
  if (dir) cleanup(dir);
});

const snapshot = (mac) => api.get(`/api/v1/devices/${mac}/logs`);

test("the Logs tab shows a device's lines live; leaving the tab makes it stop", async () => {
  const devices = (await api.get('/api/v1/devices')).filter((d) => d.mac && d.auth === 'token');
  const mac = devices[0].mac;
  const quiet = devices[1].mac;
  assert.equal((await snapshot(mac)).lines.length, 0, 'nobody watched: the device sent nothing');

  await page.goto(`${server.base}/devices/${mac}`);
  await page.getByText('● live').waitFor();
  await page.getByTestId('tab-logs').click();
  assert.match(page.url(), /\/logs$/, 'the tab is in the URL');
  const panel = page.getByTestId('logs');
  await panel.getByTestId('logs-state').filter({ hasText: 'watching' }).waitFor();
  // Lines arrive without a reload (the device learns at its next check-in).
  const lines = panel.locator('[data-testid="logs-lines"] .line');
  await expect(async () => (await lines.count()) >= 12, true, { timeout: 30000 });
  assert.equal((await snapshot(mac)).watched, true);
  assert.equal((await snapshot(quiet)).lines.length, 0, 'only the watched device sends');

  // The level filter keeps warnings and worse; the search narrows to a scope.
  await expect(async () => (await panel.locator('.line.lvl-warn').count()) > 0, true, { timeout: 30000 });
  await panel.getByTestId('logs-level').selectOption('warn');
  await expect(async () => {
    const levels = await panel.locator('[data-testid="logs-lines"] .line .lvl').allTextContents();
    return levels.length > 0 && levels.every((l) => ['warn', 'error'].includes(l.trim().toLowerCase()));
  }, true);
  await panel.getByTestId('logs-level').selectOption('verbose');
  await panel.getByTestId('logs-search').fill('mqtt');
  await expect(async () => {
    const texts = await panel.locator('[data-testid="logs-lines"] .line').allTextContents();
    return texts.length > 0 && texts.every((t) => t.includes('mqtt'));
  }, true, { timeout: 30000 });
  await panel.getByTestId('logs-search').fill('');
  // Pause holds new lines back and says how many; Resume shows them.
  await panel.getByTestId('logs-pause').click();
  const held = panel.getByTestId('logs-resume');
  await held.filter({ hasText: /\(\d+ new\)/ }).waitFor({ timeout: 30000 });
  const before = await lines.count();
  await held.click();
  await expect(async () => (await lines.count()) > before, true);
  await page.screenshot({ path: join(shots, 'browser-device-logs.png'), animations: 'disabled' });

  // Leaving the tab releases the lease: the server stops asking, and the device stops sending.
  await page.getByTestId('tab-overview').click();
  await expect(async () => (await snapshot(mac)).watched, false, { timeout: 60000 });
  // Once told (its next batch's answer), no new line arrives: the newest seq stays the same over
  // two reads a few batches apart.
  await expect(async () => {
    const a = (await snapshot(mac)).lines.at(-1)?.seq;
    await new Promise((r) => setTimeout(r, 1500));
    return (await snapshot(mac)).lines.at(-1)?.seq === a;
  }, true, { timeout: 60000 });
});

test('a device that cannot send logs says why', async () => {
  await api.post('/api/v1/devices', { mac: '24:0A:C4:99:00:01', name: 'stock-arduino' });
  // Opened by its link (a reload of the tab lands here too).
  await page.goto(`${server.base}/devices/24:0A:C4:99:00:01/logs`);
  await page.getByTestId('logs-unsupported').waitFor();
  assert.equal((await api.get('/api/v1/devices/24:0A:C4:99:00:01/logs')).watched, false, 'nothing was asked of it');
});
