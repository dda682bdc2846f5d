// A generic build-output name (firmware.bin) of an Arduino build says neither project nor version:
// the Firmware page asks for them in the firmware sheet instead of guessing, the admin sets them,
// and a stock Arduino device running that image follows the correction in the device table. Then
// the same bytes dropped again under a better name are offered a rename, and a watch folder's
// import of such an image brings a notice that opens the sheet. The real server throughout.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from './expect.mjs';
import { adminApi, injectedSession, makeImage } from './harness.mjs';

const MAC = '24:0A:C4:5E:00:01';
let session, dir, server, page, api, image;

/** One check of Arduino-ESP32's HTTPUpdate, with the headers that library sends, running `image`:
 *  the server registers the device by its STA MAC and recognises the image by its hashes. */
async function arduinoCheck(mac, img) {
  const res = await fetch(`${server.base}/ota/arduino`, {
    headers: {
      'user-agent': 'ESP32-http-Update', 'cache-control': 'no-cache',
      'x-ESP32-STA-MAC': mac, 'x-ESP32-AP-MAC': mac.replace(/01$/, '02'), 'x-ESP32-free-space': '1310720',
      'x-ESP32-sketch-size': String(img.bytes.length), 'x-ESP32-sketch-md5': img.md5, 'x-ESP32-sketch-sha256': img.appended,
      'x-ESP32-chip-size': '4194304', 'x-ESP32-sdk-version': 'v4.4.7', 'x-ESP32-mode': 'sketch', 'x-ESP32-version': '',
    },
  });
  await res.arrayBuffer();
  return res.status;
}

before(async () => {
  session = await injectedSession({ width: 1280, height: 800 });
  ({ dir, server, page } = session);
  api = adminApi(server.base);
  // An Arduino build: its app descriptor names the Arduino core (arduino-lib-builder), not the
  // sketch, so neither project nor version comes from it (docs/images.md) — nor from the name.
  const made = makeImage(dir, 'arduino-lib-builder', 'v4.4.7-dirty');
  image = { ...made, path: join(dir, 'firmware.bin') };
  copyFileSync(made.path, image.path);
  image.md5 = createHash('md5').update(image.bytes).digest('hex');
  image.appended = image.bytes.subarray(image.bytes.length - 32).toString('hex');
});

after(async () => {
  await session?.close();
});

const sheet = () => page.getByTestId('firmware-sheet');
const deviceRow = () => page.locator(`[role=row][data-mac="${MAC}"]`);

