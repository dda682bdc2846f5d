// The lab engineer adds a device that runs the ESP Admin SDK from the Devices page ("Add ESP Admin
// device…") against the real server (HTTPS beside HTTP, the default, so the answer carries a
// credentials.h): a bad name is refused in the form; a good one shows the device id, the API key
// (once) and credentials.h; that key really authenticates the SDK's first call; the dialog closes
// only through "Done — I copied the key"; the row arrives through the live stream. Screenshots at
// 1440×900, light and dark (esp-admin-add-1440-{light,dark}.png).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SimDevice, adminApi, injectedSession, shots } from './harness.mjs';

let session, server, browser, page;

before(async () => {
  session = await injectedSession({ width: 1440, height: 900 });
  ({ server, browser, page } = session);
  mkdirSync(shots, { recursive: true });
  await browser.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.base });
  // A device of the project already, so that the form offers it.
  await new SimDevice(server.base, { mac: '24:0A:C4:AA:00:01', name: 'greenhouse-valve', project: 'climate', version: '1.4.0',
    ip: '10.20.1.11', rssi: -58 }).checkin();
});

after(async () => {
  await session?.close();
});

const settle = () => page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));

test('add an ESP Admin device: the id, the key once and credentials.h; the key works; the row arrives live', async () => {
  const tls = await (await fetch(`${server.base}/api/v1/tls`)).json();
  assert.equal(tls.mode, 'auto', 'the harness server serves HTTPS beside HTTP');
  await page.goto(server.base);
  // Follow the live stream first, so that the row below can only come from the server's event.
  await page.getByText('● live').waitFor();
  await page.locator('[role=row][data-mac="24:0A:C4:AA:00:01"]').waitFor();

  await page.getByRole('button', { name: 'Add ESP Admin device…' }).click();
  const dialog = page.getByRole('dialog', { name: 'Add an ESP Admin device' });
  const name = dialog.getByLabel('Name');
  assert.ok(await name.evaluate((e) => e === document.activeElement), 'the dialog starts in the name field');
  assert.deepEqual(await dialog.locator('#esp-projects option').evaluateAll((os) => os.map((o) => o.value)), ['climate']);

  // A name the server refuses (422 invalid_name): in the form, on the field; nothing added.
  await name.fill('x'.repeat(65));
  await dialog.getByRole('button', { name: 'Add ESP Admin device' }).click();
  const alert = dialog.getByRole('alert');
  await alert.filter({ hasText: 'at most 64 characters' }).waitFor();
  assert.equal(await name.getAttribute('aria-invalid'), 'true');
  await name.fill('greenhouse');
  await alert.waitFor({ state: 'detached' });
  await dialog.getByLabel('Project').fill('climate');
  await dialog.getByRole('button', { name: 'Add ESP Admin device' }).click();

  const id = await dialog.getByTestId('esp-admin-id').innerText();
  const key = await dialog.getByTestId('esp-admin-key').innerText();
  assert.match(id, /^[0-9a-f]{24}$/);
  assert.match(key, /^[A-Za-z0-9]{30}$/);
  await dialog.getByText('Shown once — copy it now.').waitFor();
  assert.match(await dialog.getByTestId('esp-admin-once').innerText(), /otafleet keeps only a hash of the API key/);
  const creds = await dialog.getByTestId('esp-admin-credentials').evaluate((e) => e.textContent);
  assert.ok(creds.includes(`"${id}"`), 'credentials.h carries the id');
  assert.ok(creds.includes(`"${key}"`), 'credentials.h carries the key');
  assert.ok(creds.includes('-----BEGIN CERTIFICATE-----'), "credentials.h carries the server's CA");
  await dialog.getByText('include/credentials.h').waitFor();

  // Copy puts exactly the key, and exactly credentials.h, on the clipboard.
  await dialog.getByRole('button', { name: 'Copy the API key' }).click();
  await dialog.getByRole('button', { name: 'Copy the API key' }).filter({ hasText: 'Copied' }).waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), key);
  await dialog.getByRole('button', { name: 'Copy credentials.h' }).click();
  await dialog.getByRole('button', { name: 'Copy credentials.h' }).filter({ hasText: 'Copied' }).waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), creds);

  // Download saves the same text as credentials.h.
  const [download] = await Promise.all([page.waitForEvent('download'), dialog.getByRole('link', { name: 'Download' }).click()]);
  assert.equal(download.suggestedFilename(), 'credentials.h');
  assert.equal(readFileSync(await download.path(), 'utf8'), creds);

  // The key authenticates the SDK's first call (plain HTTP from this machine is allowed).
  const res = await fetch(`${server.base}/api/device/${id}/settings`, { headers: { 'Api-Key': key } });
  assert.equal(res.status, 200, await res.clone().text());
  assert.equal((await res.json()).username, id);
  const other = `${key.slice(0, -1)}${key.endsWith('x') ? 'y' : 'x'}`;
  const wrong = await fetch(`${server.base}/api/device/${id}/settings`, { headers: { 'Api-Key': other } });
  assert.equal(wrong.status, 401, `${other} (not ${key}) was let in`);

  // Screenshots of the dialog with what is shown once.
  // (once both Copy buttons are back from "Copied")
  await dialog.getByRole('button', { name: 'Copy the API key' }).filter({ hasText: /^Copy$/ }).waitFor();
  await dialog.getByRole('button', { name: 'Copy credentials.h' }).filter({ hasText: /^Copy$/ }).waitFor();
  for (const theme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: theme });
    await settle();
    await page.screenshot({ path: join(shots, `esp-admin-add-1440-${theme}.png`), animations: 'disabled' });
  }
  await page.emulateMedia({ colorScheme: 'light' });

  // Escape does not throw the key away: the dialog stays and says so.
  await page.keyboard.press('Escape');
  await alert.filter({ hasText: 'not shown again' }).waitFor();
  assert.ok(await dialog.isVisible());
  await dialog.getByRole('button', { name: 'Done — I copied the key' }).click();
  await dialog.waitFor({ state: 'detached' });
  await page.getByRole('status').filter({ hasText: `Added greenhouse (ESP Admin id ${id})` }).waitFor();

  // The row, brought by the server's live event, under the address otafleet made up for it.
  const listed = await adminApi(server.base).get('/api/v1/devices');
  const made = listed.find((d) => d.mqtt_id === id);
  assert.ok(made, 'the server lists the device');
  assert.match(made.mac, /^02:/);
  const row = page.locator(`[role=row][data-mac="${made.mac}"]`);
  await row.filter({ hasText: 'greenhouse' }).waitFor();
  assert.match(await row.innerText(), /climate/);
  assert.equal(await page.locator('[role=row][data-mac]').count(), 2);
});
