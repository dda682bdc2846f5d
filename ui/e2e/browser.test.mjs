// Browser end-to-end: the built UI, served by the real server, in real Chromium. Simulated devices
// check in; the test uploads through the drop zone, deploys through the UI, and watches the
// progress bars move to done as the devices report. No sleeps: every wait is for a condition.
// (Truthful deployments — plans, retry, rollback, the Deployments page — are in deployments.test.mjs.)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { expect } from './expect.mjs';
import { shots, ADMIN, SimDevice, cleanup, launchBrowser, makeImage, startServer, tempDir } from './harness.mjs';

const PROJECT = 'bench-sensor';
let dir, server, browser, page, v1, v2, devices;

before(async () => {
  dir = tempDir();
  v1 = makeImage(dir, PROJECT, '1.4.0');
  v2 = makeImage(dir, PROJECT, '1.5.0');
  server = await startServer(join(dir, 'data'));
  // Ten bench devices on 1.4.0 and two of another project that the deployment must not touch.
  devices = [];
  for (let i = 1; i <= 12; i++) {
    const other = i > 10;
    devices.push(new SimDevice(server.base, {
      mac: `24:0A:C4:12:00:${String(i).padStart(2, '0')}`,
      name: other ? `door-${i - 10}` : `bench-${String(i).padStart(2, '0')}`,
      project: other ? 'door-controller' : PROJECT,
      version: other ? '0.9.2' : '1.4.0',
      sha256: other ? undefined : v1.sha256,
      ip: `192.168.7.${20 + i}`,
      rssi: -45 - i * 3,
    }));
  }
  await Promise.all(devices.map((d) => d.checkin()));
  browser = await launchBrowser(join(dir, 'chromium-profile'), { width: 1440, height: 720 });
  page = await browser.newPage();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (dir) cleanup(dir);
});

test('asks for the admin token once, then shows every device that checked in', async () => {
  await page.goto(server.base);
  await page.getByLabel('Admin token').fill('wrong-token');
  await page.getByRole('button', { name: 'Connect' }).click();
  await page.getByRole('alert').filter({ hasText: 'did not accept' }).waitFor();
  await page.getByLabel('Admin token').fill(ADMIN);
  await page.getByRole('button', { name: 'Connect' }).click();
  await expect(() => page.locator('[role=row][data-mac]').count(), 12);
  await page.getByText('live', { exact: false }).first().waitFor();
  // A reload keeps the token (localStorage) and the client route.
  await page.reload();
  await expect(() => page.locator('[role=row][data-mac]').count(), 12);
});

test('a new device appears live, without a reload', async () => {
  const late = new SimDevice(server.base, { mac: '24:0A:C4:12:00:99', name: 'late-joiner', project: 'door-controller',
    version: '0.9.2', ip: '192.168.7.99', rssi: -70 });
  await late.checkin();
  await page.locator('[data-mac="24:0A:C4:12:00:99"]').getByText('late-joiner').waitFor();
  // Search narrows the table.
  await page.getByLabel('Search devices').fill('late');
  await expect(() => page.locator('[role=row][data-mac]').count(), 1);
  await page.getByLabel('Search devices').fill('');
});

test('an image dropped on the drop zone lands in the library; a bad file shows the server\'s reason', async () => {
  await page.getByRole('link', { name: 'Firmware' }).click();
  await page.getByText('The library is empty').waitFor();
  // A real HTML drop event carrying a File, as a browser makes it when a file is dragged in.
  await page.getByRole('region', { name: 'Drop firmware here' }).evaluate((zone, { name, b64 }) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], name, { type: 'application/octet-stream' }));
    zone.dispatchEvent(new DragEvent('dragenter', { dataTransfer: dt, bubbles: true, cancelable: true }));
    zone.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, { name: 'bench-sensor-1.5.0.bin', b64: v2.bytes.toString('base64') });
  const ok = page.locator('li[data-state=accepted]');
  await ok.waitFor();
  assert.match(await ok.innerText(), /esp32 · bench-sensor · 1\.5\.0/);
  await page.locator('table[aria-label="Firmware library"] tr', { hasText: '1.5.0' }).waitFor();

  // A file that is not an app image, through the file input. The reason must be the server's
  // own message, verbatim: ask the server directly what it says about these bytes.
  const junk = Buffer.from('this is a text file, not firmware\n'.repeat(40));
  const direct = await fetch(`${server.base}/api/v1/firmware?filename=notes.bin`, {
    method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/octet-stream' }, body: junk,
  });
  assert.equal(direct.status, 422);
  const { error } = await direct.json();
  await page.getByTestId('firmware-input').setInputFiles({ name: 'notes.bin', mimeType: 'application/octet-stream', buffer: junk });
  const bad = page.locator('li[data-state=rejected]');
  await bad.waitFor();
  assert.equal(await bad.locator('.bad').innerText(), `rejected: ${error.message}`);
});

