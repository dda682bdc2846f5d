// Truthful deployments in a real browser: the real server, devices simulated over the native
// protocol (harness.mjs), the built UI in Chromium. A device that fails three times is retried
// from its page; a fleet on 1.1.0 goes back to 1.0.0 through the deploy dialog's "allow
// rollback"; a deployment that would cross projects asks first; the Deployments page follows a
// wave until it is completed, and stops one deployment only after asking. Every wait is for a
// condition (a locator, or the API polled), never for time.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { expect } from './expect.mjs';
import { SimDevice, adminApi, cleanup, adminPage, makeImage, shots, startServer, tempDir } from './harness.mjs';

let dir, server, browser, page, api;
const images = [];
const fw = {}; // library records by "project version"

function fleet(prefix, project, n, over = {}) {
  return Array.from({ length: n }, (_, i) => new SimDevice(server.base, {
    mac: `24:0A:C4:${prefix}:00:${String(i + 1).padStart(2, '0')}`,
    name: `${project.split('-')[0]}-${String(i + 1).padStart(2, '0')}`,
    project, ip: `192.168.${Number.parseInt(prefix, 16) % 250}.${10 + i}`, rssi: -50 - i * 4, ...over,
  }));
}

const deviceOf = (mac) => api.get(`/api/v1/devices/${mac}`);
const dialogGroup = (dialog, kind) => dialog.getByTestId(`group-${kind}`);

before(async () => {
  dir = tempDir();
  for (const [project, version] of [['lab-probe', '1.0.0'], ['lab-probe', '1.1.0'], ['greenhouse', '1.0.0'], ['greenhouse', '1.1.0'],
    ['irrigation', '2.0.0'], ['wave', '1.0.0'], ['wave', '2.0.0']]) {
    images.push(makeImage(dir, project, version));
  }
  server = await startServer(join(dir, 'data'));
  api = adminApi(server.base);
  for (const img of images) fw[`${img.project} ${img.version}`] = await api.upload(img, `${img.project}-${img.version}.bin`);
  ({ browser, page } = await adminPage(dir, { width: 1440, height: 900 }));
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (dir) cleanup(dir);
});

const image = (project, version) => images.find((i) => i.project === project && i.version === version);

test('a device fails 3 times → Retry → it updates', async () => {
  const v1 = image('lab-probe', '1.0.0');
  const probes = fleet('A1', 'lab-probe', 3, { version: '1.0.0', sha256: v1.sha256 });
  const flaky = probes[0];
  flaky.failuresLeft = 3;
  flaky.name = 'probe-flaky';
  await Promise.all(probes.map((d) => d.checkin()));

  // Deploy 1.1.0 to the project from the library.
  await page.goto(`${server.base}/firmware`);
  await page.getByText('● live').waitFor();
  const row = page.getByTestId('firmware-row').filter({ hasText: 'lab-probe' }).filter({ hasText: '1.1.0' });
  await row.getByRole('button', { name: 'Deploy…' }).click();
  const dialog = page.getByRole('dialog');
  await dialogGroup(dialog, 'offer').filter({ hasText: '3 will be offered the image' }).waitFor();
  await dialog.getByRole('button', { name: 'Deploy to 3 devices' }).click();
  await page.getByRole('status').filter({ hasText: 'devices will be offered lab-probe 1.1.0' }).waitFor();

  for (const d of probes.slice(1)) assert.equal(await d.cycle(images), 'done');
  for (let i = 1; i <= 3; i++) assert.equal(await flaky.cycle(images), 'failed', `attempt ${i} fails`);
  assert.equal(await flaky.cycle(images), 'idle', 'the attempt limit: nothing is offered a fourth time');

  // Its page says why it gets nothing, and offers Retry.
  await page.getByRole('link', { name: 'Devices' }).click();
  await page.locator(`[data-mac="${flaky.mac}"] a`).click();
  await page.getByRole('heading', { name: /probe-flaky/ }).waitFor();
  const target = page.getByTestId('target');
  await target.filter({ hasText: '3 attempts at this image failed' }).waitFor();
  const history = page.getByRole('table', { name: 'Update history' });
  await expect(() => history.locator('tbody tr', { hasText: 'flash write failed' }).count(), 3);
  await page.screenshot({ path: join(shots, 'browser-device-retry.png'), fullPage: true, animations: 'disabled' });

  await page.getByRole('button', { name: 'Retry', exact: true }).click();
  await page.getByRole('status').filter({ hasText: 'A new attempt' }).waitFor();
  await page.getByRole('button', { name: 'Retry', exact: true }).waitFor({ state: 'detached' });
  assert.equal(await flaky.cycle(images), 'done', 'the retried attempt installs');
  assert.equal((await deviceOf(flaky.mac)).version, '1.1.0');

  await target.filter({ hasText: 'runs it' }).waitFor();
  const newest = history.locator('tbody tr').first();
  await newest.filter({ hasText: 'done' }).getByText('retry', { exact: true }).waitFor();
  await page.screenshot({ path: join(shots, 'browser-device-retried.png'), fullPage: true, animations: 'disabled' });
});

