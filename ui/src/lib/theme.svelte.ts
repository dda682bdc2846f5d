// Light / dark / follow the system. The choice is kept in localStorage; "system" defers to
// prefers-color-scheme through CSS (no data-theme attribute).
export type ThemeMode = 'system' | 'light' | 'dark';
const KEY = 'otafleet.theme';

export class Theme {
  mode = $state<ThemeMode>('system');

  constructor(private readonly root: HTMLElement = document.documentElement) {
    const saved = readSaved();
    if (saved) this.mode = saved;
    this.#apply();
  }

  cycle() {
    this.mode = this.mode === 'system' ? 'light' : this.mode === 'light' ? 'dark' : 'system';
    try {
      localStorage.setItem(KEY, this.mode);
    } catch {
      /* not kept: fine */
    }
    this.#apply();
  }

  #apply() {
    if (this.mode === 'system') delete this.root.dataset.theme;
    else this.root.dataset.theme = this.mode;
  }
}

function readSaved(): ThemeMode | null {
  try {
    const v = localStorage.getItem(KEY);
    return v === 'light' || v === 'dark' || v === 'system' ? v : null;
  } catch {
    return null;
  }
}
