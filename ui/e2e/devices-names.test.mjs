// Names, notes and tags belong to the admin. A native device that reports another name at its
// next check-in changes only what it "reports itself as"; the admin's name stays on the table
// and the page. Notes and tags are saved on the device page, shown as chips, found by the search
// and kept in the URL as a filter. How the server recognises a device reads from `device.auth`.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { expect } from './expect.mjs';
import { SimDevice, adminApi, injectedSession, makeImage, shots } from './harness.mjs';

const MAC = '24:0A:C4:0D:00:01';
let session, page, server, api, boiler, porch;
const row = (mac) => page.locator(`[role=row][data-mac="${mac}"]`);
const rows = () => page.locator('[role=row][data-mac]');

before(async () => {
  session = await injectedSession({ width: 1280, height: 760 });
  ({ page, server } = session);
  api = adminApi(server.base);
  boiler = new SimDevice(server.base, { mac: MAC, name: 'esp-7f3a', project: 'heating', version: '1.4.0', ip: '10.0.0.21', rssi: -58 });
  await boiler.checkin();
  // Its first install fails (a bad flash sector), as the reference client reports it.
  porch = new SimDevice(server.base, { mac: '24:0A:C4:0D:00:02', name: 'porch-light', project: 'lights', version: '2.0.1', ip: '10.0.0.22', rssi: -71, failFirst: 1 });
  await porch.checkin();
  // A stock Arduino updater the admin added: the server recognises it by its MAC alone.
  await api.post('/api/v1/devices', { mac: '24:0A:C4:0D:00:03', name: 'garage door', expect_protocol: 'arduino', project: 'door' });
});

after(async () => {
  await session?.close();
});

test('rename in the table; the device then reports another name: the admin\'s stays, its own shows as "reports itself as …"', async () => {
  await page.goto(server.base);
  await row(MAC).getByText('esp-7f3a').waitFor();

  // The pencil opens the name in place; Escape leaves it as it was.
  await row(MAC).hover();
  await row(MAC).getByRole('button', { name: 'Rename esp-7f3a' }).click();
  const input = row(MAC).getByTestId('name-input');
  assert.equal(await input.inputValue(), 'esp-7f3a');
  await input.fill('nothing saved');
  await input.press('Escape');
  await input.waitFor({ state: 'detached' });
  assert.equal(await row(MAC).getByTestId('device-name').innerText(), 'esp-7f3a');

  // A name the server refuses: its message, under the field, and the field stays open.
  await row(MAC).hover();
  await row(MAC).getByRole('button', { name: 'Rename esp-7f3a' }).click();
  await input.fill('x'.repeat(65));
  await input.press('Enter');
  const refusal = row(MAC).getByTestId('name-error');
  await refusal.waitFor();
  assert.match(await refusal.innerText(), /64/);
  assert.equal(await refusal.getAttribute('role'), 'alert');

  // Enter saves; the server has it as the admin's name.
  await input.fill('Boiler room');
  await input.press('Enter');
  await input.waitFor({ state: 'detached' });
  await expect(() => row(MAC).getByTestId('device-name').innerText(), 'Boiler room');
  const saved = await api.get(`/api/v1/devices/${MAC}`);
  assert.deepEqual([saved.admin_name, saved.name_source, saved.reported_name], ['Boiler room', 'admin', 'esp-7f3a']);

  // The device's next check-in reports another name: the table keeps the admin's.
  boiler.name = 'esp-boiler-v2';
  await boiler.checkin();
  await expect(async () => (await api.get(`/api/v1/devices/${MAC}`)).reported_name, 'esp-boiler-v2');
  await expect(() => row(MAC).getByTestId('device-name').innerText(), 'Boiler room');

  // Its page: the admin's name, and what the device calls itself under it.
  await row(MAC).getByRole('link', { name: /Boiler room/ }).click();
  await expect(() => page.getByTestId('device-title').innerText(), 'Boiler room');
  // The check-in's live event may reach the page after the API already has the new name: wait
  // for the page to show it, not for the first text it has.
  const reports = page.getByTestId('reports-as');
  await expect(async () => /^reports itself as esp-boiler-v2\b/.test(await reports.innerText()), true);
  await page.screenshot({ path: join(shots, 'browser-device-renamed.png'), fullPage: true, animations: 'disabled' });
});

test('on the device page: rename, and clearing the name gives back the one it reports', async () => {
  await page.getByRole('button', { name: 'Rename…' }).click();
  const input = page.getByTestId('name-input');
  assert.equal(await input.inputValue(), 'Boiler room');
  await input.fill('Boiler room (basement)');
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await expect(() => page.getByTestId('device-title').innerText(), 'Boiler room (basement)');
  assert.match(await page.getByTestId('reports-as').innerText(), /esp-boiler-v2/);

  // Emptied: the admin's name is gone, the reported one shows, and nothing says "reports itself as".
  await page.getByRole('button', { name: 'Rename…' }).click();
  await input.fill('');
  await input.press('Enter');
  await expect(() => page.getByTestId('device-title').innerText(), 'esp-boiler-v2');
  assert.equal(await page.getByTestId('reports-as').count(), 0);
  const cleared = await api.get(`/api/v1/devices/${MAC}`);
  assert.deepEqual([cleared.admin_name ?? null, cleared.name_source], [null, 'reported']);
  // Named again for what follows.
  await api.patch(`/api/v1/devices/${MAC}`, { name: 'Boiler room' });
  await expect(() => page.getByTestId('device-title').innerText(), 'Boiler room');
});