test('firmware.bin asks for its project and version; saved, the library and a stock device running it show them', async () => {
  await page.goto(`${server.base}/firmware`);
  await page.getByRole('heading', { name: 'Firmware', exact: true }).waitFor();
  await page.getByTestId('firmware-input').setInputFiles({ name: 'firmware.bin', mimeType: 'application/octet-stream', buffer: readFileSync(image.path) });

  // The sheet opens by itself, on the project, and says why it asks.
  await sheet().waitFor();
  assert.equal(await page.getByRole('dialog').getAttribute('aria-label'), 'Which project and version is this?');
  assert.match(await sheet().getByTestId('project-why').innerText(), /firmware\.bin names a project/);
  assert.match(await sheet().getByTestId('version-why').innerText(), /gives a version/);
  assert.equal(await sheet().getByTestId('project-source').innerText(), 'unknown');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'fw-project');
  // What was read from the image is there, with where it came from.
  await sheet().getByText(image.appended).waitFor();
  await sheet().getByText('v5.2.2').waitFor();

  // A stock Arduino device already runs this image: registered with no project or version.
  assert.equal(await arduinoCheck(MAC, image), 304);

  // A project name the server refuses: its message, inline, and the sheet stays.
  await sheet().getByLabel('Project').fill('door bell');
  await sheet().getByLabel('Version').fill('1.0.0');
  await sheet().getByRole('button', { name: 'Save' }).click();
  const refusal = sheet().getByRole('alert');
  await refusal.waitFor();
  assert.match(await refusal.innerText(), /door bell/);

  await sheet().getByLabel('Project').fill('doorbell');
  await sheet().getByRole('button', { name: 'Save' }).click();
  await sheet().waitFor({ state: 'detached' });

  // The library: in the doorbell group, with its version; no "No project" group is left.
  const group = page.locator('[data-testid=firmware-group][data-project=doorbell]');
  await group.getByTestId('firmware-row').filter({ hasText: '1.0.0' }).waitFor();
  assert.equal(await page.locator('[data-testid=firmware-group][data-project=""]').count(), 0);
  const fw = (await api.get('/api/v1/firmware')).find((f) => f.sha256 === image.sha256);
  assert.deepEqual([fw.project, fw.project_source, fw.version, fw.version_source], ['doorbell', 'admin', '1.0.0', 'admin']);

  // The device table: the Arduino device follows the correction.
  await page.getByRole('link', { name: 'Devices', exact: true }).click();
  await deviceRow().waitFor();
  await expect(async () => (await deviceRow().innerText()).includes('doorbell'), true);
  assert.equal(await deviceRow().getByTestId('running').innerText(), '1.0.0');
  // A device that starts checking in after the correction gets the same.
  const late = '24:0A:C4:5E:00:11';
  assert.equal(await arduinoCheck(late, image), 304);
  const lateRow = page.locator(`[role=row][data-mac="${late}"]`);
  await lateRow.waitFor();
  assert.match(await lateRow.innerText(), /doorbell/);
  assert.equal(await lateRow.getByTestId('running').innerText(), '1.0.0');
});

test('the same bytes dropped again under a better name: offered a rename, not just "already in the library"', async () => {
  await page.getByRole('link', { name: 'Firmware', exact: true }).click();
  await page.getByTestId('firmware-input').setInputFiles({ name: 'doorbell_v1.0.0.bin', mimeType: 'application/octet-stream', buffer: readFileSync(image.path) });
  await sheet().waitFor();
  assert.match(await sheet().getByTestId('rename-offer').innerText(), /doorbell_v1\.0\.0\.bin has the same bytes as firmware\.bin/);
  assert.equal(await sheet().getByLabel('File name').inputValue(), 'doorbell_v1.0.0.bin');
  await sheet().getByRole('button', { name: 'Rename to doorbell_v1.0.0.bin' }).click();
  await sheet().waitFor({ state: 'detached' });
  await page.locator('[data-testid=firmware-group][data-project=doorbell]').getByRole('button', { name: 'doorbell_v1.0.0.bin' }).waitFor();
  assert.equal((await api.get('/api/v1/firmware')).length, 1);
  // The upload line no longer offers it.
  assert.equal(await page.getByRole('button', { name: /^Rename to/ }).count(), 0);
});

test('a watch folder imports an image that does not say what it is: a notice opens the sheet', async () => {
  const build = join(dir, 'door', '.pio', 'build', 'esp32dev');
  mkdirSync(build, { recursive: true });
  await api.post('/api/v1/watch-folders', { path: build, auto_deploy: false });
  const other = makeImage(dir, 'arduino-lib-builder', 'v4.4.8');
  copyFileSync(other.path, join(build, 'firmware.tmp'));
  renameSync(join(build, 'firmware.tmp'), join(build, 'firmware.bin'));
  // Whatever page is open: here the device table.
  await page.getByRole('link', { name: 'Devices', exact: true }).click();
  const notice = page.getByTestId('watch-notice');
  await notice.waitFor({ timeout: 20000 });
  assert.match(await notice.innerText(), new RegExp(`Imported firmware\\.bin from ${build.replace(/[.]/g, '\\.')}: project and version unknown — set them`));
  await notice.getByRole('button', { name: 'Set them…' }).click();
  await sheet().waitFor();
  assert.match(await sheet().innerText(), /was imported from the watch folder/);
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'fw-project');
  await page.keyboard.press('Escape');
  await sheet().waitFor({ state: 'detached' });
});