test('a fleet on 1.1.0 → roll back to 1.0.0 from the UI → all back on 1.0.0', async () => {
  const [v1, v11] = [image('greenhouse', '1.0.0'), image('greenhouse', '1.1.0')];
  const house = fleet('B2', 'greenhouse', 5, { version: '1.0.0', sha256: v1.sha256 });
  await Promise.all(house.map((d) => d.checkin()));
  await api.post('/api/v1/deployments', { firmware_id: fw['greenhouse 1.1.0'].id, project: 'greenhouse', chip: 'esp32' });
  for (const d of house) assert.equal(await d.cycle(images), 'done');
  for (const d of house) assert.equal((await deviceOf(d.mac)).version, '1.1.0');
  assert.ok(v11);

  // One device first, from its page: back to the image it ran before its last update.
  await page.goto(`${server.base}/devices/${house[0].mac}`);
  await page.getByRole('heading', { name: /greenhouse-01/ }).waitFor();
  await page.getByRole('button', { name: 'Roll back to 1.0.0…' }).click();
  await page.getByText('the image it ran before its update to 1.1.0', { exact: false }).waitFor();
  await page.getByRole('button', { name: 'Roll back to 1.0.0', exact: true }).click();
  await page.getByRole('status').filter({ hasText: 'greenhouse-01 goes back to 1.0.0' }).waitFor();
  assert.equal(await house[0].cycle(images), 'done');
  assert.equal((await deviceOf(house[0].mac)).version, '1.0.0');

  // Then the fleet, from the deploy dialog: 1.0.0 is older than what four of them run.
  await page.getByRole('link', { name: 'Firmware' }).click();
  const row = page.getByTestId('firmware-row').filter({ hasText: 'greenhouse' }).filter({ hasText: '1.0.0' });
  await row.getByRole('button', { name: 'Deploy…' }).click();
  const dialog = page.getByRole('dialog');
  await dialogGroup(dialog, 'newer_running').filter({ hasText: '4 run a newer version' }).waitFor();
  await dialogGroup(dialog, 'already_running').filter({ hasText: '1 already runs it' }).waitFor();
  const deploy = dialog.getByRole('button', { name: /^Deploy to/ });
  assert.equal(await deploy.innerText(), 'Deploy to 0 devices');
  assert.ok(await deploy.isDisabled(), 'nothing would be offered: Deploy is off');
  await dialogGroup(dialog, 'newer_running').getByRole('button').click(); // open the group: each device and why
  await dialog.getByRole('table').getByText('deploy it as a rollback to install it', { exact: false }).first().waitFor();
  await page.screenshot({ path: join(shots, 'browser-deploy-rollback-plan.png'), animations: 'disabled' });

  await dialog.getByLabel('allow rollback').check();
  await dialogGroup(dialog, 'offer').filter({ hasText: '4 will be offered the image' }).waitFor();
  await dialog.getByText('Creating it stops deployments', { exact: false }).waitFor();
  await page.screenshot({ path: join(shots, 'browser-deploy-rollback-allowed.png'), animations: 'disabled' });
  await dialog.getByRole('button', { name: 'Deploy to 4 devices' }).click();
  await dialog.waitFor({ state: 'detached' });

  const outcomes = [];
  for (const d of house) outcomes.push(await d.cycle(images));
  assert.deepEqual(outcomes, ['idle', 'done', 'done', 'done', 'done']);
  for (const d of house) assert.equal((await deviceOf(d.mac)).version, '1.0.0', `${d.name} runs 1.0.0 again`);
  await page.getByRole('link', { name: 'Devices' }).click();
  await page.getByLabel('Project').selectOption('greenhouse');
  for (const d of house) {
    await expect(async () => (await page.locator(`[data-mac="${d.mac}"] [role=cell]`).nth(4).innerText()).trim(), '1.0.0');
  }
  await page.getByLabel('Project').selectOption('');
});

