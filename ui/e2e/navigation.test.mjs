// Links and reloads, and what the device table shows, in the built UI on the real server:
// client routes two levels deep load from a pasted link and survive a reload. Every wait is for
// a condition.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { expect } from './expect.mjs';
import { SimDevice, adminApi, injectedSession, makeImage, shots } from './harness.mjs';

const LONG = 'v2.14.0-rc.3-187-gd4572e1-dirty'; // 31 characters: the longest a device may report
const WHY = 'flash write failed at 0x110000 (simulated bad sector)';
let session, server, page, failing, deploymentId;
const rows = () => page.locator('[role=row][data-mac]');
const LABEL = { all: 'All', online: 'Online', offline: 'Offline', updating: 'Updating', failed: 'Failed' };
const statusButton = (status) => page.getByRole('group', { name: 'Show' }).getByRole('button', { name: new RegExp(`^${LABEL[status]}\\b`) });
const count = (status) => statusButton(status).locator('.n').innerText();

before(async () => {
  session = await injectedSession({ width: 1280, height: 720 });
  ({ server, page } = session);
  const api = adminApi(server.base);
  const image = makeImage(session.dir, 'blink', '2.0.0');
  const at = (n, over) => new SimDevice(server.base, { mac: `24:0A:C4:0E:00:${n}`, ip: `192.168.14.${parseInt(n, 16)}`, rssi: -60, ...over });
  const devices = [
    at('01', { name: 'door-01', chip: 'esp32c3', project: 'door-controller', version: '1.2.0' }),
    at('02', { name: 'door-02', chip: 'esp32c3', project: 'door-controller', version: '1.2.0' }),
    at('03', { name: 'door-03', chip: 'esp32', project: 'door-controller', version: '1.2.0' }),
    at('0A', { name: 'porch', project: 'blink', version: LONG }),
  ];
  failing = at('10', { name: 'shed', project: 'blink', version: '1.0.0', failFirst: 1 });
  await Promise.all([...devices, failing].map((d) => d.checkin()));
  // The shed gets 2.0.0 and fails to flash it.
  const fw = await api.upload(image, 'blink-2.0.0.bin');
  deploymentId = (await api.post('/api/v1/deployments', { firmware_id: fw.id, devices: [failing.mac] })).id;
  assert.equal(await failing.cycle([image]), 'failed');
});

after(async () => {
  await session?.close();
});

test('a device page and a deployment load from a pasted link and survive a reload', async () => {
  // Anything asked for below a client route (…/devices/assets/…) would be the old relative-asset
  // fault: the server answers index.html there and the page stays blank.
  const nested = [];
  page.on('request', (r) => {
    const path = new URL(r.url()).pathname;
    if (/^\/(devices|deployments)\/.+\/|^\/(devices|deployments)\/assets\//.test(path)) nested.push(path);
  });
  await page.goto(`${server.base}/devices/${failing.mac}`);
  await page.getByRole('heading', { name: /shed/ }).waitFor();
  await page.reload();
  await page.getByRole('heading', { name: /shed/ }).waitFor();
  await page.getByRole('table', { name: 'Update history' }).getByText(WHY).waitFor();

  await page.goto(`${server.base}/deployments/${deploymentId}`);
  const card = page.locator(`article[data-deployment="${deploymentId}"]`);
  await card.getByRole('table', { name: `Devices of deployment ${deploymentId}` }).waitFor();
  await page.reload();
  await card.getByRole('table', { name: `Devices of deployment ${deploymentId}` }).waitFor();
  assert.deepEqual(nested, [], 'no request below a client route');
});
