// The Activity page against the real server: admin changes made through the UI (a rename in the
// table, one refused and one saved) and through the admin API (an upload) show there newest
// first with their action, target and outcome; the outcome filter narrows the list on the
// server; "Download CSV" saves the rows shown, fetched with the token in the Authorization
// header (never in the URL).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from './expect.mjs';
import { ADMIN, SimDevice, adminApi, injectedSession, makeImage, shots } from './harness.mjs';

const MAC = '24:0A:C4:0E:00:01';
const CSV_HEADER = 'id,at,actor,action,method,path,target,status,outcome,detail';
let session, page, server, api;
const deviceRow = (mac) => page.locator(`[role=row][data-mac="${mac}"]`);
const auditRows = () => page.getByTestId('audit-row');

/** What the page shows per row: [action, target, result], newest first. */
const shown = () =>
  auditRows().evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].slice(2, 6).filter((_, i) => i !== 2).map((td) => td.textContent.trim())));

/** The CSV's rows, split simply: the fields before `detail` (the last column, JSON with commas)
 *  hold no comma or quote here, so the first nine comma-separated fields are the columns. */
function csvRows(text) {
  const lines = text.split('\r\n');
  assert.equal(lines.at(-1), '', 'every line ends in CRLF');
  assert.equal(lines[0], CSV_HEADER);
  return lines.slice(1, -1).map((l) => {
    const f = l.split(',');
    return { id: f[0], action: f[3], target: f[6], status: f[7], outcome: f[8] };
  });
}

before(async () => {
  session = await injectedSession({ width: 1280, height: 760 });
  ({ page, server } = session);
  api = adminApi(server.base);
  // A device check-in is not an admin change: it leaves no row.
  await new SimDevice(server.base, { mac: MAC, name: 'esp-kiln', project: 'kiln', version: '1.0.0', ip: '10.0.0.31', rssi: -60 }).checkin();
});

after(async () => {
  await session?.close();
});

test('admin changes show newest first with action, target and outcome; the outcome filter narrows them; the CSV holds the rows shown', async () => {
  // A refused rename (65 characters) and a saved one, through the table's pencil.
  await page.goto(server.base);
  await deviceRow(MAC).getByText('esp-kiln').waitFor();
  await deviceRow(MAC).hover();
  await deviceRow(MAC).getByRole('button', { name: 'Rename esp-kiln' }).click();
  const input = deviceRow(MAC).getByTestId('name-input');
  await input.fill('x'.repeat(65));
  await input.press('Enter');
  await deviceRow(MAC).getByTestId('name-error').waitFor();
  await input.fill('Kiln controller');
  await input.press('Enter');
  await input.waitFor({ state: 'detached' });
  await expect(() => deviceRow(MAC).getByTestId('device-name').innerText(), 'Kiln controller');
  // An upload through the admin API.
  const fw = await api.upload(makeImage(session.dir, 'kiln', '1.1.0'), 'kiln-1.1.0.bin');

  // The server's log, to compare the page with: three rows, newest first.
  const log = await api.get('/api/v1/audit');
  assert.deepEqual(log.map((r) => [r.action, r.outcome]), [['upload_firmware', 'ok'], ['patch_device', 'ok'], ['patch_device', 'refused']]);
  assert.equal(log[0].target ?? '', '');
  assert.match(log[1].target, new RegExp(`^mac=${MAC}$`, 'i'));
  assert.equal(log[1].target, log[2].target);
  assert.ok(log[2].status >= 400 && log[2].status < 500, `refused with a 4xx, not ${log[2].status}`);
  assert.ok(fw.id > 0);

  await page.getByRole('link', { name: 'Activity', exact: true }).click();
  await expect(() => auditRows().count(), 3);
  const all = await shown();
  assert.deepEqual(all, [
    ['upload_firmware', '', `done (${log[0].status})`],
    ['patch_device', log[1].target, `done (${log[1].status})`],
    ['patch_device', log[2].target, `refused (${log[2].status})`],
  ]);
  await page.screenshot({ path: join(shots, 'browser-activity.png'), fullPage: true, animations: 'disabled' });

  // The outcome filter asks the server for the refused rows only.
  await page.getByLabel('Outcome').selectOption('refused');
  await expect(() => auditRows().count(), 1);
  assert.deepEqual(await shown(), [all[2]]);
  assert.equal(new URL(page.url()).pathname, '/activity');

  // The CSV of what is shown: the same filter, the token in the header and not in the URL.
  const asked = page.waitForRequest((r) => new URL(r.url()).pathname === '/api/v1/audit.csv');
  const downloaded = page.waitForEvent('download');
  await page.getByRole('button', { name: 'Download CSV' }).click();
  const request = await asked;
  const url = new URL(request.url());
  assert.equal(url.searchParams.get('outcome'), 'refused');
  assert.ok(!request.url().includes(ADMIN), 'the token is not in the URL');
  assert.equal((await request.allHeaders()).authorization, `Bearer ${ADMIN}`);
  const download = await downloaded;
  assert.match(download.suggestedFilename(), /^otafleet-audit-\d{4}-\d{2}-\d{2}\.csv$/);
  const file = join(session.dir, download.suggestedFilename());
  await download.saveAs(file);
  const refused = csvRows(readFileSync(file, 'utf8'));
  assert.deepEqual(refused.map((r) => [r.action, r.target, `refused (${r.status})`]), [all[2]]);
  assert.deepEqual(refused.map((r) => [r.id, r.outcome]), [[String(log[2].id), 'refused']]);

  // Back to any outcome: the whole list, and a CSV with all three rows in the page's order.
  await page.getByLabel('Outcome').selectOption('');
  await expect(() => auditRows().count(), 3);
  const again = page.waitForEvent('download');
  await page.getByRole('button', { name: 'Download CSV' }).click();
  const everything = await again;
  const file2 = join(session.dir, `all-${everything.suggestedFilename()}`);
  await everything.saveAs(file2);
  const rows = csvRows(readFileSync(file2, 'utf8'));
  assert.deepEqual(rows.map((r) => r.id), log.map((r) => String(r.id)));
  assert.deepEqual(rows.map((r) => [r.action, r.target, `${r.outcome === 'ok' ? 'done' : r.outcome} (${r.status})`]), all);
});
