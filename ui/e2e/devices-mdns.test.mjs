// MAC-less hosts heard over real mDNS. The server (mDNS on) and Chromium run in one network
// namespace, python-zeroconf (an independent implementation) in another, joined by a veth pair:
// the test's own LAN, which never touches the machine's network. The peer announces two
// ArduinoOTA hosts that tell no MAC, and one ESPHome device that does. The page must show the
// device as a device and each MAC-less host as its own "discovered, not enrolled" row (before,
// they were dropped, and keyed by MAC they would have merged into one), and follow them live:
// they appear through `mdns_host` events while the page is open, and go offline on the goodbyes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { expect } from './expect.mjs';
import { cleanup, adminPage, mdnsPeer, netnsLan, shots, startServer, tempDir } from './harness.mjs';

let lan, dir, server, browser, page, peer;
const hostRows = () => page.getByTestId('host-row');
const host = (instance) => page.locator(`[data-testid=host-row][data-key="_arduino._tcp/${instance}"]`);

before(async () => {
  lan = netnsLan();
  dir = tempDir();
  server = await startServer(join(dir, 'data'), { netns: lan.a, mdns: true });
  ({ browser, page } = await adminPage(dir, { width: 1280, height: 720 }, { netns: lan.a }));
});

after(async () => {
  await peer?.stop();
  await browser?.close();
  await server?.stop();
  lan?.close();
  if (dir) cleanup(dir);
});

test('two MAC-less hosts announced over mDNS are two live "discovered, not enrolled" rows, apart from a device', async () => {
  // The page is open, and live, before anything is announced: what follows arrives as events.
  await page.goto(server.base);
  await page.getByText('● live').waitFor();
  assert.equal(await hostRows().count(), 0);

  const arduino = (name, board) => ({
    type: '_arduino._tcp.local.', name, host: `${name}.local.`, ip: lan.ipB, port: 3232,
    txt: { board, tcp_check: 'no', ssh_upload: 'no', auth_upload: 'no' },
  });
  peer = await mdnsPeer(lan.b, [
    arduino('bench-relay', 'esp32'),
    arduino('bench-lamp', 'esp32c3'),
    { type: '_esphomelib._tcp.local.', name: 'kitchen', host: 'kitchen.local.', ip: lan.ipB, port: 6053,
      txt: { friendly_name: 'Kitchen', version: '2024.6.0', mac: '240ac4a3153c', platform: 'ESP32', board: 'esp32dev' } },
  ]);

  // Two host rows, one per announced instance, keyed by service/instance, never merged.
  await expect(() => hostRows().count(), 2, { timeout: 30000 });
  await host('bench-relay').waitFor();
  await host('bench-lamp').waitFor();
  for (const name of ['bench-relay', 'bench-lamp']) {
    const row = host(name);
    assert.equal(await row.getByTestId('host-name').innerText(), name);
    assert.match(await row.getByTestId('host-state').innerText(), /^discovered, not enrolled$/);
    assert.equal(await row.locator('.dot.on').count(), 1, `${name} is online`);
    assert.match(await row.innerText(), new RegExp(lan.ipB.replace(/\./g, '\\.')));
  }
  assert.match(await host('bench-lamp').innerText(), /esp32c3/);
  // The ESPHome device told its MAC: a device row, not a host.
  const kitchen = page.locator('[role=row][data-mac="24:0A:C4:A3:15:3C"]');
  await kitchen.getByText('Kitchen').waitFor({ timeout: 30000 });
  assert.equal(await page.locator('[role=row][data-mac]').count(), 1);
  assert.match(await page.getByTestId('hosts-count').innerText(), /^2 discovered, not enrolled$/);
  // The search finds a host by its board, like a device by its chip.
  await page.getByLabel('Search devices').fill('esp32c3');
  await expect(() => hostRows().count(), 1);
  assert.equal(await hostRows().first().getAttribute('data-key'), '_arduino._tcp/bench-lamp');
  await page.getByLabel('Search devices').fill('');
  await expect(() => hostRows().count(), 2);
  await page.screenshot({ path: join(shots, 'browser-devices-mdns-hosts.png'), animations: 'disabled' });

  // A reload lists the same: two hosts from GET /api/v1/devices, not from events.
  await page.reload();
  await page.getByText('● live').waitFor();
  await expect(() => hostRows().count(), 2);

  // The goodbyes: both rows stay, each goes offline ("gone") through its own mdns_host event.
  await peer.unregister();
  await expect(async () => (await host('bench-relay').locator('.dot.on').count()) + (await host('bench-lamp').locator('.dot.on').count()), 0, { timeout: 30000 });
  await expect(() => host('bench-relay').getByTestId('host-state').innerText(), 'discovered, not enrolled · gone');
  await expect(() => hostRows().count(), 2);
});
