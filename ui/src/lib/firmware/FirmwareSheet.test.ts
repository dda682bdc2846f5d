import { fireEvent, render, screen, within } from '@testing-library/svelte';
import { describe, expect, test } from 'vitest';
import { BackendError } from '../backend/backend';
import { MockBackend, firmware } from '../backend/mock';
import { FirmwareStore } from './firmware.svelte';
import FirmwareImports from './FirmwareImports.svelte';
import UploadResults from './UploadResults.svelte';

async function open(fw: ReturnType<typeof firmware>, why: 'library' | 'import' = 'library') {
  const b = new MockBackend();
  b.firmwareList = [fw];
  const store = new FirmwareStore(b);
  await store.load();
  render(FirmwareImports, { store });
  store.openSheet({ id: fw.id, why });
  const sheet = await screen.findByTestId('firmware-sheet');
  return { b, store, sheet };
}

describe('Firmware sheet', () => {
  test('says where every value came from', async () => {
    const { sheet } = await open(firmware(3, {
      project: 'doorbell', project_source: 'filename', version: '2.0.0', version_source: 'app_desc',
      idf_version: 'v5.2.2', build_date: 'Jan  1 2025', build_time: '12:00:00', appended_sha256: 'ab'.repeat(32),
    }));
    const s = within(sheet);
    expect((s.getByLabelText('Project') as HTMLInputElement).value).toBe('doorbell');
    expect(s.getByTestId('project-source').textContent).toBe('from the file name');
    expect((s.getByLabelText('Version') as HTMLInputElement).value).toBe('2.0.0');
    expect(s.getByTestId('version-source').textContent).toBe("from the image's app descriptor");
    expect(s.getByText('v5.2.2')).toBeTruthy();
    expect(s.getByText('ab'.repeat(32))).toBeTruthy();
    expect(s.getByText(/what Arduino reports as x-ESP32-sketch-sha256/)).toBeTruthy();
    // Nothing is asked of an image that says what it is.
    expect(s.queryByTestId('project-why')).toBeNull();
    // Typing changes the source to be recorded.
    await fireEvent.input(s.getByLabelText('Version'), { target: { value: '2.0.1' } });
    expect(s.getByTestId('version-source').textContent).toBe('will be set by you');
  });

  test('saves only what changed through patchFirmware, and closes', async () => {
    const { b, store, sheet } = await open(firmware(3, { project: 'doorbell', version: '2.0.0' }));
    const s = within(sheet);
    expect((s.getByRole('button', { name: 'Save' }) as HTMLButtonElement).disabled).toBe(true);
    await fireEvent.input(s.getByLabelText('Version'), { target: { value: ' 2.0.1 ' } });
    await fireEvent.click(s.getByRole('button', { name: 'Save' }));
    await expect.poll(() => store.sheet).toBeNull();
    expect(b.calls).toContain('patchFirmware 3 {"version":"2.0.1"}');
    expect(store.byId(3)?.version).toBe('2.0.1');
    expect(store.byId(3)?.version_source).toBe('admin');
    expect(screen.queryByTestId('firmware-sheet')).toBeNull();
  });

  test("shows the server's refusal inline, by the field it names, and stays open", async () => {
    const { b, store, sheet } = await open(firmware(3, { project: 'doorbell', version: '2.0.0' }));
    const msg = 'invalid version "2 0": no spaces; 1 to 31 printable characters (1.4.2, v2.0.0-rc1)';
    b.patchFirmware = async () => { throw new BackendError('invalid_version', msg, 422); };
    const s = within(sheet);
    await fireEvent.input(s.getByLabelText('Version'), { target: { value: '2 0' } });
    await fireEvent.click(s.getByRole('button', { name: 'Save' }));
    const alert = await s.findByRole('alert');
    expect(alert.textContent).toBe(msg);
    expect(alert.closest('.field')?.querySelector('input')?.id).toBe('fw-version');
    expect(store.sheet).not.toBeNull();

    const conflict = 'image 3 is deployed to project doorbell (deployment 4): stop that deployment first';
    b.patchFirmware = async () => { throw new BackendError('conflict', conflict, 409); };
    await fireEvent.input(s.getByLabelText('Version'), { target: { value: '2.0.1' } });
    await fireEvent.click(s.getByRole('button', { name: 'Save' }));
    await s.findByText(conflict);
    expect(store.sheet).not.toBeNull();
  });

  test('an image of unknown project and version asks for them: focused and explained', async () => {
    const { b, sheet } = await open(firmware(7, {
      filename: 'firmware.bin', project: null, project_source: 'none', version: null, version_source: 'none',
    }), 'import');
    const s = within(sheet);
    expect(screen.getByRole('dialog').getAttribute('aria-label')).toBe('Which project and version is this?');
    expect(document.activeElement).toBe(s.getByLabelText('Project'));
    expect(s.getByTestId('project-source').textContent).toBe('unknown');
    expect(s.getByTestId('project-why').textContent).toMatch(/file name firmware\.bin names a project/);
    expect(s.getByTestId('version-why').textContent).toMatch(/gives a version/);
    await fireEvent.input(s.getByLabelText('Project'), { target: { value: 'doorbell' } });
    await fireEvent.input(s.getByLabelText('Version'), { target: { value: '1.0.0' } });
    await fireEvent.click(s.getByRole('button', { name: 'Save' }));
    await expect.poll(() => b.calls).toContain('patchFirmware 7 {"project":"doorbell","version":"1.0.0"}');
  });

  test('an upload of an image without a project opens the sheet on it', async () => {
    const b = new MockBackend();
    const fw = firmware(9, { filename: 'firmware.bin', project: null, project_source: 'none', version: '1.2.3', version_source: 'app_desc' });
    b.uploads.set('firmware.bin', { firmware: fw, created: true });
    const store = new FirmwareStore(b);
    render(FirmwareImports, { store });
    await store.upload([new File(['x'], 'firmware.bin')]);
    expect(store.sheet).toEqual({ id: 9, why: 'import' });
    const sheet = await screen.findByTestId('firmware-sheet');
    expect(document.activeElement).toBe(within(sheet).getByLabelText('Project'));
    expect(within(sheet).queryByTestId('version-why')).toBeNull();
  });
});

