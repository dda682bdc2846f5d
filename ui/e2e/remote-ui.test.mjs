// Remote control from the UI in a real browser: the real server, two `otafleet-sim --commands`
// devices (native protocol, one project), the built UI in Chromium. A command added to the
// project through the API shows as a button on a device's Control tab; run from there (after its
// confirmation) it reaches `done` with the simulator's answer. Two devices ticked in the table
// and restarted at once with the bulk action: both commands reach `done` in the outcome dialog.
// Every wait is for a condition (a locator, or the API polled), never for time.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { expect } from './expect.mjs';
import { adminApi, adminPage, cleanup, shots, startServer, startSim, tempDir } from './harness.mjs';

let dir, server, sim, browser, page, api, macs;

before(async () => {
  dir = tempDir();
  server = await startServer(join(dir, 'data'));
  api = adminApi(server.base);
  sim = startSim(server.base, ['--devices', '2', '--protocols', 'native=2', '--project', 'remote-lab', '--wait-for-deployment',
    '--forever', '--interval', '0.5', '--jitter', '0', '--reboot-ms', '100', '--commands', '--seed', '15']);
  await expect(async () => (await api.get('/api/v1/devices')).filter((d) => d.mac && d.auth === 'token').length, 2, { timeout: 30000 });
  macs = (await api.get('/api/v1/devices')).filter((d) => d.auth === 'token').map((d) => d.mac);
  ({ browser, page } = await adminPage(dir, { width: 1280, height: 900 }));
});

after(async () => {
  await browser?.close();
  await sim?.stop();
  await server?.stop();
  if (dir) cleanup(dir);
});

test("a project command runs from the device's Control tab and comes back done with the device's answer", async () => {
  const project = (await api.get(`/api/v1/devices/${macs[0]}`)).project;
  assert.equal(project, 'remote-lab');
  await api.patch(`/api/v1/projects/${project}`, {
    commands: [{ key: 'blink', label: 'Blink LED', payload: { times: 3 }, confirmation: 'Blink the LED three times?' }],
  });

  await page.goto(`${server.base}/devices/${macs[0]}/control`);
  await page.getByText('● live').waitFor();
  const panel = page.getByTestId('control-panel');
  await panel.getByTestId('project-commands').getByRole('button', { name: 'Blink LED…' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByText('Blink the LED three times?').waitFor();
  await dialog.getByRole('button', { name: 'Blink LED' }).click();
  const row = panel.getByTestId('command-row').first();
  await row.and(page.locator('[data-state="done"]')).waitFor({ timeout: 30000 });
  await row.getByText('custom blink', { exact: true }).waitFor();

  const list = await api.get(`/api/v1/devices/${macs[0]}/commands`);
  assert.equal(list.commands[0].kind, 'custom');
  assert.equal(list.commands[0].key, 'blink');
  assert.deepEqual(list.commands[0].payload, { times: 3 });
  assert.equal(list.commands[0].state, 'done');
  await page.screenshot({ path: join(shots, 'browser-device-project-commands.png'), fullPage: true, animations: 'disabled' });
});

test('two devices ticked in the table, restarted at once, then given the project command: all done', async () => {
  await page.goto(`${server.base}/`);
  await page.getByText('● live').waitFor();
  for (const mac of macs) {
    const d = await api.get(`/api/v1/devices/${mac}`);
    await page.getByRole('checkbox', { name: `Select ${d.name || d.mac}`, exact: true }).check();
  }
  await page.getByTestId('bulk-commands').getByRole('button', { name: 'Restart…' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByText('Restart 2 devices?', { exact: false }).waitFor();
  await dialog.getByTestId('bulk-confirm').click();
  await dialog.getByTestId('bulk-summary').getByText('2 queued').waitFor();
  await expect(() => dialog.locator('[data-testid="bulk-result"][data-state="done"]').count(), 2, { timeout: 30000 });
  await page.screenshot({ path: join(shots, 'browser-bulk-restart.png'), fullPage: true, animations: 'disabled' });

  for (const mac of macs) {
    const c = (await api.get(`/api/v1/devices/${mac}/commands`)).commands[0];
    assert.equal(c.kind, 'restart');
    assert.equal(c.state, 'done');
  }

  // The same selection runs the project's command, after its own confirmation.
  await dialog.getByRole('button', { name: 'Close' }).click();
  const bar = page.getByTestId('bulk-commands');
  await bar.getByLabel('Project command').selectOption('blink');
  await bar.getByRole('button', { name: 'Run command…' }).click();
  await dialog.getByText('Blink the LED three times?', { exact: false }).waitFor();
  await dialog.getByTestId('bulk-confirm').click();
  await expect(() => dialog.locator('[data-testid="bulk-result"][data-state="done"]').count(), 2, { timeout: 30000 });
  for (const mac of macs) {
    const c = (await api.get(`/api/v1/devices/${mac}/commands`)).commands[0];
    assert.equal(c.key, 'blink');
    assert.equal(c.state, 'done');
    assert.equal(c.result, 'custom blink');
  }
});
