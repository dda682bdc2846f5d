// Organisations in a real browser against the real server: the owner of the server's own
// organisation makes `acme` over the API; the same image goes into both libraries; a fleet of
// `otafleet-sim` devices with the SAME MACs runs against each (the default one at the server's
// address, acme's at `/o/<enrolment key>`). Two Chromium profiles — the admin token in one,
// acme's owner token typed into the token prompt in the other — each see only their own devices
// (named differently through each UI), their own images; a deployment made in acme's UI updates
// acme's devices while the default organisation's table never shows an update; the header names
// "acme lab". A member of acme signs in with a password through the prompt's Organisation field.
// Every wait is for a condition (a locator, or the API polled), never for time.
// Screenshots: team-organisations-1440.png, devices-acme-1440.png.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from './expect.mjs';
import { adminApi, adminPage, cleanup, launchBrowser, makeImage, shots, startServer, startSim, tempDir } from './harness.mjs';

const VIEWPORT = { width: 1440, height: 900 };
const N = 3;
const SIM_ARGS = ['--devices', String(N), '--protocols', `native=${N}`, '--project', 'lamp', '--wait-for-deployment', '--forever',
  '--interval', '0.5', '--jitter', '0', '--reboot-ms', '100', '--seed', '4711'];
const DEFAULT_NAMES = ['hall lamp', 'porch lamp', 'desk lamp'];
const ACME_NAMES = ['kiln 1', 'kiln 2', 'kiln 3'];

let dir, server, api, acmeApi, acme, simDefault, simAcme, macs;
let ownerBrowser, owner, acmeBrowser, acmePage, memberBrowser;

/** Devices of an organisation that enrolled (a native device holds a token), by MAC. */
const enrolled = async (a) => (await a.get('/api/v1/devices')).filter((d) => d.mac && d.auth === 'token').map((d) => d.mac).sort();
const row = (page, mac) => page.locator(`[role=row][data-mac="${mac}"]`);

before(async () => {
  dir = tempDir();
  mkdirSync(shots, { recursive: true });
  server = await startServer(join(dir, 'data'), { extraArgs: ['--local-accounts'] });
  api = adminApi(server.base);
  acme = await api.post('/api/v1/organisations', { id: 'acme', name: 'acme lab' });
  assert.match(acme.owner_token.secret, /^otf_acme\./);
  acmeApi = adminApi(server.base, acme.owner_token.secret);

  // The same image in both libraries, and one more of each organisation's own.
  const lamp = makeImage(dir, 'lamp', '2.0.0');
  const [a, b] = [await api.upload(lamp, 'lamp-2.0.0.bin'), await acmeApi.upload(lamp, 'lamp-2.0.0.bin')];
  assert.equal(a.sha256, b.sha256);
  await api.upload(makeImage(dir, 'doorbell', '3.1.0'), 'doorbell-3.1.0.bin');
  await acmeApi.upload(makeImage(dir, 'furnace', '0.9.0'), 'furnace-0.9.0.bin');

  // Two fleets from one seed: the same MACs, one at each organisation's base URL.
  simDefault = startSim(server.base, SIM_ARGS);
  simAcme = startSim(`${server.base}/o/${acme.organisation.enrolment_key}`, SIM_ARGS);
  await expect(async () => (await enrolled(api)).length, N, { timeout: 30000 });
  await expect(async () => (await enrolled(acmeApi)).length, N, { timeout: 30000 });
  macs = await enrolled(api);
  assert.deepEqual(await enrolled(acmeApi), macs, 'the same MACs in both organisations');

  ({ browser: ownerBrowser, page: owner } = await adminPage(join(dir, 'owner'), VIEWPORT));
  acmeBrowser = await launchBrowser(join(dir, 'acme-profile'), VIEWPORT);
  acmePage = await acmeBrowser.newPage();
});

after(async () => {
  await memberBrowser?.close();
  await acmeBrowser?.close();
  await ownerBrowser?.close();
  await simAcme?.stop();
  await simDefault?.stop();
  await server?.stop();
  if (dir) cleanup(dir);
});

