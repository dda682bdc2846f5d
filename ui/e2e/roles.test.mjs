// Roles in the real UI against the real server: the owner (the admin token, injected as the
// desktop shell does) makes a viewer token on the Team page; a second browser signs in with
// that token and sees the fleet but no upload, deploy, delete, command or settings control —
// and the server refuses the same actions when sent anyway. Revoking the token on the owner's
// page sends the viewer back to the token prompt. Screenshots: team-tokens-1440.png,
// firmware-as-viewer-1440.png.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { SimDevice, adminApi, injectedSession, launchBrowser, makeImage, shots } from './harness.mjs';

let session, server, owner, viewerBrowser, viewer, secret;

before(async () => {
  session = await injectedSession({ width: 1440, height: 900 });
  ({ server, page: owner } = session);
  mkdirSync(shots, { recursive: true });
  const api = adminApi(server.base);
  await api.upload(makeImage(session.dir, 'doorbell', '2.1.0'), 'doorbell_2.1.0.bin');
  await new SimDevice(server.base, { mac: '24:0A:C4:AB:00:01', name: 'porch', project: 'doorbell', version: '2.0.1',
    ip: '10.20.1.11', rssi: -60 }).checkin();
});

after(async () => {
  await viewerBrowser?.close();
  await session?.close();
});

test('the owner makes a viewer token on the Team page and sees its secret once', async () => {
  await owner.goto(`${server.base}/settings`);
  await owner.getByRole('link', { name: 'Team' }).first().click();
  await owner.getByTestId('whoami').filter({ hasText: 'owner' }).waitFor();
  await owner.getByLabel('Token name').fill('lab-viewer');
  await owner.getByLabel('Token role').selectOption('viewer');
  await owner.getByRole('button', { name: 'Make token' }).click();
  const note = owner.getByTestId('token-created');
  secret = await note.getByLabel('new API token').innerText();
  assert.match(secret, /^otf_[A-Za-z0-9_-]{43}$/);
  const row = owner.locator('[data-testid=token-row][data-name="lab-viewer"]');
  await row.getByText('never').waitFor();
  await owner.getByRole('region', { name: 'API tokens' }).screenshot({ path: join(shots, 'team-tokens-1440.png') });
  await note.getByRole('button', { name: 'Done' }).click();
  await note.waitFor({ state: 'detached' });
  // The list never shows it again.
  assert.ok(!(await owner.locator('main').innerText()).includes(secret));
});

test('a viewer sees the fleet but none of the controls its role cannot use', async () => {
  viewerBrowser = await launchBrowser(join(session.dir, 'viewer-profile'), { width: 1440, height: 900 });
  viewer = await viewerBrowser.newPage();
  await viewer.goto(server.base);
  await viewer.getByLabel('Admin token').fill(secret);
  await viewer.getByRole('button', { name: 'Connect' }).click();
  await viewer.locator('[data-mac="24:0A:C4:AB:00:01"]').getByText('porch').waitFor();
  assert.match(await viewer.getByTestId('whoami').innerText(), /lab-viewer · viewer/);
  assert.equal(await viewer.getByRole('button', { name: 'Add device…' }).count(), 0);
  assert.equal(await viewer.getByTestId('nav-team').count(), 0, 'no Team page for a viewer');

  await viewer.getByRole('link', { name: 'Firmware' }).click();
  await viewer.getByText('doorbell_2.1.0.bin').waitFor();
  assert.equal(await viewer.getByRole('button', { name: 'Deploy…' }).count(), 0);
  assert.equal(await viewer.getByRole('button', { name: 'Delete' }).count(), 0);
  assert.equal(await viewer.getByRole('region', { name: 'Drop firmware here' }).count(), 0);
  await viewer.screenshot({ path: join(shots, 'firmware-as-viewer-1440.png') });

  await viewer.goto(`${server.base}/devices/24:0A:C4:AB:00:01`);
  await viewer.getByRole('heading', { name: /porch/ }).waitFor();
  assert.equal(await viewer.getByRole('button', { name: 'Rename…' }).count(), 0);
  assert.equal(await viewer.getByRole('button', { name: /Forget device/ }).count(), 0);

  await viewer.getByRole('link', { name: 'Settings' }).click();
  await viewer.getByTestId('settings-read-only').waitFor();
  assert.ok(await viewer.getByLabel(/Check-in interval/).isDisabled());
  assert.equal(await viewer.getByRole('heading', { name: 'API tokens' }).count(), 0);

  // What the page hides, the server refuses: the same token, sent by hand.
  const firmware = await (await fetch(`${server.base}/api/v1/firmware`, { headers: { authorization: `Bearer ${secret}` } })).json();
  const del = await fetch(`${server.base}/api/v1/firmware/${firmware[0].id}`, { method: 'DELETE', headers: { authorization: `Bearer ${secret}` } });
  assert.equal(del.status, 403);
  assert.equal((await del.json()).error.code, 'role_insufficient');
});

test('revoking the token on the owner page sends the viewer back to the token prompt', async () => {
  await owner.goto(`${server.base}/team`);
  const row = owner.locator('[data-testid=token-row][data-name="lab-viewer"]');
  await row.getByText(/\d{4}-\d\d-\d\d \d\d:\d\d \(/).nth(1).waitFor(); // made, and now its last use
  await row.getByRole('button', { name: 'Revoke…' }).click();
  await row.getByRole('button', { name: 'Revoke lab-viewer' }).click();
  await row.getByText(/revoked/).waitFor();
  await viewer.reload();
  await viewer.getByLabel('Admin token').waitFor();
});
