// Projects and per-device config in a real browser against the real server: the admin gives a
// project variables on the Projects page (a secret among them), changes one device's values on
// its page and sees `pending`; the device (simulated over the native protocol, as the reference
// client does it) sees the new config_version at its check-in, reads its config — the secret
// included — and confirms it; the page turns `applied` live, without a reload. The secret is
// never on the page or in what the admin API answers. Every wait is for a condition.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { SimDevice, adminApi, injectedSession } from './harness.mjs';

const MAC = '24:0A:C4:15:C0:01';
const SECRET = 'e2e-secret-do-not-show';
let session, page, server, api, dev;

/** The device's side of the config contract (docs/protocols.md §1, Config). */
async function deviceConfig(method, body) {
  const res = await fetch(`${server.base}/api/v1/device/config`, {
    method,
    headers: { authorization: `Bearer ${dev.token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${method} device config: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

before(async () => {
  session = await injectedSession({ width: 1280, height: 900 });
  ({ page, server } = session);
  api = adminApi(server.base);
  dev = new SimDevice(server.base, { mac: MAC, name: 'esp-vent', project: 'vent', version: '1.0.0', ip: '10.0.0.41', rssi: -55 });
  await dev.checkin();
});

after(async () => {
  await session?.close();
});

test('variables on the Projects page, a device value changed on its page: pending, then applied when the device confirms', async () => {
  await page.goto(`${server.base}/projects`);
  await page.getByText('● live').waitFor();
  const row = page.getByTestId('project-row').filter({ hasText: 'vent' });
  await row.getByRole('button', { name: 'Edit' }).click();
  const editor = page.getByTestId('project-editor');
  for (const [key, type, def] of [['fan_speed', 'int', '40'], ['wifi_pass', 'secret', SECRET]]) {
    await editor.getByRole('button', { name: 'Add variable' }).click();
    const last = editor.getByTestId('var-row').last();
    await last.getByLabel('variable key').fill(key);
    await last.getByLabel('variable type').selectOption(type);
    await last.getByLabel('default').fill(def);
  }
  await page.getByTestId('project-save').click();
  await page.getByText('Saved.', { exact: false }).waitFor();
  assert.equal((await api.get('/api/v1/projects/vent')).variables.length, 2);

  // The device takes its project's defaults first.
  let answer = await dev.checkin();
  assert.equal(typeof answer.config_version, 'number');
  let got = await deviceConfig('GET');
  assert.deepEqual(got.values, { fan_speed: 40, wifi_pass: SECRET });
  await deviceConfig('POST', { version: got.version });

  // Its page: applied; then a change of its own value makes it pending.
  await page.goto(`${server.base}/devices/${MAC}/config`);
  const state = page.getByTestId('config-state');
  await state.and(page.locator('[data-state="applied"]')).waitFor();
  const fan = page.getByTestId('config-row').filter({ hasText: 'fan_speed' });
  await fan.getByLabel('fan_speed').fill('75');
  await page.getByTestId('config-save').click();
  await state.and(page.locator('[data-state="pending"]')).waitFor();
  await state.filter({ hasText: 'since' }).waitFor();

  // The device sees the new version at its next check-in, reads it and confirms it.
  answer = await dev.checkin();
  assert.ok(answer.config_version > got.version, 'a new version');
  got = await deviceConfig('GET');
  assert.equal(got.version, answer.config_version);
  assert.deepEqual(got.values, { fan_speed: 75, wifi_pass: SECRET });
  await deviceConfig('POST', { version: got.version });
  await state.and(page.locator('[data-state="applied"]')).waitFor();

  // The secret is not on the page, nor in any admin answer.
  assert.ok(!(await page.content()).includes(SECRET), 'no secret on the device page');
  await page.goto(`${server.base}/projects`);
  await page.getByTestId('project-row').first().waitFor();
  assert.ok(!(await page.content()).includes(SECRET), 'no secret on the Projects page');
  for (const path of [`/api/v1/devices/${MAC}/config`, '/api/v1/projects', '/api/v1/audit?limit=1000']) {
    assert.ok(!JSON.stringify(await api.get(path)).includes(SECRET), path);
  }
});