test("the owner's Team page lists acme with its devices' base URL and makes another organisation", async () => {
  await owner.goto(`${server.base}/team`);
  await owner.getByTestId('whoami').filter({ hasText: 'owner' }).waitFor();
  assert.equal(await owner.getByTestId('organisation-badge').count(), 0, 'no badge for the server\'s own organisation');
  const section = owner.getByTestId('organisation');
  await section.getByText("Devices use this server's address, as before").waitFor();
  const acmeRow = owner.locator('[data-testid=organisation-row][data-id="acme"]');
  await acmeRow.getByText('acme lab').waitFor();
  assert.equal(await acmeRow.getByLabel('device base URL of acme').innerText(), `${server.base}/o/${acme.organisation.enrolment_key}`);

  // A bad id: the server's words.
  await owner.getByLabel('Organisation id').fill('Beta Lab');
  await owner.getByLabel('Organisation name').fill('Beta lab');
  await owner.getByRole('button', { name: 'Make organisation' }).click();
  await owner.getByRole('region', { name: 'Organisations' }).getByRole('alert').waitFor();
  // A good one: its owner token, once.
  await owner.getByLabel('Organisation id').fill('beta');
  await owner.getByRole('button', { name: 'Make organisation' }).click();
  const note = owner.getByTestId('organisation-created');
  const secret = await note.getByLabel('owner token of beta').innerText();
  assert.match(secret, /^otf_beta\./);
  await owner.locator('[data-testid=organisation-row][data-id="beta"]').waitFor();
  assert.equal(await owner.getByRole('region', { name: 'Organisations' }).getByRole('alert').count(), 0);
  await owner.screenshot({ path: join(shots, 'team-organisations-1440.png'), fullPage: true, animations: 'disabled' });
  await note.getByRole('button', { name: 'Done' }).click();
  await note.waitFor({ state: 'detached' });
  assert.ok(!(await owner.locator('main').innerText()).includes(secret), 'not shown again');
  const me = await (await fetch(`${server.base}/api/v1/me`, { headers: { authorization: `Bearer ${secret}` } })).json();
  assert.deepEqual([me.organisation.id, me.role], ['beta', 'owner']);
});

test("acme's owner token, typed into the prompt: acme's devices, named in each UI, never the other's", async () => {
  await acmePage.goto(server.base);
  await acmePage.getByLabel('Admin token').fill(acme.owner_token.secret);
  await acmePage.getByRole('button', { name: 'Connect' }).click();
  await acmePage.getByTestId('whoami').filter({ hasText: 'owner token · owner' }).waitFor();
  assert.equal(await acmePage.getByTestId('organisation-badge').innerText(), 'acme lab');

  await owner.goto(server.base);
  for (const [page, names] of [[owner, DEFAULT_NAMES], [acmePage, ACME_NAMES]]) {
    await page.getByText('● live').waitFor();
    for (const [i, mac] of macs.entries()) {
      const r = row(page, mac);
      await r.waitFor();
      await r.hover();
      await r.getByRole('button', { name: /^Rename / }).click();
      const input = r.getByTestId('name-input');
      await input.fill(names[i]);
      await input.press('Enter');
      await input.waitFor({ state: 'detached' });
      await expect(() => r.getByTestId('device-name').innerText(), names[i]);
    }
  }
  // Each table: its own names on the same MACs, none of the other's.
  for (const [page, mine, theirs] of [[owner, DEFAULT_NAMES, ACME_NAMES], [acmePage, ACME_NAMES, DEFAULT_NAMES]]) {
    await page.reload();
    await page.getByText('● live').waitFor();
    await expect(() => page.locator('[role=row][data-mac]').count(), N);
    const text = await page.locator('main').innerText();
    for (const name of mine) assert.ok(text.includes(name), `${name} shown`);
    for (const name of theirs) assert.ok(!text.includes(name), `${name} is the other organisation's`);
  }
  assert.deepEqual((await api.get('/api/v1/devices')).map((d) => d.name).sort(), [...DEFAULT_NAMES].sort());
  assert.deepEqual((await acmeApi.get('/api/v1/devices')).map((d) => d.name).sort(), [...ACME_NAMES].sort());
});

