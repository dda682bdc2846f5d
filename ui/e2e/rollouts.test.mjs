// Staged rollouts in a real browser: the real server, six devices simulated over the native
// protocol (harness.mjs), the built UI in Chromium. The deploy dialog's Canary choice warns while
// no device is tagged canary, then shows the waves exactly as the server's dry run places them; a
// custom plan edits them; the rollout offers the image to the canary only, the others wait for
// their wave, a device that appears later joins the next wave marked "late"; the Deployments page
// pauses it with a reason, shows that reason, and resumes it. Every wait is for a condition (a
// locator, or the API polled), never for time.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { expect } from './expect.mjs';
import { SimDevice, adminApi, adminPage, cleanup, makeImage, shots, startServer, tempDir } from './harness.mjs';

let dir, server, browser, page, api;
let v1, v2, fw2;
const REASON = "checking the canary's sensor readings";

const device = (i) => new SimDevice(server.base, {
  mac: `24:0A:C4:E7:00:${String(i).padStart(2, '0')}`, name: `bench-${String(i).padStart(2, '0')}`,
  project: 'bench', version: '1.0.0', sha256: v1.sha256, ip: `192.168.7.${10 + i}`, rssi: -50 - i,
});

before(async () => {
  dir = tempDir();
  v1 = makeImage(dir, 'bench', '1.0.0');
  v2 = makeImage(dir, 'bench', '2.0.0');
  server = await startServer(join(dir, 'data'));
  api = adminApi(server.base);
  await api.upload(v1, 'bench-1.0.0.bin');
  fw2 = await api.upload(v2, 'bench-2.0.0.bin');
  ({ browser, page } = await adminPage(dir, { width: 1440, height: 900 }));
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (dir) cleanup(dir);
});

/** Two frames, so a theme change has been laid out and painted. */
const painted = () => page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));

async function shot(name, target = page) {
  for (const theme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: theme });
    await painted();
    await target.screenshot({ path: join(shots, `${name}-1440-${theme}.png`), animations: 'disabled' });
  }
  await page.emulateMedia({ colorScheme: 'light' });
}

