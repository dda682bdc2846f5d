import { describe, expect, test } from 'vitest';
import { BackendError, isAuthError } from './backend';
import { HttpBackend } from './http';

type Call = { url: string; init: RequestInit };

function fakeFetch(responses: Response[] | (() => never)) {
  const calls: Call[] = [];
  const f = (async (url: string, init: RequestInit) => {
    calls.push({ url, init });
    if (typeof responses === 'function') return responses();
    return responses.shift()!;
  }) as unknown as typeof fetch;
  return { f, calls };
}

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

describe('HttpBackend', () => {
  test('sends the admin token as a Bearer header', async () => {
    const { f, calls } = fakeFetch([json(200, [])]);
    const b = new HttpBackend({ baseUrl: 'http://h:1/', token: 'T', fetch: f });
    await b.listDevices();
    expect(calls[0].url).toBe('http://h:1/api/v1/devices');
    expect((calls[0].init.headers as Record<string, string>).authorization).toBe('Bearer T');
  });

  test('errors carry the server\'s code and message, untouched', async () => {
    const { f } = fakeFetch([json(401, { error: { code: 'admin_token_invalid', message: 'the admin token is wrong; …' } })]);
    const b = new HttpBackend({ baseUrl: '', token: 'x', fetch: f });
    const e = await b.listFirmware().catch((e) => e);
    expect(e).toBeInstanceOf(BackendError);
    expect([e.code, e.message, e.status]).toEqual(['admin_token_invalid', 'the admin token is wrong; …', 401]);
    expect(isAuthError(e)).toBe(true);
  });

  test('a server that cannot be reached is a "network" error that says where it looked', async () => {
    const { f } = fakeFetch(() => {
      throw new TypeError('Failed to fetch');
    });
    const e = await new HttpBackend({ baseUrl: 'http://10.0.0.2:8470', fetch: f }).settings().catch((e) => e);
    expect(e.code).toBe('network');
    expect(e.message).toContain('http://10.0.0.2:8470');
  });

  test('an upload is multipart with a "file" part; 201 means new, 200 means already there', async () => {
    const fw = { id: 3 };
    const { f, calls } = fakeFetch([json(201, fw), json(200, fw)]);
    const b = new HttpBackend({ baseUrl: '', token: 'T', fetch: f });
    const file = new File([new Uint8Array([0xe9])], 'app.bin');
    expect((await b.uploadFirmware(file)).created).toBe(true);
    expect((await b.uploadFirmware(file)).created).toBe(false);
    const body = calls[0].init.body as FormData;
    expect((body.get('file') as File).name).toBe('app.bin');
    // The browser sets the multipart boundary itself: no content-type from us.
    expect((calls[0].init.headers as Record<string, string>)['content-type']).toBeUndefined();
  });

  test('open enrolment is changed with a PATCH of the settings', async () => {
    const { f, calls } = fakeFetch([json(200, { open_enrolment: false })]);
    const b = new HttpBackend({ baseUrl: '', token: 'T', fetch: f });
    expect((await b.patchSettings({ open_enrolment: false })).open_enrolment).toBe(false);
    expect(calls[0].url).toBe('/api/v1/settings');
    expect(calls[0].init.method).toBe('PATCH');
    expect(JSON.parse(calls[0].init.body as string)).toEqual({ open_enrolment: false });
  });

  test('a dry run deployment posts JSON', async () => {
    const { f, calls } = fakeFetch([json(200, { reach: 5 })]);
    const b = new HttpBackend({ baseUrl: '', token: 'T', fetch: f });
    expect((await b.createDeployment({ firmware_id: 1, dry_run: true })).reach).toBe(5);
    expect(calls[0].init.body).toBe('{"firmware_id":1,"dry_run":true}');
  });

  test('the event stream gets the token as a query parameter and turns events into typed objects', () => {
    const made: FakeES[] = [];
    class FakeES {
      static CLOSED = 2;
      readyState = 1;
      listeners = new Map<string, (m: MessageEvent) => void>();
      onerror: (() => void) | null = null;
      constructor(readonly url: string) {
        made.push(this);
      }
      addEventListener(name: string, fn: (m: MessageEvent) => void) {
        this.listeners.set(name, fn);
      }
      close() {}
      fire(name: string, data: string) {
        this.listeners.get(name)!({ data } as MessageEvent);
      }
    }
    const b = new HttpBackend({ baseUrl: '', token: 'a b', EventSource: FakeES as unknown as typeof EventSource });
    const got: unknown[] = [];
    const states: string[] = [];
    b.subscribe((e) => got.push(e), (s) => states.push(s));
    expect(made[0].url).toBe('/api/v1/events?token=a%20b');
    made[0].fire('hello', '{}');
    made[0].fire('device_removed', '{"type":"device_removed","mac":"AA"}');
    made[0].fire('update', 'not json');
    made[0].fire('lagged', '{"missed":3}');
    expect(got).toEqual([{ type: 'hello' }, { type: 'device_removed', mac: 'AA' }, { type: 'lagged' }]);
    expect(states).toEqual(['connecting', 'open']);
  });
});
