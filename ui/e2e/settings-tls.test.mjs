// The Settings page's "Secure connection (HTTPS)" section against the real server (HTTPS beside
// HTTP, the default): the fingerprint shown is the one GET /api/v1/tls gives, Copy on the Arduino
// snippet puts exactly its text on the clipboard, a device that checks in over plain HTTP is
// counted, and screenshots at 1440×900 light and dark (settings-tls-1440-{light,dark}.png).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { SimDevice, injectedSession, shots } from './harness.mjs';

let session, server, browser, page;

before(async () => {
  session = await injectedSession({ width: 1440, height: 900 });
  ({ server, browser, page } = session);
  mkdirSync(shots, { recursive: true });
  await browser.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.base });
  // One device on plain HTTP (the harness talks to the server over http://).
  await new SimDevice(server.base, { mac: '24:0A:C4:AA:00:01', name: 'porch-plain', project: 'doorbell', version: '2.0.1',
    sha256: null, ip: '10.20.1.11', rssi: -60 }).checkin();
});

after(async () => {
  await session?.close();
});

const settle = () => page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));

test('Settings shows the CA fingerprint the server gives and copies the Arduino snippet exactly', async () => {
  const tls = await (await fetch(`${server.base}/api/v1/tls`)).json();
  assert.equal(tls.mode, 'auto');
  assert.match(tls.ca_sha256, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  await page.goto(`${server.base}/settings`);
  const section = page.getByRole('region', { name: 'Secure connection (HTTPS)' });
  const fingerprint = section.getByTestId('ca-fingerprint');
  await fingerprint.waitFor();
  assert.equal(await fingerprint.innerText(), tls.ca_sha256);
  assert.equal(await section.getByTestId('tls-mode').innerText(), 'HTTPS beside HTTP');
  assert.equal(await section.getByRole('link', { name: 'Download CA (otafleet-ca.pem)' }).getAttribute('href'), '/api/v1/tls/ca.pem');
  await section.getByText('1 device still checks in over plain HTTP', { exact: false }).waitFor();

  const arduino = tls.snippets.find((s) => s.id === 'arduino');
  await section.getByRole('tab', { name: 'Arduino' }).click();
  assert.equal(await section.getByTestId('snippet-text').evaluate((e) => e.textContent), arduino.text);
  const copy = section.getByRole('button', { name: 'Copy the Arduino snippet' });
  await copy.click();
  await section.getByRole('button', { name: 'Copy the Arduino snippet' }).filter({ hasText: 'Copied' }).waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), arduino.text);

  // The CA the link downloads is the one the page shows.
  const pem = await (await fetch(`${server.base}/api/v1/tls/ca.pem`)).text();
  assert.equal(pem, tls.ca_pem);

  // The plain-HTTP device is marked in the table, since this server serves HTTPS.
  await page.getByRole('link', { name: 'device list' }).click();
  await page.locator('[data-mac="24:0A:C4:AA:00:01"] [data-testid=plain-http]').waitFor();
});

test('screenshots at 1440×900, light and dark', async () => {
  await page.goto(`${server.base}/settings`);
  const heading = page.getByRole('heading', { name: 'Secure connection (HTTPS)' });
  await page.getByTestId('ca-fingerprint').waitFor();
  for (const theme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: theme });
    await heading.evaluate((e) => e.scrollIntoView({ block: 'start' }));
    await settle();
    await page.screenshot({ path: join(shots, `settings-tls-1440-${theme}.png`), animations: 'disabled' });
  }
});