test('notes and tags are saved on the device page, refused with the server\'s words, found by the search and filtered by tag in the URL', async () => {
  // Its authentication, from device.auth: a native device holds a token.
  assert.equal(await page.getByTestId('auth').getAttribute('data-auth'), 'token');
  assert.match(await page.getByTestId('auth').innerText(), /^device token/);

  await page.getByRole('button', { name: 'Edit notes and tags' }).click();
  await page.getByRole('textbox', { name: /^Tags/ }).fill('heating, basement, a tag far longer than thirty-two characters');
  await page.getByRole('textbox', { name: 'Notes' }).fill('Relay board replaced in March.\nThe flue sensor reads 3 °C high.');
  await page.getByRole('button', { name: 'Save notes and tags' }).click();
  const refusal = page.getByRole('region', { name: 'Notes and tags' }).getByRole('alert');
  await refusal.waitFor();
  assert.match(await refusal.innerText(), /32/);
  assert.deepEqual((await api.get(`/api/v1/devices/${MAC}`)).tags, [], 'nothing saved');

  await page.getByRole('textbox', { name: /^Tags/ }).fill('heating, basement, rack 2');
  await page.getByRole('button', { name: 'Save notes and tags' }).click();
  await page.getByTestId('device-notes').waitFor();
  assert.equal(await page.getByTestId('device-notes').innerText(), 'Relay board replaced in March.\nThe flue sensor reads 3 °C high.');
  assert.deepEqual(await page.getByTestId('device-tags').getByTestId('tag-chip').allInnerTexts(), ['heating', 'basement', 'rack 2']);
  const stored = await api.get(`/api/v1/devices/${MAC}`);
  assert.deepEqual(stored.tags, ['heating', 'basement', 'rack 2']);
  assert.match(stored.notes, /^Relay board replaced in March\./);
  await page.screenshot({ path: join(shots, 'browser-device-notes.png'), fullPage: true, animations: 'disabled' });

  // The table: the chips on the row; the search finds the device by its notes, a tag, or the
  // name it reports under the admin's.
  await page.getByRole('link', { name: 'Devices', exact: true }).click();
  assert.deepEqual(await row(MAC).getByTestId('tag-chip').allInnerTexts(), ['heating', 'basement', 'rack 2']);
  const search = page.getByLabel('Search devices');
  for (const q of ['flue sensor', 'basement', 'esp-boiler-v2', 'RACK 2 boiler']) {
    await search.fill(q);
    await expect(async () => (await rows().count()) === 1 && (await rows().first().getAttribute('data-mac')), MAC);
  }
  await search.fill('basement porch');
  await expect(() => rows().count(), 0);
  await search.fill('');
  await expect(() => rows().count(), 3);

  // A click on a chip filters by that tag, kept in the URL: a reload shows the same rows.
  await row(MAC).getByTestId('tag-chip').filter({ hasText: 'rack 2' }).click();
  await expect(() => rows().count(), 1);
  assert.equal(new URL(page.url()).searchParams.get('tag'), 'rack 2');
  assert.equal(await page.getByLabel('Tag', { exact: true }).inputValue(), 'rack 2');
  await page.screenshot({ path: join(shots, 'browser-devices-tag-filter.png'), animations: 'disabled' });
  await page.reload();
  await row(MAC).waitFor();
  await expect(() => rows().count(), 1);
  // The control clears it.
  await page.getByLabel('Tag', { exact: true }).selectOption('');
  await expect(() => rows().count(), 3);
  assert.equal(new URL(page.url()).searchParams.get('tag'), null);
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: join(shots, 'browser-devices-tags-dark.png'), animations: 'disabled' });
  await page.emulateMedia({ colorScheme: 'light' });
});

test('a failed update says what to check, by its kind: on the row, on the device page, and grouped on its deployment', async () => {
  const image = makeImage(session.dir, 'lights', '2.1.0');
  const fw = await api.upload(image, 'lights-2.1.0.bin');
  const deployment = await api.post('/api/v1/deployments', { firmware_id: fw.id, devices: [porch.mac] });
  assert.equal(await porch.cycle([image]), 'failed');
  await expect(async () => (await api.get(`/api/v1/devices/${porch.mac}`)).update?.failure, 'device_reported');

  await page.goto(server.base);
  const hint = row(porch.mac).getByTestId('failure-hint');
  await hint.waitFor();
  assert.match(await hint.innerText(), /see the device’s message/);
  // Beside the device's long message, not pushed out of the cell by it.
  assert.ok((await hint.boundingBox()).width > 60, 'the hint has room on the row');
  assert.equal(await row(porch.mac).getByTestId('failure-reason').innerText(), 'flash write failed at 0x110000 (simulated bad sector)');

  await page.goto(`${server.base}/devices/${porch.mac}`);
  const advice = page.getByTestId('failure-hint');
  await advice.waitFor();
  assert.match(await advice.innerText(), /^What to check: The device itself reported this/);

  await page.goto(`${server.base}/deployments/${deployment.id}`);
  const groups = page.getByRole('list', { name: `Failed devices of deployment ${deployment.id} by reason` });
  await groups.waitFor();
  assert.deepEqual(await groups.locator('li').evaluateAll((li) => li.map((l) => l.dataset.failure)), ['device_reported']);
  assert.match(await groups.locator('li').first().innerText(), /^1 reported by the device — The device itself reported/);
  await page.screenshot({ path: join(shots, 'browser-deployment-failures-by-reason.png'), fullPage: true, animations: 'disabled' });
});

test('a stock client the admin added says plainly it holds no token', async () => {
  await page.goto(`${server.base}/devices/24:0A:C4:0D:00:03`);
  const auth = page.getByTestId('auth');
  await auth.waitFor();
  assert.equal(await auth.getAttribute('data-auth'), 'mac');
  assert.match(await auth.innerText(), /^MAC only — .*holds no token/);
});
