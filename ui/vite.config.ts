import { defineConfig } from 'vitest/config';
import { svelte } from '@sveltejs/vite-plugin-svelte';

export default defineConfig({
  plugins: [svelte()],
  // Asset URLs from the root (/assets/…). Both places that load this build serve it at their
  // root: `otafleet serve` at `/`, the desktop window at tauri://localhost/ (frontendDist is
  // ui/dist). Relative URLs ('./') would resolve against the page's path, so a reload of a
  // client route two levels deep (/devices/<mac>) would ask for /devices/assets/… and get
  // index.html back: a blank page.
  base: '/',
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022' },
  // Component tests need Svelte's browser build, not its server build.
  resolve: process.env.VITEST ? { conditions: ['browser'] } : undefined,
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.ts'],
    setupFiles: ['src/test-setup.ts'],
  },
});
