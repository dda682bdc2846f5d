// The screenshots in docs/screenshots: a small realistic fleet (three projects, a deployment in
// flight with devices done, one updating, one failed and the rest waiting; two stock Arduino
// devices running an image that does not say what it is), captured at 1024×700, 1440×900 and
// 2560×1440 in light and dark, for the device table, a device page, the firmware library with
// the sheet open, and the deployments page. Files are <page>-<width>-<theme>.png in `shots`
// ($OTAFLEET_SCREENSHOTS, else docs/screenshots). Every wait is for a condition.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SimDevice, adminApi, cleanup, adminPage, makeImage, shots, startServer, tempDir } from './harness.mjs';

const SIZES = [{ width: 1024, height: 700 }, { width: 1440, height: 900 }, { width: 2560, height: 1440 }];
const THEMES = ['light', 'dark'];
let dir, server, browser, page, deploymentId, failedMac;

const mac = (group, i) => `24:0A:C4:${group}:00:${String(i).padStart(2, '0')}`;

/** Arduino-ESP32 HTTPUpdate's check, running `img` (registers the device by its STA MAC). */
async function arduinoCheck(base, m, img) {
  const res = await fetch(`${base}/ota/arduino`, {
    headers: {
      'user-agent': 'ESP32-http-Update', 'x-ESP32-STA-MAC': m, 'x-ESP32-AP-MAC': m, 'x-ESP32-free-space': '1310720',
      'x-ESP32-sketch-size': String(img.bytes.length), 'x-ESP32-sketch-md5': createHash('md5').update(img.bytes).digest('hex'),
      'x-ESP32-sketch-sha256': img.bytes.subarray(img.bytes.length - 32).toString('hex'),
      'x-ESP32-chip-size': '4194304', 'x-ESP32-sdk-version': 'v4.4.7', 'x-ESP32-mode': 'sketch', 'x-ESP32-version': '',
    },
  });
  await res.arrayBuffer();
}

before(async () => {
  dir = tempDir();
  mkdirSync(shots, { recursive: true });
  server = await startServer(join(dir, 'data'));
  const api = adminApi(server.base);
  const img = {
    gh1: makeImage(dir, 'greenhouse', '1.3.0'), gh2: makeImage(dir, 'greenhouse', '1.4.0'),
    door1: makeImage(dir, 'doorbell', '2.0.1'), door2: makeImage(dir, 'doorbell', '2.1.0-rc1'),
    probe: makeImage(dir, 'lab-probe', '0.9.4'),
  };
  const arduino = makeImage(dir, 'arduino-lib-builder', 'v4.4.7-dirty');
  copyFileSync(arduino.path, join(dir, 'firmware.bin'));
  const fw = {};
  for (const [k, i] of Object.entries(img)) fw[k] = await api.upload(i, `${i.project}-${i.version}.bin`);
  await api.upload(arduino, 'firmware.bin');

  const rooms = ['north', 'south', 'east', 'west', 'seedlings', 'herbs', 'tomatoes', 'orchids'];
  const gh = Array.from({ length: 16 }, (_, i) => new SimDevice(server.base, {
    mac: mac('1A', i + 1), name: `gh-${rooms[i % rooms.length]}-${Math.floor(i / rooms.length) + 1}`, project: 'greenhouse',
    version: '1.3.0', sha256: img.gh1.sha256, ip: `10.20.0.${i + 11}`, rssi: -48 - ((i * 7) % 40), failFirst: i === 2 ? 1 : 0,
  }));
  const door = Array.from({ length: 10 }, (_, i) => new SimDevice(server.base, {
    mac: mac('2B', i + 1), name: `porch-${['front', 'back', 'garage', 'shed', 'gate'][i % 5]}${i >= 5 ? '-b' : ''}`, project: 'doorbell',
    version: '2.0.1', sha256: img.door1.sha256, ip: `10.20.1.${i + 11}`, rssi: -55 - ((i * 5) % 30),
  }));
  const probes = Array.from({ length: 4 }, (_, i) => new SimDevice(server.base, {
    mac: mac('3C', i + 1), name: `probe-bench-${i + 1}`, project: 'lab-probe', version: '0.9.4',
    sha256: img.probe.sha256, ip: `10.20.2.${i + 11}`, rssi: -40 - i * 9,
  }));
  for (const d of [...gh, ...door, ...probes]) await d.checkin();
  for (let i = 1; i <= 2; i++) await arduinoCheck(server.base, mac('4D', i), arduino);

  // Greenhouse 1.4.0 to the whole project: eight done, one failed, one downloading, the rest waiting.
  const dep = await api.post('/api/v1/deployments', { firmware_id: fw.gh2.id, project: 'greenhouse', chip: 'esp32' });
  deploymentId = dep.id;
  for (const d of gh.slice(0, 9)) await d.cycle(Object.values(img));
  failedMac = gh[2].mac;
  // gh-east-1 failed and gh-east-2 is downloading: both at the top of the table, sorted by name.
  await gh[10].checkin();
  await gh[10].progress('downloading', 45);
  // A finished deployment of the doorbell's release candidate to two devices by name.
  await api.post('/api/v1/deployments', { firmware_id: fw.door2.id, devices: [door[0].mac, door[1].mac], allow_other_project: false });
  for (const d of door.slice(0, 2)) await d.cycle(Object.values(img));

  ({ browser, page } = await adminPage(dir, SIZES[0]));
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (dir) cleanup(dir);
});

/** Two frames, so a resize or theme change has been laid out and painted. */
const settle = () => page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));

async function captureAll(name, ready) {
  for (const size of SIZES) {
    for (const theme of THEMES) {
      await page.setViewportSize(size);
      await page.emulateMedia({ colorScheme: theme });
      await ready();
      await settle();
      await page.screenshot({ path: join(shots, `${name}-${size.width}-${theme}.png`), animations: 'disabled' });
    }
  }
}

test('device table', async () => {
  await page.goto(server.base);
  await page.getByText('● live').waitFor();
  await captureAll('devices', async () => {
    // The table is virtualised: what is in view depends on the height; wait for the rows drawn.
    await page.locator('[role=row][data-mac]').nth(8).waitFor();
  });
});

test('a device page', async () => {
  await page.goto(`${server.base}/devices/${encodeURIComponent(failedMac)}`);
  await page.getByRole('heading', { level: 1 }).filter({ hasText: 'gh-east-1' }).waitFor();
  await captureAll('device', () => page.getByRole('heading', { level: 1 }).waitFor());
});

test('firmware library with the sheet open', async () => {
  await page.goto(`${server.base}/firmware`);
  await page.locator('[data-testid=firmware-group][data-project=""]').getByRole('button', { name: 'firmware.bin' }).click();
  const sheet = page.getByTestId('firmware-sheet');
  await sheet.waitFor();
  assert.equal(await sheet.getByTestId('project-source').innerText(), 'unknown');
  await captureAll('firmware', () => sheet.waitFor());
});

test('deployments', async () => {
  await page.goto(`${server.base}/deployments/${deploymentId}`);
  await page.getByRole('article', { name: `Deployment ${deploymentId}` }).waitFor();
  await captureAll('deployments', () => page.getByRole('article', { name: `Deployment ${deploymentId}` }).waitFor());
  assert.ok(readFileSync(join(shots, `deployments-2560-dark.png`)).length > 0);
});