async function openDeployDialog() {
  await page.goto(`${server.base}/firmware`);
  await page.getByText('● live').waitFor();
  const row = page.getByTestId('firmware-row').filter({ hasText: 'bench' }).filter({ hasText: '2.0.0' });
  await row.getByRole('button', { name: 'Deploy…' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByTestId('group-offer').waitFor();
  return dialog;
}

/** The MACs of each wave as the dialog lists them. */
async function dialogWaves(dialog) {
  const waves = dialog.getByRole('list', { name: 'Waves of the rollout' }).locator(':scope > li');
  const out = [];
  for (let i = 0; i < (await waves.count()); i++) {
    const macs = await waves.nth(i).locator('li[data-mac]').evaluateAll((els) => els.map((e) => e.dataset.mac));
    out.push(macs.sort());
  }
  return out;
}

test('canary rollout: the wizard shows the waves, the canary goes first, pause with a reason, resume', async () => {
  const fleet = [1, 2, 3, 4, 5].map(device);
  await Promise.all(fleet.map((d) => d.checkin()));
  const canary = fleet[2];

  // No device tagged canary yet: the dialog says what that means before anything is created.
  let dialog = await openDeployDialog();
  await dialog.getByRole('radio', { name: 'Canary' }).check();
  const empty = 'No device is tagged canary: the first wave is empty and starts the next at once.';
  await dialog.getByTestId('wave-note').filter({ hasText: empty }).waitFor();
  await dialog.getByRole('button', { name: 'Deploy to 5 devices in 4 waves' }).waitFor();
  await shot('rollout-wizard-empty-canary', dialog);
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await dialog.waitFor({ state: 'detached' });

  // Tag one device canary (through the API, as a script would), and plan again.
  await api.patch(`/api/v1/devices/${canary.mac}`, { tags: ['canary'] });
  const request = { firmware_id: fw2.id, project: 'bench', chip: 'esp32', preset: 'canary' };
  const dry = await api.post('/api/v1/deployments?dry_run=true', request);
  const serverWaves = dry.rollout.waves.map((w) => w.devices.map((m) => m.mac).sort());
  assert.deepEqual(serverWaves[0], [canary.mac], 'the server puts the canary first');

  dialog = await openDeployDialog();
  assert.equal(await dialog.getByRole('radio', { name: 'All at once' }).isChecked(), true, 'all at once is the default');
  assert.equal(await dialog.getByRole('list', { name: 'Waves of the rollout' }).count(), 0, 'a plain deployment has no waves');
  await dialog.getByRole('radio', { name: 'Canary' }).check();
  const waveList = dialog.getByRole('list', { name: 'Waves of the rollout' });
  await waveList.locator(`li[data-wave="1"] li[data-mac="${canary.mac}"]`).waitFor();
  assert.deepEqual(await dialogWaves(dialog), serverWaves, "the dialog's waves are the server's dry run, device for device");
  for (const w of dry.rollout.waves) {
    await waveList.locator(`li[data-wave="${w.number}"]`).filter({ hasText: `Wave ${w.number} ${w.label}` }).waitFor();
  }
  assert.equal(await dialog.getByTestId('wave-note').filter({ hasText: 'No device is tagged canary' }).count(), 0, 'no warning any more');
  await dialog.getByTestId('rollout-hint').filter({ hasText: 'each device must stay healthy for 1 min' }).waitFor();
  await dialog.getByTestId('group-waiting_for_wave').filter({ hasText: '4 wait for their wave' }).waitFor();
  await shot('rollout-wizard', dialog);

  // Custom starts from the canary plan; a wave added shows in the dry run at once.
  await dialog.getByRole('radio', { name: 'Custom' }).check();
  const rows = dialog.getByRole('table', { name: 'Waves of the custom plan' }).locator('tr');
  await expect(() => rows.count(), 4);
  assert.equal(await dialog.getByLabel('Wave 1 tag').inputValue(), 'canary');
  await dialog.getByRole('button', { name: '+ Add wave' }).click();
  assert.equal(await dialog.getByLabel('Wave 4 percent').inputValue(), '75');
  await waveList.locator('li[data-wave="5"]').waitFor();
  await dialog.getByLabel('Soak time (seconds)').fill('300');
  await dialog.getByLabel('Soak time (seconds)').press('Tab');
  await dialog.getByTestId('rollout-hint').filter({ hasText: 'each device must stay healthy for 5 min' }).waitFor();
  await shot('rollout-wizard-custom', dialog);

  // Back to the preset, and deploy it.
  await dialog.getByRole('radio', { name: 'Canary' }).check();
  await expect(() => waveList.locator(':scope > li').count(), 4);
  const before = (await api.get('/api/v1/deployments')).length;
  await dialog.getByRole('button', { name: 'Deploy to 5 devices in 4 waves' }).click();
  await dialog.waitFor({ state: 'detached' });
  await page.getByRole('status').filter({ hasText: 'Rollout' }).filter({ hasText: 'in 4 waves' }).waitFor();
  const deployments = await api.get('/api/v1/deployments');
  assert.equal(deployments.length, before + 1);
  const dep = deployments[0];
  assert.deepEqual(dep.plan.waves, dry.rollout.plan.waves, 'created with the canary plan');
  const detail = await api.get(`/api/v1/deployments/${dep.id}`);
  assert.deepEqual(detail.rollout.waves.map((w) => w.devices.map((m) => m.mac).sort()), serverWaves, 'placed as the dry run said');

  // Only the canary is offered the image; the others wait for their wave.
  for (const d of fleet) await d.checkin();
  assert.deepEqual(fleet.map((d) => !!d.offer), fleet.map((d) => d === canary));

  // A device new on the LAN after the rollout began joins the next wave, marked late.
  const late = device(6);
  await late.checkin();
  assert.equal(late.offer, null, 'a late joiner waits for its wave too');

  await page.getByRole('link', { name: 'Deployments', exact: true }).click();
  const card = page.locator(`article[data-deployment="${dep.id}"]`);
  const waves = card.getByRole('list', { name: `Waves of rollout ${dep.id}` });
  await waves.locator(`li[data-wave="1"][aria-current="step"]`).filter({ hasText: 'under way' }).waitFor();
  await waves.locator(`li[data-wave="1"] li[data-mac="${canary.mac}"][data-state="updating"]`).waitFor();
  for (const d of fleet.filter((d) => d !== canary)) await waves.locator(`li[data-mac="${d.mac}"][data-state="waiting"]`).waitFor();
  await waves.locator(`li[data-wave="2"] li[data-mac="${late.mac}"]`).filter({ hasText: 'late' }).waitFor();
  await card.getByTestId('rollout-wave').filter({ hasText: 'Wave 1 of 4 under way' }).waitFor();

  // The canary installs it: its chip moves to soaking (it must stay healthy for the soak time).
  assert.equal(await canary.cycle([v1, v2]), 'done');
  await waves.locator(`li[data-mac="${canary.mac}"][data-state="soaking"]`).waitFor();
  await waves.locator('li[data-wave="1"]').getByTestId('wave-counts').filter({ hasText: '1 soaking' }).waitFor();
  await card.scrollIntoViewIfNeeded();
  await shot('rollout-page', card);

  // Pause from the page, with a reason: the reason is what the card shows first.
  await card.getByRole('button', { name: 'Pause…' }).click();
  assert.equal((await api.get(`/api/v1/deployments/${dep.id}`)).deployment.status, 'active', 'nothing paused before the question is answered');
  await card.getByLabel('Why (optional)').fill(REASON);
  await card.getByRole('button', { name: `Pause rollout ${dep.id}` }).click();
  await card.getByTestId('status').filter({ hasText: 'paused' }).waitFor();
  await card.getByTestId('pause-reason').filter({ hasText: REASON }).waitFor();
  await waves.locator('li[data-wave="1"][aria-current="step"]').filter({ hasText: 'paused' }).waitFor();
  const paused = (await api.get(`/api/v1/deployments/${dep.id}`)).deployment;
  assert.equal(paused.status, 'paused');
  assert.ok(paused.pause_reason.includes(REASON), paused.pause_reason);
  assert.ok(await card.getByRole('button', { name: 'Resume and retry failed' }).isDisabled(), 'nothing failed: nothing to retry');
  await shot('rollout-page-paused', card);

  // Paused: a device of a later wave still gets nothing.
  await fleet[0].checkin();
  assert.equal(fleet[0].offer, null);

  await card.getByRole('button', { name: 'Resume', exact: true }).click();
  await card.getByTestId('status').filter({ hasText: 'active' }).waitFor();
  await card.getByTestId('pause-reason').waitFor({ state: 'detached' });
  await card.getByRole('button', { name: 'Pause…' }).waitFor();
  assert.equal((await api.get(`/api/v1/deployments/${dep.id}`)).deployment.status, 'active');
});
