// jsdom has no layout: give elements a viewport height so the virtual table renders rows.
Object.defineProperty(HTMLElement.prototype, 'clientHeight', { configurable: true, get: () => 600 });
