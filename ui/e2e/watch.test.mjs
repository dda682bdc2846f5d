// Watch folders through the UI: a person adds a build output folder on the Firmware page; a build
// then writes an image there, and it appears in the library with the folder's result — the real
// server's inotify watcher, no upload involved. No sleeps: every wait is for a condition.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { injectedSession, makeImage } from './harness.mjs';

let session, dir, server, page;

before(async () => {
  session = await injectedSession({ width: 1280, height: 800 });
  ({ dir, server, page } = session);
});

after(async () => {
  await session?.close();
});

test('a watched build folder: a new image is imported by itself and its result shown', async () => {
  const build = join(dir, 'blink', '.pio', 'build', 'esp32dev');
  mkdirSync(build, { recursive: true });
  await page.goto(`${server.base}/firmware`);
  const section = page.getByTestId('watch-folders');
  await section.getByLabel('Folder to watch').fill(build);
  await section.getByRole('button', { name: 'Watch', exact: true }).click();
  await section.getByText('waiting for a build').waitFor();

  // The build writes its output (a rename into place, as many tools do).
  const image = makeImage(dir, 'blink', '2.1.0');
  copyFileSync(image.path, join(build, 'firmware.tmp'));
  renameSync(join(build, 'firmware.tmp'), join(build, 'firmware.bin'));

  await section.getByText(/imported: imported blink 2\.1\.0 for esp32/).waitFor({ timeout: 20000 });
  await page.locator('table[aria-label="Firmware library"] tr', { hasText: '2.1.0' }).waitFor();

  // A folder that does not exist is refused with the server's reason, shown as it is.
  await section.getByLabel('Folder to watch').fill(join(dir, 'no-such-folder'));
  await section.getByRole('button', { name: 'Watch', exact: true }).click();
  const note = section.getByRole('alert');
  await note.waitFor();
  assert.match(await note.innerText(), /cannot open the folder/);
});
