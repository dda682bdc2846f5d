// Picks the backend: the Tauri shell injects `window.__OTAFLEET__ = {baseUrl, token}`; a browser
// talks to the server that served the page (same origin) and asks for the token once, keeping it
// in localStorage. The desktop adapter is attached only inside Tauri.
import type { Backend } from './backend';
import { HttpBackend } from './http';

declare global {
  interface Window {
    __OTAFLEET__?: { baseUrl?: string; token?: string };
    __TAURI_INTERNALS__?: unknown;
  }
}

export const TOKEN_KEY = 'otafleet.adminToken';

export async function createBackend(w: Window = window): Promise<Backend> {
  const injected = w.__OTAFLEET__;
  const stored = safeStorage(w)?.getItem(TOKEN_KEY) ?? null;
  const backend = new HttpBackend({
    baseUrl: injected?.baseUrl ?? '',
    token: injected?.token ?? stored,
    onToken: (t) => (t ? safeStorage(w)?.setItem(TOKEN_KEY, t) : safeStorage(w)?.removeItem(TOKEN_KEY)),
  });
  if (w.__TAURI_INTERNALS__) {
    const { createTauriAdapter } = await import('./tauri');
    backend.native = createTauriAdapter();
  }
  return backend;
}

function safeStorage(w: Window): Storage | null {
  try {
    return w.localStorage;
  } catch {
    return null; // storage disabled: the token lives for this page only
  }
}

export * from './backend';