test('a deployment made in the UI reaches the project\'s devices and the bars move to done', async () => {
  await page.locator('tr', { hasText: '1.5.0' }).getByRole('button', { name: 'Deploy…' }).click();
  const dialog = page.getByRole('dialog');
  // The dry run counts exactly the ten bench-sensor devices, not the door controllers.
  await dialog.getByTestId('reach').filter({ hasText: '10' }).waitFor();
  await dialog.getByRole('button', { name: 'Deploy to 10 devices' }).click();
  await page.getByRole('status').filter({ hasText: '10 devices will be offered bench-sensor 1.5.0' }).waitFor();

  await page.getByRole('link', { name: 'Devices' }).click();
  const bench = devices.filter((d) => d.project === PROJECT);
  await Promise.all(bench.map((d) => d.checkin()));
  for (const d of bench) assert.ok(d.offer, `${d.mac} got no offer`);
  await expect(() => page.getByText('update offered').count(), 10);

  // Each device moves at its own pace, so the table shows a spread of states.
  const bar = (d) => page.locator(`[data-mac="${d.mac}"] [role=progressbar]`);
  await Promise.all(bench.map((d, i) => d.progress('downloading', 5 + i * 9)));
  for (const [i, d] of bench.entries()) await expect(() => bar(d).getAttribute('aria-valuenow'), String(5 + i * 9));
  await bench[8].progress('flashing', 100);
  await bench[9].progress('verifying', 100);
  await bench[0].progress('failed', 5, 'download interrupted: connection reset');
  await expect(() => page.locator('[data-mac] [role=progressbar]').count(), 10);
  await page.locator(`[data-mac="${bench[8].mac}"]`).getByText('flashing').waitFor();
  await page.locator(`[data-mac="${bench[0].mac}"]`).getByText('failed').waitFor();
  await page.screenshot({ path: join(shots, 'browser-devices.png'), animations: 'disabled' });
  // The same table in the dark theme (the system's preference; the toggle overrides it).
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: join(shots, 'browser-devices-dark.png'), animations: 'disabled' });
  await page.emulateMedia({ colorScheme: 'light' });

  // The bar moves while a download goes on.
  await bench[1].progress('downloading', 77);
  await expect(() => bar(bench[1]).getAttribute('aria-valuenow'), '77');

  // Everyone (but the failed one) finishes and checks in on the new image.
  for (const d of bench.slice(1)) {
    await d.progress('rebooting', 100);
    await d.finish(v2);
  }
  await expect(() => page.getByText('✓ updated to 1.5.0').count(), 9);
  await expect(() => page.locator('[data-mac] [role=progressbar]').count(), 1);
  const running = await page.locator(`[data-mac="${bench[3].mac}"] [role=cell]`).nth(4).innerText();
  assert.equal(running.trim(), '1.5.0');
});

