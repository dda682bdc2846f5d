// Two instances on one PostgreSQL database (docs/deployment.md): the browser shows instance B
// while a device checks in and reports progress to instance A only. Its row must appear in B's
// table and its progress bar move, live — A's events reach B through the database
// (LISTEN/NOTIFY), and B's event stream hands them to the browser. PostgreSQL is a throwaway
// cluster (scripts/pg, as root); without PostgreSQL 15 the test says SKIPPED.
import { after, before, test } from 'node:test';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from './expect.mjs';
import { SimDevice, adminApi, adminPage, cleanup, makeImage, repo, shots, startServer, tempDir } from './harness.mjs';

const PGBIN = process.env.OTAFLEET_PGBIN ?? '/usr/lib/postgresql/15/bin';
const why = !existsSync(join(PGBIN, 'initdb'))
  ? 'PostgreSQL 15 is not installed (scripts/setup-deps installs it)'
  : process.getuid() !== 0
    ? 'scripts/pg runs PostgreSQL as the postgres user: run as root'
    : null;
if (why) console.log(`SKIPPED: ${why}`);

let dir, pgDir, a, b, browser, page;

before(async () => {
  if (why) return;
  dir = tempDir();
  // scripts/pg runs the cluster as the postgres user, who must reach its directory.
  chmodSync(dir, 0o755);
  pgDir = join(dir, 'pg');
  const url = execFileSync('bash', [join(repo, 'scripts/pg'), 'start', pgDir], { encoding: 'utf8' }).trim();
  const cluster = (role) => ['--database-url', url, '--cluster-role', role];
  a = await startServer(join(dir, 'a'), { extraArgs: cluster('primary') });
  b = await startServer(join(dir, 'b'), { extraArgs: cluster('worker') });
  ({ browser, page } = await adminPage(dir, { width: 1280, height: 600 }));
});

after(async () => {
  await browser?.close();
  await a?.stop();
  await b?.stop();
  if (pgDir) execFileSync('bash', [join(repo, 'scripts/pg'), 'stop', pgDir]);
  if (dir) cleanup(dir);
});

test('a device that talks to instance A appears and moves live in a browser on instance B', { skip: why ?? false }, async () => {
  await page.goto(b.base);
  await page.getByText('live', { exact: false }).first().waitFor();

  const image = makeImage(dir, 'greenhouse', '2.1.0');
  const device = new SimDevice(a.base, {
    mac: '24:0A:C4:18:00:01', name: 'greenhouse-north', project: 'greenhouse', version: '2.0.0',
    ip: '192.168.18.21', rssi: -58,
  });
  await device.checkin();
  // Only A heard it; B's page learns of it through B's event stream.
  await page.locator('[data-mac="24:0A:C4:18:00:01"]').getByText('greenhouse-north').waitFor();

  const api = adminApi(a.base);
  const fw = await api.upload(image, 'greenhouse-2.1.0.bin');
  await api.post('/api/v1/deployments', { firmware_id: fw.id });
  await device.checkin();
  if (!device.offer) throw new Error('instance A offered the device nothing');
  await device.progress('downloading', 40);
  const bar = page.locator('[data-mac="24:0A:C4:18:00:01"] [role=progressbar]');
  await expect(() => bar.getAttribute('aria-valuenow'), '40');
  await device.progress('downloading', 85);
  await expect(() => bar.getAttribute('aria-valuenow'), '85');
  await page.screenshot({ path: join(shots, 'cluster-other-instance.png'), animations: 'disabled' });
});