test('each firmware page lists only its own images', async () => {
  for (const [page, mine, theirs] of [[owner, 'doorbell', 'furnace'], [acmePage, 'furnace', 'doorbell']]) {
    await page.getByRole('link', { name: 'Firmware' }).click();
    await page.getByTestId('firmware-row').filter({ hasText: mine }).waitFor();
    await page.getByTestId('firmware-row').filter({ hasText: 'lamp' }).waitFor();
    assert.equal(await page.getByTestId('firmware-row').count(), 2);
    assert.ok(!(await page.locator('main').innerText()).includes(theirs), `${theirs} is the other organisation's`);
  }
});

test("a deployment made in acme's UI updates acme's devices; the default organisation's table never shows it", async () => {
  // The default organisation's table, watched from now on: any row that shows the new version or
  // an update in progress is recorded.
  await owner.getByRole('link', { name: 'Devices' }).click();
  await owner.getByText('● live').waitFor();
  await expect(() => owner.locator('[role=row][data-mac]').count(), N);
  await owner.evaluate(() => {
    const w = /** @type {any} */ (window);
    w.__leaks = [];
    const look = () => {
      for (const r of document.querySelectorAll('[data-testid=device-row]')) {
        const t = r.textContent ?? '';
        if (/2\.0\.0|updat|download|verif|flash|reboot|\d+%/i.test(t)) w.__leaks.push(t);
      }
    };
    w.__observer = new MutationObserver(look);
    w.__observer.observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
    look();
  });

  const fw = acmePage.getByTestId('firmware-row').filter({ hasText: 'lamp' });
  await fw.getByRole('button', { name: 'Deploy…' }).click();
  const dialog = acmePage.getByRole('dialog');
  await dialog.getByTestId('group-offer').filter({ hasText: `${N} will be offered the image` }).waitFor();
  await dialog.getByRole('button', { name: `Deploy to ${N} devices` }).click();
  await acmePage.getByRole('status').filter({ hasText: 'devices will be offered lamp 2.0.0' }).waitFor();

  // acme's simulated devices download from /o/<key>/…, flash and boot it.
  await expect(async () => (await acmeApi.get('/api/v1/devices')).filter((d) => d.version === '2.0.0').length, N, { timeout: 60000 });
  await acmePage.getByRole('link', { name: 'Devices' }).click();
  for (const mac of macs) await expect(() => row(acmePage, mac).getByTestId('running').innerText(), '2.0.0', { timeout: 30000 });
  await acmePage.getByText('● live').waitFor();
  await acmePage.screenshot({ path: join(shots, 'devices-acme-1440.png'), animations: 'disabled' });

  // The default organisation: the same MACs, still on 1.0.0 — several check-ins later (each sim
  // checks in every 0.5 s), no deployment, no attempt, and its table showed nothing of acme's.
  const seen = async () => Math.min(...(await api.get('/api/v1/devices')).map((d) => Date.parse(d.last_seen)));
  const since = Date.now();
  await expect(async () => (await seen()) > since + 1500, true, { timeout: 15000 });
  assert.deepEqual(await api.get('/api/v1/deployments'), []);
  for (const mac of macs) {
    assert.equal((await api.get(`/api/v1/devices/${mac}`)).version, '1.0.0');
    assert.deepEqual(await api.get(`/api/v1/devices/${mac}/updates`), []);
    assert.equal(await row(owner, mac).getByTestId('running').innerText(), '1.0.0');
  }
  assert.equal((await acmeApi.get('/api/v1/deployments')).length, 1);
  await owner.getByText('● live').waitFor();
  const leaks = await owner.evaluate(() => /** @type {any} */ (window).__leaks);
  assert.deepEqual(leaks, [], 'no update shown on the default organisation\'s devices');
});

