// Poll until a value equals what is expected: the condition-based wait the tests use instead of
// sleeps. Gives up after `timeout` ms with the last value seen (the limit is a safety net for a
// broken build, not a performance assertion).
import assert from 'node:assert/strict';

export async function expect(read, want, { timeout = 15000, interval = 50 } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    last = await read();
    if (last === want) return last;
    if (Date.now() > deadline) assert.fail(`waited for ${JSON.stringify(want)}, last saw ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}