describe('Re-dropping the same bytes under another name', () => {
  test('offers to rename the record to the dropped name, in the sheet', async () => {
    const b = new MockBackend();
    const known = firmware(5, { filename: 'firmware.bin', project: null, project_source: 'none', version: null, version_source: 'none' });
    b.firmwareList = [known];
    b.uploads.set('doorbell-1.0.0.bin', { firmware: known, created: false });
    const store = new FirmwareStore(b);
    await store.load();
    render(UploadResults, { store });
    render(FirmwareImports, { store });
    await store.upload([new File(['x'], 'doorbell-1.0.0.bin')]);
    // Not just "already in the library": the line offers the rename, and the sheet opens with it.
    const line = within(screen.getByRole('region', { name: 'Upload results' }));
    expect(line.getByText(/same bytes as/).textContent).toContain('firmware.bin');
    expect(screen.getByRole('button', { name: 'Rename to doorbell-1.0.0.bin…' })).toBeTruthy();
    expect(store.sheet).toEqual({ id: 5, why: 'rename', rename: 'doorbell-1.0.0.bin' });
    const s = within(await screen.findByTestId('firmware-sheet'));
    expect(s.getByTestId('rename-offer').textContent).toMatch(/doorbell-1\.0\.0\.bin has the same bytes as firmware\.bin/);
    expect((s.getByLabelText('File name') as HTMLInputElement).value).toBe('doorbell-1.0.0.bin');
    // Project and version are set in the same sheet.
    await fireEvent.input(s.getByLabelText('Project'), { target: { value: 'doorbell' } });
    await fireEvent.input(s.getByLabelText('Version'), { target: { value: '1.0.0' } });
    await fireEvent.click(s.getByRole('button', { name: 'Rename to doorbell-1.0.0.bin' }));
    await expect.poll(() => b.calls).toContain(
      'patchFirmware 5 {"project":"doorbell","version":"1.0.0","filename":"doorbell-1.0.0.bin"}',
    );
    // Renamed: the line no longer offers it.
    await expect.poll(() => screen.queryByRole('button', { name: /Rename to/ })).toBeNull();
  });

  test('the same name again is only "already in the library"', async () => {
    const b = new MockBackend();
    b.uploads.set('blink-3.bin', { firmware: firmware(3), created: false });
    const store = new FirmwareStore(b);
    render(UploadResults, { store });
    await store.upload([new File(['x'], 'blink-3.bin')]);
    expect(store.sheet).toBeNull();
    expect(screen.getByText('already in the library:')).toBeTruthy();
    expect(screen.queryByRole('button', { name: /Rename/ })).toBeNull();
  });
});

describe('Watch-folder imports', () => {
  test('an image without project or version, imported by a watch folder, gets a notice that opens the sheet', async () => {
    const b = new MockBackend();
    const store = new FirmwareStore(b);
    await store.load();
    render(FirmwareImports, { store });
    // Known identity: nothing to ask.
    store.applyFirmware(firmware(1, { source: 'watch', source_path: '/lab/blink/.pio/build/esp32dev/blink-1.bin' }));
    store.applyFirmware(firmware(2, {
      filename: 'firmware.bin', source: 'watch', source_path: '/lab/door/.pio/build/esp32dev/firmware.bin',
      project: null, project_source: 'none', version: null, version_source: 'none',
    }));
    const notice = await screen.findByTestId('watch-notice');
    expect(screen.getAllByTestId('watch-notice')).toHaveLength(1);
    expect(notice.textContent!.replace(/\s+/g, ' ')).toMatch(/Imported firmware\.bin from \/lab\/door\/\.pio\/build\/esp32dev: project and version unknown — set them/);
    await fireEvent.click(within(notice).getByRole('button', { name: 'Set them…' }));
    const s = within(await screen.findByTestId('firmware-sheet'));
    expect(s.getByText(/was imported from the watch folder \/lab\/door\/\.pio\/build\/esp32dev/)).toBeTruthy();
    expect(document.activeElement).toBe(s.getByLabelText('Project'));
    expect(screen.queryByTestId('watch-notice')).toBeNull();
  });
});