test("acme's Team page names it and its devices' base URL, without the Organisations panel", async () => {
  await acmePage.getByRole('link', { name: 'Team' }).click();
  const section = acmePage.getByTestId('organisation');
  await section.getByTestId('organisation-name').filter({ hasText: 'acme lab' }).waitFor();
  assert.equal(await section.getByLabel("devices' base URL").innerText(), `${server.base}/o/${acme.organisation.enrolment_key}`);
  assert.equal(await acmePage.getByRole('heading', { name: 'Organisations' }).count(), 0);
  assert.equal(await acmePage.getByText('beta', { exact: true }).count(), 0);
});

test("acme's pages give its devices' URL and offer nothing that is only the server's own", async () => {
  const base = `${server.base}/o/${acme.organisation.enrolment_key}`;
  await acmePage.getByRole('link', { name: 'Settings' }).click();
  await acmePage.getByText(`${base}/api/v1/device/checkin`).first().waitFor();
  assert.equal(await acmePage.getByText(`${server.base}/api/v1/device/checkin`, { exact: true }).count(), 0);
  await acmePage.getByRole('link', { name: 'Devices' }).click();
  await acmePage.getByRole('button', { name: 'Add device…' }).waitFor();
  assert.equal(await acmePage.getByRole('button', { name: 'Add ESP Admin device…' }).count(), 0);
  await acmePage.getByRole('link', { name: 'Firmware' }).click();
  await acmePage.getByTestId('firmware-row').first().waitFor();
  assert.equal(await acmePage.getByTestId('watch-folders').count(), 0);
  // The server's own organisation keeps both.
  await owner.getByRole('link', { name: 'Devices' }).click();
  await owner.getByRole('button', { name: 'Add ESP Admin device…' }).waitFor();
});

test("a member of acme signs in with a password through the prompt's Organisation field", async () => {
  const member = await acmeApi.post('/api/v1/members', { email: 'carol@acme.test', role: 'operator' });
  await acmeApi.put(`/api/v1/members/${member.id}/password`, { password: 'kiln glaze cone six' });
  memberBrowser = await launchBrowser(join(dir, 'member-profile'), VIEWPORT);
  const page = await memberBrowser.newPage();
  await page.goto(server.base);
  const org = page.getByLabel('Organisation', { exact: true });
  await org.waitFor();
  assert.equal(await org.inputValue(), '');
  await page.getByLabel('E-mail', { exact: true }).fill('carol@acme.test');
  await page.getByLabel('Password', { exact: true }).fill('kiln glaze cone six');
  // Without the organisation, the server's own has no such member.
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  assert.equal(await page.getByTestId('sign-in-error').getAttribute('data-code'), 'bad_credentials');
  // An organisation nobody has: said at once.
  await org.fill('acne');
  await page.getByTestId('organisation-error').filter({ hasText: /acne/ }).waitFor();
  assert.equal(await page.getByTestId('organisation-error').getAttribute('data-code'), 'organisation_unknown');
  await org.fill('acme');
  await page.getByTestId('organisation-error').waitFor({ state: 'detached' });
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByTestId('whoami').filter({ hasText: 'carol@acme.test · operator' }).waitFor();
  assert.equal(await page.getByTestId('organisation-badge').innerText(), 'acme lab');
  for (const name of ACME_NAMES) await page.getByTestId('device-name').filter({ hasText: name }).waitFor();
  assert.ok(!(await page.locator('main').innerText()).includes(DEFAULT_NAMES[0]));
  const cookie = (await memberBrowser.cookies(server.base)).find((c) => c.name === 'otafleet_session');
  assert.match(cookie.value, /^acme\./);

  // Signed out, the prompt remembers the organisation; a link with ?org= fills it in too.
  await page.getByTestId('sign-out').click();
  await org.waitFor();
  assert.equal(await org.inputValue(), 'acme');
  await page.evaluate(() => localStorage.clear());
  await page.goto(`${server.base}/?org=acme`);
  assert.equal(await org.inputValue(), 'acme');
});
