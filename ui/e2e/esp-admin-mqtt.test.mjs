// An ESP Admin device over MQTT, watched and commanded from the real UI: the server runs its
// embedded broker (TLS with otafleet's CA, on a free port); a paho client plays the device the
// way the SDK connects (its id and key, its last will, subscribe, "connected"). The lab engineer
// sees it come online with its id and MQTT state on its page, restarts it from the page (the
// command reaches the device over MQTT and is shown done), and sees it go offline at once when
// its power is cut (the broker publishes its will). Screenshot: esp-admin-mqtt-1440-light.png.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { adminApi, injectedSession, repo, shots } from './harness.mjs';

let session, server, page;

before(async () => {
  session = await injectedSession({ width: 1440, height: 900 }, { mqtt: true });
  ({ server, page } = session);
  mkdirSync(shots, { recursive: true });
});

after(async () => {
  await session?.close();
});

/** The paho device of the Rust MQTT tests (one connection; JSON events on stdout, commands on stdin). */
function mqttDevice({ port, ca, id, key }) {
  const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  const script = join(repo, 'crates/otafleet-mqtt/tests/support/device.py');
  const child = spawn(python, [script, '127.0.0.1', String(port), id, id, key, ca], { stdio: ['pipe', 'pipe', 'inherit'] });
  const events = [];
  const waiters = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    const e = JSON.parse(line);
    events.push(e);
    for (const w of [...waiters]) if (w.pred(e)) (waiters.splice(waiters.indexOf(w), 1), w.resolve(e));
  });
  const next = (what, pred, ms = 30_000) => {
    const seen = events.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve };
      waiters.push(w);
      setTimeout(() => reject(new Error(`device: no ${what} within ${ms} ms; saw ${JSON.stringify(events)}`)), ms).unref();
    });
  };
  const send = (cmd) => child.stdin.write(JSON.stringify(cmd) + '\n');
  return {
    events,
    next,
    async online() {
      const ack = await next('CONNACK', (e) => e.event === 'connack' || e.event === 'error');
      assert.equal(ack.rc, 0, JSON.stringify(ack));
      send({ sub: `device/${id}/command/+` });
      await next('SUBACK', (e) => e.event === 'suback');
      send({ pub: `device/${id}/report/status`, payload: '{"status":"connected"}', retain: true });
      await next('PUBACK', (e) => e.event === 'published');
    },
    kill: () => child.kill('SIGKILL'),
  };
}

test('an ESP Admin device over MQTT: online with its id, restarted from its page, offline when cut', async () => {
  assert.ok(server.mqttPort, 'the server printed its broker line');
  const api = adminApi(server.base);
  const added = await api.post('/api/v1/esp-admin/devices', { name: 'greenhouse' });
  const { id, api_key: key } = added;
  const mac = added.device.mac;
  const ca = join(session.dir, 'ca.pem');
  writeFileSync(ca, await (await fetch(`${server.base}/api/v1/tls/ca.pem`)).text());

  await page.goto(`${server.base}/devices/${encodeURIComponent(mac)}`);
  await page.getByText('● live').waitFor();
  await page.getByTestId('device-title').filter({ hasText: 'greenhouse' }).waitFor();
  const facts = page.locator('dl, table').filter({ hasText: 'ESP Admin id' }).first();
  await facts.getByText(id).waitFor();
  await facts.getByText('never connected').waitFor();

  // The device boots: the page follows it online, live.
  const dev = mqttDevice({ port: server.mqttPort, ca, id, key });
  await dev.online();
  await page.locator('h1').getByText('online', { exact: true }).waitFor();
  await facts.getByText(/connected since/).waitFor();
  await page.screenshot({ path: join(shots, 'esp-admin-mqtt-1440-light.png'), animations: 'disabled' });

  assert.ok(await page.getByText('API key (ESP Admin)').isVisible());

  // Restart from its Control tab: confirmed in place, delivered over MQTT, shown done.
  await page.getByTestId('tab-control').click();
  await page.getByRole('button', { name: 'Restart…' }).click();
  await page.getByText('It gets the command over MQTT at once while connected').waitFor();
  await page.getByRole('button', { name: 'Restart', exact: true }).click();
  await dev.next('the restart command', (e) => e.event === 'message' && e.topic === `device/${id}/command/restart`);
  await page.getByTestId('control-panel').getByText('done').first().waitFor();

  // Power cut: the broker publishes its will and the page shows it offline at once.
  dev.kill();
  await page.locator('h1').getByText('offline', { exact: true }).waitFor();
  await page.getByTestId('tab-overview').click();
  await facts.getByText(/disconnected/).waitFor();
});