test('the device page shows the update history with its error, and can reset enrolment', async () => {
  await page.locator('[data-mac="24:0A:C4:12:00:01"] a').click();
  await page.getByRole('heading', { name: /bench-01/ }).waitFor();
  // Someone on the LAN poses as this token-enrolled device through the Arduino route: refused
  // ("no update" for HTTPUpdate), nothing of the device changes, and its page says so.
  const before = await (await fetch(`${server.base}/api/v1/devices/24:0A:C4:12:00:01`, { headers: { authorization: `Bearer ${ADMIN}` } })).json();
  const forged = await fetch(`${server.base}/ota/arduino`, {
    headers: { 'x-esp32-sta-mac': '24:0A:C4:12:00:01', 'x-esp32-sketch-md5': '0'.repeat(32), 'x-esp32-mode': 'sketch', 'user-agent': 'ESP32-http-Update' },
  });
  assert.equal(forged.status, 304, 'HTTPUpdate is told there is no update');
  await page.getByText(/Refused requests/).waitFor();
  await page.getByText(/over arduino/).waitFor();
  await page.screenshot({ path: join(shots, 'browser-device-refused.png'), fullPage: true, animations: 'disabled' });
  const after = await (await fetch(`${server.base}/api/v1/devices/24:0A:C4:12:00:01`, { headers: { authorization: `Bearer ${ADMIN}` } })).json();
  for (const k of ['version', 'project', 'protocol', 'sha256', 'state']) assert.deepEqual(after[k], before[k], `${k} unchanged`);
  // The admin lets every protocol serve it from the device page; the server keeps that.
  await page.getByLabel('Expected protocol', { exact: true }).selectOption('any');
  await expect(
    async () => (await (await fetch(`${server.base}/api/v1/devices/24:0A:C4:12:00:01`, { headers: { authorization: `Bearer ${ADMIN}` } })).json()).expect_protocol,
    'any',
  );
  await page.getByLabel('Expected protocol', { exact: true }).selectOption('native');
  await expect(
    async () => (await (await fetch(`${server.base}/api/v1/devices/24:0A:C4:12:00:01`, { headers: { authorization: `Bearer ${ADMIN}` } })).json()).expect_protocol,
    'native',
  );
  const history = page.getByRole('table', { name: 'Update history' });
  await history.getByText('download interrupted: connection reset').waitFor();
  await history.getByText('1.4.0 → 1.5.0').waitFor();
  // A re-flashed device lost its token: reset its enrolment from here.
  await page.getByRole('button', { name: 'Reset enrolment…' }).click();
  await page.getByRole('button', { name: 'Reset enrolment', exact: true }).click();
  await page.getByRole('status').filter({ hasText: 'Enrolment reset' }).waitFor();
  const d = devices[0];
  d.token = null; // the "re-flashed" device checks in without a token and enrols again
  assert.ok((await d.checkin()).token, 'a new token after the reset');
});

test('settings show how the server runs; the library refuses deleting a deployed image until it is stopped', async () => {
  await page.getByRole('link', { name: 'Settings' }).click();
  const table = page.getByRole('table', { name: 'Server settings' });
  await table.getByText(server.base.replace('http://', '')).first().waitFor();
  await page.getByText('read-only here', { exact: false }).first().waitFor();
  assert.ok(await page.getByLabel(/Open enrolment/).isChecked(), 'open enrolment is on by default');

  await page.getByRole('link', { name: 'Firmware' }).click();
  const row = page.locator('tr', { hasText: '1.5.0' });
  // Nine devices checked in running the new image (the tenth failed).
  await row.getByText('9 devices').waitFor();
  await row.getByRole('button', { name: 'Delete' }).click();
  await row.getByRole('button', { name: 'Really delete' }).click();
  // The server refuses while a deployment uses the image; its message is shown.
  await page.getByRole('alert').filter({ hasText: /deploy/i }).waitFor();
  await page.locator('tr', { hasText: '1.5.0' }).first().waitFor();
  await page.screenshot({ path: join(shots, 'browser-firmware.png'), animations: 'disabled' });
  // The row leads to the deployment that uses the image; stopping it there asks first and stops
  // that one only. Then the delete goes through.
  await row.getByRole('link', { name: 'deployment 1' }).click();
  const card = page.locator('article[data-deployment="1"]');
  await card.getByRole('table', { name: 'Devices of deployment 1' }).waitFor();
  await card.getByRole('button', { name: 'Stop…' }).click();
  await card.getByRole('button', { name: 'Stop deployment 1' }).click();
  await card.getByTestId('status').filter({ hasText: 'stopped' }).waitFor();
  await page.getByRole('link', { name: 'Firmware' }).click();
  await row.getByText('deployed:').waitFor({ state: 'detached' });
  await row.getByRole('button', { name: 'Delete' }).click();
  await row.getByRole('button', { name: 'Really delete' }).click();
  await page.locator('tr', { hasText: '1.5.0' }).waitFor({ state: 'detached' });
});
