// The server goes away under an open page, and comes back. While it is away the page says that
// what it shows may be out of date and draws no device as online; when it is back (same data
// directory, same address) it says "Reconnected" and shows what changed meanwhile: a device that
// enrolled, an image imported, a deployment created while the page could not hear about them.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { expect } from './expect.mjs';
import { SimDevice, adminApi, cleanup, adminPage, makeImage, shots, startServer, tempDir } from './harness.mjs';

let dir, data, server, browser, page;
const dots = () => page.locator('[role=row][data-mac] .dot');
const greenDots = () => page.locator('[role=row][data-mac] .dot.on').count();
const banner = () => page.getByTestId('connection-banner');

before(async () => {
  dir = tempDir();
  data = join(dir, 'data');
  server = await startServer(data);
  await Promise.all(['01', '02'].map((n) =>
    new SimDevice(server.base, { mac: `24:0A:C4:0C:00:${n}`, name: `desk-${n}`, project: 'blink', version: '1.0.0', ip: `10.0.0.${Number(n)}`, rssi: -50 }).checkin()));
  ({ browser, page } = await adminPage(dir, { width: 1280, height: 720 }));
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (dir) cleanup(dir);
});

test('the server stops: a banner says the data may be out of date and no dot stays green', async () => {
  await page.goto(server.base);
  await page.getByText('● live').waitFor();
  await expect(greenDots, 2);
  assert.equal(await banner().count(), 0, 'no banner while connected');

  await server.stop();
  const lost = banner().filter({ hasText: 'Connection lost — shown data may be out of date' });
  await lost.waitFor();
  assert.equal(await lost.getAttribute('role'), 'alert');
  await expect(greenDots, 0);
  // The dots are still there, grey, and say why.
  assert.equal(await dots().count(), 2);
  assert.match(await dots().first().getAttribute('title'), /connection lost/);
  await page.screenshot({ path: join(shots, 'browser-connection-lost.png'), animations: 'disabled' });
});

test('it comes back on the same address: "Reconnected", and what changed meanwhile is shown', async () => {
  // While the page cannot reach it, the fleet moves on: a server on the same data directory
  // (another port, which the page does not know) enrols a device, imports an image and creates
  // a deployment of it.
  const aside = await startServer(data);
  const late = new SimDevice(aside.base, { mac: '24:0A:C4:0C:00:03', name: 'desk-late', project: 'blink', version: '1.0.0', rssi: -55 });
  await late.checkin();
  const api = adminApi(aside.base);
  const fw = await api.upload(makeImage(dir, 'blink', '1.1.0'), 'blink-1.1.0.bin');
  const deployment = await api.post('/api/v1/deployments', { firmware_id: fw.id, devices: ['24:0A:C4:0C:00:01'] });
  await aside.stop();
  // The page waits on the Firmware page (which reads the library when it opens: here it cannot),
  // so what it shows next comes from the reload that reconnecting makes, nothing else.
  await page.getByRole('link', { name: 'Firmware', exact: true }).click();
  await page.getByRole('heading', { name: 'Firmware' }).waitFor();
  await banner().filter({ hasText: 'Connection lost' }).waitFor();
  assert.equal(await page.locator('table[aria-label="Firmware library"] tr', { hasText: '1.1.0' }).count(), 0);

  // Back where the page looks for it. The page retries with a growing wait (at most 15 s).
  server = await startServer(data, { port: server.port });
  await banner().filter({ hasText: 'Reconnected' }).waitFor({ timeout: 30000 });
  assert.equal(await banner().filter({ hasText: 'Connection lost' }).count(), 0);
  // The library and the deployments were reloaded: the new image, and the deployment that uses it.
  const row = page.locator('table[aria-label="Firmware library"] tr', { hasText: '1.1.0' });
  await row.waitFor();
  await row.getByRole('link', { name: `deployment ${deployment.id}` }).waitFor();
  await page.screenshot({ path: join(shots, 'browser-reconnected.png'), animations: 'disabled' });
  // And the devices: the one that enrolled meanwhile, every dot live again.
  await page.getByRole('link', { name: 'Devices', exact: true }).click();
  await page.locator('[data-mac="24:0A:C4:0C:00:03"]').getByText('desk-late').waitFor();
  await expect(greenDots, 3);
  // The message goes by itself; the page stays live.
  await banner().waitFor({ state: 'detached', timeout: 10000 });
  await page.getByText('● live').waitFor();
});
