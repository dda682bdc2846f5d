import { render, screen } from '@testing-library/svelte';
import { describe, expect, test } from 'vitest';
import { BackendError } from '../backend/backend';
import { MockBackend, firmware } from '../backend/mock';
import { FirmwareStore } from './firmware.svelte';
import UploadResults from './UploadResults.svelte';

describe('UploadResults', () => {
  test('shows what was detected, and the server\'s reason verbatim', async () => {
    const b = new MockBackend();
    b.uploads.set('ok.bin', { firmware: firmware(1, { chip: 'esp32c3', project: 'thermo', version: '3.1.4' }), created: true });
    const reason = 'partition-table.bin is a partition table (magic 0xAA50 at offset 0), not an app image: flash it with esptool, not over the air';
    b.uploads.set('pt.bin', new BackendError('partition_table', reason, 422));
    const store = new FirmwareStore(b);
    render(UploadResults, { store });
    await store.upload([new File(['x'], 'ok.bin'), new File(['x'], 'pt.bin')]);
    await screen.findByText(/esp32c3 · thermo · 3\.1\.4/);
    expect(screen.getByText(`rejected: ${reason}`)).toBeTruthy();
  });
});
