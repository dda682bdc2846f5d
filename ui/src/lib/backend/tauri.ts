// The desktop-only adapter. Loaded (dynamic import) only when window.__TAURI_INTERNALS__ exists,
// so browsers never download @tauri-apps/api. The shell (src-tauri) imports native drops itself
// and emits one `otafleet://import-result` event per file for every import it makes (drop, the
// `pick_firmware` dialog, the `import_paths` command), plus `otafleet://drop-overlay` while files
// are dragged over the window. The UI shows results from those events only, so a drop is
// imported once and shown once. Everything else goes over HTTP like in a browser.
import { invoke } from '@tauri-apps/api/core';
import { listen } from '@tauri-apps/api/event';
import type { NativeAdapter, NativeImportResult } from './backend';

export function createTauriAdapter(): NativeAdapter {
  return {
    // The dialog's results arrive as import-result events, like a drop's.
    pickFirmware: async () => {
      await invoke<NativeImportResult[]>('pick_firmware');
    },
    importPaths: (paths) => invoke<NativeImportResult[]>('import_paths', { paths }),
    async onImportResults(cb, onHover) {
      const offResult = await listen<NativeImportResult>('otafleet://import-result', (e) => cb([e.payload]));
      const offOverlay = await listen<{ active: boolean }>('otafleet://drop-overlay', (e) =>
        onHover?.(e.payload.active),
      );
      return () => {
        offResult();
        offOverlay();
      };
    },
    async notify() {
      // The shell raises desktop notifications itself from the same core events; doing it here
      // too would show each one twice.
    },
  };
}
