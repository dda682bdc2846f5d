import { describe, expect, test } from 'vitest';
import { BackendError } from '../backend/backend';
import { MockBackend, firmware } from '../backend/mock';
import { FirmwareStore } from './firmware.svelte';

const file = (name: string) => new File([new Uint8Array([0xe9, 1, 2])], name);

describe('FirmwareStore', () => {
  test('one result per file: accepted, already known, rejected with the server\'s words', async () => {
    const b = new MockBackend();
    b.uploads.set('a.bin', { firmware: firmware(1), created: true });
    b.uploads.set('b.bin', { firmware: firmware(2), created: false });
    b.uploads.set('boot.bin', new BackendError('bootloader', 'this is a bootloader, not an app image', 422));
    const s = new FirmwareStore(b);
    await s.upload([file('a.bin'), file('b.bin'), file('boot.bin')]);
    expect(s.uploads.map((u) => [u.name, u.state])).toEqual([
      ['boot.bin', 'rejected'],
      ['b.bin', 'existing'],
      ['a.bin', 'accepted'],
    ]);
    expect(s.uploads[0].error).toEqual({ code: 'bootloader', message: 'this is a bootloader, not an app image' });
    expect(s.items.map((f) => f.id)).toEqual([2, 1]);
  });

  test('a refused delete keeps the image and records the reason', async () => {
    const b = new MockBackend();
    b.firmwareList = [firmware(1)];
    b.deleteError = new BackendError('conflict', 'image 1 is deployed (deployment 3); stop it first', 409);
    const s = new FirmwareStore(b);
    await s.load();
    expect(await s.remove(1)).toBe(false);
    expect(s.items).toHaveLength(1);
    expect(s.deleteErrors[1].message).toContain('deployed');
    b.deleteError = null;
    expect(await s.remove(1)).toBe(true);
    expect(s.items).toHaveLength(0);
    expect(s.deleteErrors[1]).toBeUndefined();
  });

  test('native import results become upload lines', () => {
    const s = new FirmwareStore(new MockBackend());
    s.addNativeResults([
      { path: '/home/lab/build/app.bin', ok: true, firmware: firmware(4), created: true },
      { path: 'C:\\fw\\pt.bin', ok: false, error: { code: 'partition_table', message: 'a partition table' } },
    ]);
    expect(s.uploads.map((u) => [u.name, u.state])).toEqual([
      ['pt.bin', 'rejected'],
      ['app.bin', 'accepted'],
    ]);
  });
});
