// Remote control in a real browser: the real server, the real simulator (otafleet-sim
// --commands) as a native device, the built UI in Chromium. Restart from the device page → the
// command reaches `done` in the history and the device checks in again with its uptime started
// over; a stock (Arduino HTTPUpdate) device's page shows why it cannot take commands instead of
// the buttons. Every wait is for a condition (a locator, or the API polled), never for time.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { expect } from './expect.mjs';
import { adminApi, adminPage, cleanup, repo, shots, startServer, tempDir } from './harness.mjs';

let dir, server, browser, page, api, sim;

/** Poll `read` until it gives something other than undefined. */
async function until(read, what, timeout = 30000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await read();
    if (v !== undefined) return v;
    if (Date.now() > deadline) assert.fail(`${what}: not within ${timeout} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

before(async () => {
  dir = tempDir();
  server = await startServer(join(dir, 'data'));
  api = adminApi(server.base);
  const bin = process.env.OTAFLEET_SIM_BIN ?? join(repo, 'target/debug/otafleet-sim');
  sim = spawn(bin, ['--server', server.base, '--wait-for-deployment', '--devices', '1', '--interval', '0.5',
    '--reboot-ms', '100', '--forever', '--commands', '--no-progress', '--seed', '15'], { stdio: ['ignore', 'ignore', 'pipe'] });
  ({ browser, page } = await adminPage(dir, { width: 1280, height: 900 }));
});

after(async () => {
  await browser?.close();
  if (sim && sim.exitCode === null) {
    const exited = new Promise((r) => sim.once('exit', r));
    sim.kill('SIGINT');
    await exited;
  }
  await server?.stop();
  if (dir) cleanup(dir);
});

test('Restart from the device page → the command is done and the device comes back with its uptime reset', async () => {
  const [mac, before] = await until(async () => {
    const d = (await api.get('/api/v1/devices'))[0];
    return d?.auth === 'token' && d.uptime_s >= 3 ? [d.mac, d.uptime_s] : undefined;
  }, 'the simulated device enrols and runs 3 s');

  await page.goto(`${server.base}/devices/${mac}`);
  await page.getByText('● live').waitFor();
  await page.getByTestId('tab-control').click();
  const panel = page.getByTestId('control-panel');
  await panel.getByRole('button', { name: 'Restart…' }).click();
  await panel.getByText('Restart this device?').waitFor();
  await panel.getByRole('button', { name: 'Restart', exact: true }).click();
  const row = panel.getByTestId('command-row').first();
  await row.and(page.locator('[data-state="done"]')).waitFor({ timeout: 30000 });
  await row.getByText('restarting').waitFor();

  await until(async () => {
    const d = await api.get(`/api/v1/devices/${mac}`);
    return d.uptime_s < before ? d.uptime_s : undefined;
  }, 'the device checks in with its uptime reset');
  await page.screenshot({ path: join(shots, 'browser-device-commands.png'), fullPage: true, animations: 'disabled' });
  const list = await api.get(`/api/v1/devices/${mac}/commands`);
  assert.equal(list.commands[0].kind, 'restart');
  assert.equal(list.commands[0].state, 'done');
  assert.equal(list.unsupported, null);
});

test("a stock device's page says why it takes no commands", async () => {
  const mac = '24:0A:C4:A3:15:3C';
  const res = await fetch(`${server.base}/ota/arduino`, {
    headers: {
      'user-agent': 'ESP32-http-Update', 'x-ESP32-STA-MAC': mac, 'x-ESP32-free-space': '1310720',
      'x-ESP32-sketch-size': '1006448', 'x-ESP32-sketch-md5': '0123456789abcdef0123456789abcdef',
      'x-ESP32-chip-size': '4194304', 'x-ESP32-mode': 'sketch', 'x-ESP32-version': '0.0.1',
    },
  });
  assert.ok(res.status < 500, `${res.status}`);
  await page.goto(`${server.base}/devices/${mac}/control`);
  const why = page.getByTestId('commands-unsupported');
  await why.waitFor();
  assert.match(await why.innerText(), /HTTPUpdate.*no command channel/);
  await expect(() => page.getByTestId('control-panel').getByRole('button', { name: 'Restart…' }).count(), 0);
});
