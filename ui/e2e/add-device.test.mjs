// Open enrolment off: the lab engineer adds a device from the Devices page ("Add device…"), sees
// the server's refusal of a bad MAC in the form, sees the added device in the table (brought by
// the server's live `device` event), and that device, and only it, may then enrol.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { expect } from './expect.mjs';
import { ADMIN, SimDevice, injectedSession, shots } from './harness.mjs';

let session, server, page;

before(async () => {
  session = await injectedSession({ width: 1280, height: 720 });
  ({ server, page } = session);
  const res = await fetch(`${server.base}/api/v1/settings`, {
    method: 'PATCH',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ open_enrolment: false }),
  });
  assert.equal(res.status, 200);
});

after(async () => {
  await session?.close();
});

test('add a device from the Devices page: a bad MAC is refused in the form, a good one shows in the table and may enrol', async () => {
  await page.goto(server.base);
  await page.getByRole('heading', { name: /No devices yet/ }).waitFor();
  // Follow the live stream first, so that the row below can only come from the server's event.
  await page.getByText('● live').waitFor();

  await page.getByRole('button', { name: 'Add device…' }).click();
  const dialog = page.getByRole('dialog', { name: 'Add a device' });
  const mac = dialog.getByLabel('MAC address');
  await mac.fill('ff:ff:ff:ff:ff:ff');
  await dialog.getByRole('button', { name: 'Add device' }).click();
  const alert = dialog.getByRole('alert');
  await alert.filter({ hasText: 'broadcast address' }).waitFor();
  assert.equal(await mac.getAttribute('aria-invalid'), 'true');
  await page.screenshot({ path: join(shots, 'browser-add-device-refused.png'), animations: 'disabled' });

  await mac.fill('24:0a:c4:a3:15:3c');
  await alert.waitFor({ state: 'detached' }); // the refusal was about the MAC just corrected
  await dialog.getByLabel('Name').fill('bench-relay');
  await dialog.getByLabel('Project').fill('blink');
  await dialog.getByLabel('Chip').selectOption('esp32');
  assert.equal(await dialog.getByLabel('Expected protocol').inputValue(), 'any', 'nothing to go by: any');
  await dialog.getByLabel('Expected protocol').selectOption('native');
  await page.screenshot({ path: join(shots, 'browser-add-device-form.png'), animations: 'disabled' });
  await dialog.getByRole('button', { name: 'Add device' }).click();
  await dialog.waitFor({ state: 'detached' });
  await page.getByRole('status').filter({ hasText: 'Added bench-relay (24:0A:C4:A3:15:3C): only native may serve it' }).waitFor();
  const row = page.locator('[role=row][data-mac="24:0A:C4:A3:15:3C"]');
  await row.filter({ hasText: 'bench-relay' }).waitFor();
  assert.match(await row.innerText(), /blink/);
  await page.screenshot({ path: join(shots, 'browser-add-device-added.png'), animations: 'disabled' });

  // The same MAC again (any notation): the server's "already exists", in the form.
  await page.getByRole('button', { name: 'Add device…' }).click();
  await mac.fill('240AC4A3153C');
  await dialog.getByRole('button', { name: 'Add device' }).click();
  await alert.filter({ hasText: 'already exists' }).waitFor();
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await dialog.waitFor({ state: 'detached' });

  // Enrolment is closed: the added device enrols, an unknown one is refused.
  const added = new SimDevice(server.base, { mac: '24:0A:C4:A3:15:3C', project: 'blink', version: '1.0.0' });
  assert.ok((await added.checkin()).token, 'the added device enrols');
  const stranger = new SimDevice(server.base, { mac: '24:0A:C4:A3:15:3D', project: 'blink', version: '1.0.0' });
  await assert.rejects(stranger.checkin(), /enrolment_closed/);
  await expect(async () => (await row.innerText()).includes('1.0.0'), true);
  assert.equal(await page.locator('[role=row][data-mac]').count(), 1);
});
