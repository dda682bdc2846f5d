// Links and reloads, and what the device table shows, in the built UI on the real server:
// client routes two levels deep load from a pasted link and survive a reload; the table's
// filters live in the URL; a MAC is found however it is typed; the status counts follow the
// project and chip filters; a 1024 px window shows every column; long versions end in "…" with
// the whole value in the title; dates read YYYY-MM-DD HH:MM with their age; a failed update says
// why on its row and on its page. Every wait is for a condition.
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

test('a failed update says why on its row and at the top of its page; dates read YYYY-MM-DD HH:MM with their age', async () => {
  await page.goto(`${server.base}/devices/${failing.mac}`);
  const top = page.getByTestId('failure');
  await top.waitFor();
  assert.match(await top.innerText(), new RegExp(`failed: ${WHY.replace(/[()]/g, '\\$&')}`));
  const fact = async (name) => page.locator('dt', { hasText: new RegExp(`^${name}$`) }).locator('xpath=following-sibling::dd[1]').innerText();
  assert.match(await fact('Last seen'), /^\d{4}-\d{2}-\d{2} \d{2}:\d{2} \((just now|\d+ s ago|\d+ min ago)\)$/);
  assert.match(await fact('Known since'), /^\d{4}-\d{2}-\d{2} \d{2}:\d{2} \(/);
  const when = await page.getByRole('table', { name: 'Update history' }).locator('tbody td').first().innerText();
  assert.match(when, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}\s+(just now|\d+ s ago|\d+ min ago)$/);
  await page.screenshot({ path: join(shots, 'browser-device-failed.png'), fullPage: true, animations: 'disabled' });

  await page.getByRole('link', { name: 'Devices', exact: true }).click();
  const reason = page.locator(`[data-mac="${failing.mac}"]`).getByTestId('failure-reason');
  assert.ok(await reason.isVisible(), 'the reason is on the row, not only in a tooltip');
  assert.equal(await reason.innerText(), WHY);
});

test('a MAC is found without colons, with dashes, in any case', async () => {
  await page.goto(server.base);
  const search = page.getByLabel('Search devices');
  for (const q of ['240ac40e000a', '24-0A-C4-0E-00-0A', '240A.C40E.000A']) {
    await search.fill(q);
    await expect(async () => (await rows().count()) === 1 && (await rows().first().getAttribute('data-mac')), '24:0A:C4:0E:00:0A');
  }
  await search.fill('');
  await expect(() => rows().count(), 5);
});

test('the status counts follow the project and chip filters', async () => {
  await page.goto(server.base);
  await expect(() => rows().count(), 5);
  assert.equal(await count('all'), '5');
  assert.equal(await count('failed'), '1');
  await page.getByLabel('Project').selectOption('door-controller');
  await expect(() => count('all'), '3');
  assert.equal(await count('failed'), '0');
  await page.getByLabel('Chip').selectOption('esp32c3');
  await expect(() => count('all'), '2');
  assert.equal(await rows().count(), 2);
  await page.getByLabel('Project').selectOption('');
  await page.getByLabel('Chip').selectOption('');
  await expect(() => count('all'), '5');
});

test('filters live in the URL: a reload and a shared link keep them', async () => {
  await page.goto(server.base);
  await page.getByLabel('Search devices').fill('door');
  await statusButton('online').click();
  await page.getByLabel('Project').selectOption('door-controller');
  await page.getByLabel('Chip').selectOption('esp32c3');
  await expect(() => rows().count(), 2);
  await expect(() => new URL(page.url()).search, '?q=door&status=online&project=door-controller&chip=esp32c3');
  await page.reload();
  await expect(() => rows().count(), 2);
  assert.equal(await page.getByLabel('Search devices').inputValue(), 'door');
  assert.equal(await page.getByLabel('Project').inputValue(), 'door-controller');
  assert.equal(await page.getByLabel('Chip').inputValue(), 'esp32c3');
  assert.equal(await statusButton('online').getAttribute('aria-pressed'), 'true');
  // A link that names only a status, opened afresh.
  await page.goto(`${server.base}/?status=failed`);
  await expect(() => rows().count(), 1);
  assert.equal(await rows().first().getAttribute('data-mac'), failing.mac);
  // Back to everything: the URL loses its query.
  await statusButton('all').click();
  await expect(() => new URL(page.url()).search, '');
  await expect(() => rows().count(), 5);
});

test('at 1024 px every column of the device table is in view, and a long version ends in "…" with a title', async () => {
  await page.setViewportSize({ width: 1024, height: 700 });
  await page.goto(server.base);
  await expect(() => rows().count(), 5);
  const table = await page.getByRole('table', { name: 'Devices' }).boundingBox();
  const last = await page.locator('[role=columnheader]').last().boundingBox();
  assert.ok(last.x + last.width <= 1024, `the last header cell ends at ${last.x + last.width} px, past the 1024 px window`);
  assert.ok(last.x + last.width <= table.x + table.width + 0.5, 'the last header cell is inside the table');
  assert.equal(await page.locator('[role=columnheader]').last().innerText(), 'Last seen');
  const lastCell = await rows().first().locator('[role=cell]').last().boundingBox();
  assert.ok(lastCell.x + lastCell.width <= 1024, 'the last cell of a row is in view');

  const running = page.locator('[data-mac="24:0A:C4:0E:00:0A"]').getByTestId('running');
  assert.equal(await running.getAttribute('title'), LONG);
  const cut = await running.evaluate((el) => ({ overflow: getComputedStyle(el).textOverflow, cut: el.scrollWidth > el.clientWidth }));
  assert.deepEqual(cut, { overflow: 'ellipsis', cut: true });
  await page.screenshot({ path: join(shots, 'browser-devices-1024.png'), animations: 'disabled' });
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: join(shots, 'browser-devices-1024-dark.png'), animations: 'disabled' });
  await page.emulateMedia({ colorScheme: 'light' });

  // The other pages have nothing wider than the window either.
  for (const path of ['/firmware', '/deployments', `/devices/${failing.mac}`, '/settings']) {
    await page.goto(`${server.base}${path}`);
    await page.locator('h1').first().waitFor();
    const wide = await page.evaluate(() => [document.documentElement.scrollWidth, document.querySelector('main').scrollWidth, document.querySelector('main').clientWidth]);
    assert.ok(wide[0] <= 1024 && wide[1] <= wide[2], `${path} is wider than the window: ${wide}`);
  }
  await page.setViewportSize({ width: 1280, height: 720 });
});
