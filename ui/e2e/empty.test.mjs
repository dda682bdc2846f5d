// A fresh server with no devices: the home page explains how a device finds otafleet, with this
// server's check-in URL; the settings page shows the read-only settings. The token is injected the
// way the desktop shell does it (window.__OTAFLEET__), so no prompt appears.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ADMIN, injectedSession, shots } from './harness.mjs';

let session, server, page;

before(async () => {
  session = await injectedSession({ width: 1280, height: 720 });
  ({ server, page } = session);
});

after(async () => {
  await session?.close();
});

test('no devices yet: the page says how a device finds otafleet', async () => {
  await page.goto(server.base);
  await page.getByRole('heading', { name: /No devices yet/ }).waitFor();
  const url = page.getByLabel('check-in URL');
  assert.equal(await url.innerText(), `${server.base}/api/v1/device/checkin`);
  await page.getByText('_otafleet._tcp').waitFor();
  await page.screenshot({ path: join(shots, 'browser-empty.png'), animations: 'disabled' });
});

test('settings: listen address, token (masked until shown), legacy scheme off; open enrolment toggled from the page', async () => {
  await page.getByRole('link', { name: 'Settings' }).click();
  const table = page.getByRole('table', { name: 'Server settings' });
  await table.getByRole('cell', { name: server.base.replace('http://', ''), exact: true }).waitFor();
  await table.getByText('not set: the legacy scheme is off').waitFor();
  const token = table.getByLabel('admin token');
  assert.notEqual(await token.innerText(), ADMIN);
  await table.getByRole('button', { name: 'Show' }).click();
  assert.equal(await token.innerText(), ADMIN);
  await page.getByText('read-only here', { exact: false }).first().waitFor();
  await page.screenshot({ path: join(shots, 'browser-settings.png'), fullPage: true, animations: 'disabled' });

  // Closing enrolment from the page: the server keeps it, and an unknown device is refused.
  const toggle = page.getByLabel(/Open enrolment/);
  assert.ok(await toggle.isChecked());
  await toggle.uncheck();
  await page.getByText('Off: unknown devices are refused').waitFor();
  await page.getByText('"Add device…" on the', { exact: false }).waitFor(); // points at the button, not only the API
  const settings = async () =>
    (await fetch(`${server.base}/api/v1/settings`, { headers: { authorization: `Bearer ${ADMIN}` } })).json();
  assert.equal((await settings()).open_enrolment, false);
  const checkin = (mac) =>
    fetch(`${server.base}/api/v1/device/checkin`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ mac, chip: 'esp32', project: 'blink', version: '1.0.0' }),
    });
  const refused = await checkin('02:00:00:00:0E:01');
  assert.ok(refused.status >= 400 && refused.status < 500, `refused while closed: ${refused.status}`);
  assert.equal((await refused.json()).error.code, 'enrolment_closed');
  await page.screenshot({ path: join(shots, 'browser-settings-closed.png'), fullPage: true, animations: 'disabled' });
  await toggle.check();
  await page.getByText('On: a new MAC that checks in').waitFor();
  assert.equal((await settings()).open_enrolment, true);
  assert.equal((await checkin('02:00:00:00:0E:02')).status, 200, 'open again: a new device enrols');
  // A client route survives a reload (the server answers it with index.html).
  await page.reload();
  await page.getByRole('heading', { name: 'Settings' }).waitFor();
});
