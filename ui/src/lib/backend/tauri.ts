// The desktop-only adapter. Loaded (dynamic import) only when window.__TAURI_INTERNALS__ exists,
// so browsers never download @tauri-apps/api. The shell (src-tauri) provides the commands
// `import_paths` ({paths}) and `pick_firmware` (opens the OS dialog, imports what was chosen); both
// answer NativeImportResult[]. Everything else goes over HTTP like in a browser.
import { invoke } from '@tauri-apps/api/core';
import { getCurrentWebview } from '@tauri-apps/api/webview';
import type { NativeAdapter, NativeImportResult } from './backend';

export function createTauriAdapter(): NativeAdapter {
  return {
    pickFirmware: () => invoke<NativeImportResult[]>('pick_firmware'),
    importPaths: (paths) => invoke<NativeImportResult[]>('import_paths', { paths }),
    async onFileDrop(cb, onHover) {
      return getCurrentWebview().onDragDropEvent((ev) => {
        const p = ev.payload;
        if (p.type === 'drop') {
          onHover?.(false);
          if (p.paths.length) cb(p.paths);
        } else if (p.type === 'enter' || p.type === 'over') onHover?.(true);
        else onHover?.(false);
      });
    },
    async notify(title, body) {
      // Notifications go through the shell (it owns the notification plugin and permissions);
      // a shell without the command simply shows none.
      await invoke('notify', { title, body }).catch(() => undefined);
    },
  };
}
