// Notifications against the real server and a real webhook receiver: the admin sets the webhook
// on the Settings page (the secret is sent once and never shown again), "Send test" reaches the
// receiver with a valid signature, and a device's error report shows on the Activity page as
// sent once the receiver took it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { expect } from './expect.mjs';
import { SimDevice, adminApi, injectedSession } from './harness.mjs';

const MAC = '24:0A:C4:0E:00:21';
const SECRET = 'e2e-webhook-secret-91c2';
let session, page, server, api, receiver;
/** Every request the receiver took: its JSON and whether its signature was valid. */
const hits = [];

before(async () => {
  receiver = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const want = `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`;
      hits.push({ json: JSON.parse(body.toString('utf8')), signed: req.headers['x-otafleet-signature'] === want });
      res.writeHead(204).end();
    });
  });
  await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
  session = await injectedSession({ width: 1280, height: 900 });
  ({ page, server } = session);
  api = adminApi(server.base);
});

after(async () => {
  await session?.close();
  await new Promise((r) => receiver?.close(r) ?? r());
});

test('the webhook is set on the Settings page, tested, and a report shows as sent on Activity', async () => {
  const url = `http://127.0.0.1:${receiver.address().port}/hook`;
  await page.goto(server.base);
  await page.getByRole('link', { name: 'Settings', exact: true }).click();
  const form = page.getByRole('form', { name: 'Webhook' });
  await form.getByLabel('URL').fill(url);
  await form.getByLabel('Secret').fill(SECRET);
  await form.getByRole('button', { name: 'Save webhook' }).click();
  await form.getByText('Saved.').waitFor();
  await expect(() => form.getByLabel('Secret').getAttribute('placeholder'), 'set — leave empty to keep it');
  assert.equal(await form.getByLabel('Secret').inputValue(), '');
  assert.ok(!(await page.content()).includes(SECRET), 'the secret is not on the page');
  const settings = await api.get('/api/v1/settings');
  assert.deepEqual(settings.notify.webhook, { url, secret: { set: true }, types: ['warn', 'error'], enabled: true });

  await page.getByRole('button', { name: 'Send test' }).click();
  await expect(async () => /Webhook .*: delivered \(204\)/.test(await page.getByTestId('notify-test').innerText()), true);
  assert.equal(hits.length, 1);
  assert.equal(hits[0].json.test, true);
  assert.ok(hits[0].signed, 'the test carries a valid signature');

  const dev = new SimDevice(server.base, { mac: MAC, name: 'esp-boiler', project: 'boiler', version: '1.0.0', ip: '10.0.0.41', rssi: -58 });
  await dev.checkin();
  const res = await fetch(`${server.base}/api/v1/device/report`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${dev.token}` },
    body: JSON.stringify({ mac: MAC, type: 'error', subject: 'burner lockout', body: 'flame sensor lost' }),
  });
  assert.equal(res.status, 200);
  await page.getByRole('link', { name: 'Activity', exact: true }).click();
  const row = page.getByTestId('report-row').filter({ hasText: 'burner lockout' });
  await expect(async () => /webhook: sent/.test(await row.getByTestId('report-deliveries').innerText()), true);
  const delivered = hits.find((h) => h.json.report?.subject === 'burner lockout');
  assert.ok(delivered?.signed, 'the report went out signed');
  assert.equal(delivered.json.report.mac, MAC);
  assert.equal(delivered.json.report.device_name, 'esp-boiler');
  assert.equal(delivered.json.report.project, 'boiler');
  await page.screenshot({ path: join(session.dir, 'activity-notify.png'), fullPage: true });
});
