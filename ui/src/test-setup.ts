// jsdom has no layout: give elements a viewport height so the virtual table renders rows.
Object.defineProperty(HTMLElement.prototype, 'clientHeight', { configurable: true, get: () => 600 });

// Unmount what each test rendered (automatic only with vitest globals, which are off here).
import { cleanup } from '@testing-library/svelte';
import { afterEach } from 'vitest';
afterEach(() => cleanup());

// Who the UI speaks for is shared state (lib/access): each test starts as the owner (unknown).
import { access } from './lib/access/access.svelte';
afterEach(() => (access.me = null));