test('a cross-project deploy asks first', async () => {
  const irrigation = fleet('C3', 'irrigation', 2, { version: '1.0.0' });
  const [door] = fleet('C4', 'door-controller', 1, { version: '0.9.2', name: 'door-01' });
  door.name = 'door-01';
  await Promise.all([...irrigation, door].map((d) => d.checkin()));
  const before = (await api.get('/api/v1/deployments')).length;

  // Tick one irrigation device and the door controller, and deploy the irrigation image.
  await page.goto(server.base);
  await page.getByLabel(`Select ${irrigation[0].name}`).check();
  await page.getByLabel('Select door-01').check();
  await page.getByLabel('Image to deploy').selectOption({ label: 'irrigation 2.0.0 (esp32)' });
  await page.getByRole('button', { name: 'Deploy…' }).click();
  const dialog = page.getByRole('dialog');
  await dialogGroup(dialog, 'offer').filter({ hasText: '1 will be offered the image' }).waitFor();
  await dialogGroup(dialog, 'other_project').filter({ hasText: '1 runs another project' }).waitFor();
  await dialog.getByRole('button', { name: 'Deploy to 1 device' }).click();

  // The server refuses without consent; the dialog asks instead of showing an error.
  const question = dialog.getByRole('alertdialog', { name: 'Install on devices of another project?' });
  await question.filter({ hasText: `${door.mac} (door-controller)` }).waitFor();
  assert.equal(await dialog.getByRole('alert').count(), 0, 'no error note');
  assert.equal((await api.get('/api/v1/deployments')).length, before, 'nothing stored before the answer');
  await page.screenshot({ path: join(shots, 'browser-deploy-other-project.png'), animations: 'disabled' });

  await question.getByRole('button', { name: 'Install on them too' }).click();
  await dialog.waitFor({ state: 'detached' });
  await page.getByRole('status').filter({ hasText: '2 devices will be offered irrigation 2.0.0' }).waitFor();
  const [created] = await api.get('/api/v1/deployments');
  assert.equal(created.allow_other_project, true);
  assert.deepEqual(created.devices, [irrigation[0].mac, door.mac].sort());
  assert.equal(await door.cycle(images), 'done');
  const after = await deviceOf(door.mac);
  assert.deepEqual([after.project, after.version], ['irrigation', '2.0.0']);
  await page.getByRole('button', { name: 'Clear selection' }).click();
});

test('the Deployments page shows a wave finish as `completed`', async () => {
  const v1 = image('wave', '1.0.0');
  const wave = fleet('D5', 'wave', 6, { version: '1.0.0', sha256: v1.sha256 });
  await Promise.all(wave.map((d) => d.checkin()));
  const dep = await api.post('/api/v1/deployments', { firmware_id: fw['wave 2.0.0'].id, project: 'wave', chip: 'esp32' });

  await page.getByRole('link', { name: 'Deployments', exact: true }).click();
  const card = page.locator(`article[data-deployment="${dep.id}"]`);
  const bar = card.getByRole('img');
  await card.getByTestId('status').filter({ hasText: 'active' }).waitFor();
  await expect(() => bar.getAttribute('aria-label'), `Deployment ${dep.id}: 6 waiting`);

  // The wave moves: three done, one downloading, two still to check in. The bar follows live.
  for (const d of wave.slice(0, 3)) assert.equal(await d.cycle(images), 'done');
  await wave[3].checkin();
  await wave[3].progress('downloading', 45);
  await expect(() => bar.getAttribute('aria-label'), `Deployment ${dep.id}: 3 done, 1 in progress, 2 waiting`);
  await card.getByRole('button', { name: /Devices \(6\)/ }).click();
  const devices = card.getByRole('table', { name: `Devices of deployment ${dep.id}` });
  await devices.locator(`tr[data-mac="${wave[3].mac}"]`).filter({ hasText: 'downloading 45%' }).waitFor();
  await card.scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(shots, 'browser-deployments-wave.png'), fullPage: true, animations: 'disabled' });

  await wave[3].progress('rebooting', 100);
  await wave[3].finish(image('wave', '2.0.0'));
  for (const d of wave.slice(4)) assert.equal(await d.cycle(images), 'done');
  await card.getByTestId('status').filter({ hasText: 'completed' }).waitFor();
  await expect(() => bar.getAttribute('aria-label'), `Deployment ${dep.id}: 6 done`);
  await expect(() => devices.getByText('runs it', { exact: true }).count(), 6);
  assert.equal((await api.get(`/api/v1/deployments/${dep.id}`)).deployment.status, 'completed');
  await page.screenshot({ path: join(shots, 'browser-deployments-completed.png'), fullPage: true, animations: 'disabled' });

  // Stop asks first and stops only that deployment: the wave's own stays as it is.
  const statuses = async () => Object.fromEntries((await api.get('/api/v1/deployments')).map((d) => [d.id, d.status]));
  const beforeStop = await statuses();
  const probe = Object.keys(beforeStop).map(Number).sort((a, b) => a - b)[0]; // the lab-probe deployment
  const other = page.locator(`article[data-deployment="${probe}"]`);
  await other.getByRole('button', { name: 'Stop…' }).click();
  await other.getByText(`Stop deployment ${probe}?`, { exact: false }).waitFor();
  assert.deepEqual(await statuses(), beforeStop, 'nothing stopped before the confirmation');
  await other.getByRole('button', { name: `Stop deployment ${probe}` }).click();
  await other.getByTestId('status').filter({ hasText: 'stopped' }).waitFor();
  assert.deepEqual(await statuses(), { ...beforeStop, [probe]: 'stopped' });
  await card.getByTestId('status').filter({ hasText: 'completed' }).waitFor();
});
