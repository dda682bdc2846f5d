import { describe, expect, it } from 'vitest';
import { BackendError } from '../backend/backend';
import { MockBackend } from '../backend/mock';
import { WatchStore } from './watch.svelte';

describe('WatchStore', () => {
  it('adds, follows results from events, and removes folders', async () => {
    const backend = new MockBackend();
    const store = new WatchStore(backend);
    await store.load();
    expect(store.items).toEqual([]);
    expect(await store.add('  /home/lab/blink/.pio/build/esp32dev ', true)).toBe(true);
    expect(backend.calls).toContain('watch /home/lab/blink/.pio/build/esp32dev true');
    const folder = store.items[0];
    store.apply({ ...folder, last_file: `${folder.path}/firmware.bin`, last_result: 'imported', last_message: 'imported blink 1.2.3' });
    expect(store.items).toHaveLength(1);
    expect(store.items[0].last_result).toBe('imported');
    await store.remove(folder.id);
    expect(store.items).toEqual([]);
  });

  it('keeps the server refusal to show it, verbatim', async () => {
    const backend = new MockBackend();
    backend.watchError = new BackendError('invalid_path', 'cannot open the folder /nope: No such file or directory', 422);
    const store = new WatchStore(backend);
    expect(await store.add('/nope', false)).toBe(false);
    expect(store.error).toEqual({ code: 'invalid_path', message: 'cannot open the folder /nope: No such file or directory' });
    expect(store.items).toEqual([]);
  });
});
