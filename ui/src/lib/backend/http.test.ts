import { describe, expect, test, vi } from 'vitest';
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

  test('adding a device posts its fields as JSON; a refusal keeps its code', async () => {
    const { f, calls } = fakeFetch([
      json(201, { mac: '24:0A:C4:A3:15:3C' }),
      json(409, { error: { code: 'conflict', message: 'device 24:0A:C4:A3:15:3C already exists' } }),
    ]);
    const b = new HttpBackend({ baseUrl: '', token: 'T', fetch: f });
    expect((await b.createDevice({ mac: '24:0a:c4:a3:15:3c', expect_protocol: 'native' })).mac).toBe('24:0A:C4:A3:15:3C');
    expect([calls[0].url, calls[0].init.method]).toEqual(['/api/v1/devices', 'POST']);
    expect(JSON.parse(calls[0].init.body as string)).toEqual({ mac: '24:0a:c4:a3:15:3c', expect_protocol: 'native' });
    const e = await b.createDevice({ mac: '24:0a:c4:a3:15:3c' }).catch((e) => e);
    expect([e.code, e.status]).toEqual(['conflict', 409]);
  });

  test('a dry run deployment posts JSON', async () => {
    const { f, calls } = fakeFetch([json(200, { reach: 5 })]);
    const b = new HttpBackend({ baseUrl: '', token: 'T', fetch: f });
    expect((await b.createDeployment({ firmware_id: 1, dry_run: true })).reach).toBe(5);
    expect(calls[0].init.body).toBe('{"firmware_id":1,"dry_run":true}');
  });

  test('the event stream sends the token as a header, never in the URL, and turns events into typed objects', async () => {
    const enc = new TextEncoder();
    let push!: (s: string) => void;
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        push = (s) => c.enqueue(enc.encode(s));
      },
    });
    const { f, calls } = fakeFetch([new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream' } })]);
    const b = new HttpBackend({ baseUrl: '', token: 'a b', fetch: f });
    const got: unknown[] = [];
    const states: string[] = [];
    const stop = b.subscribe((e) => got.push(e), (s) => states.push(s));
    // Events split across chunks are put back together.
    push('event: hello\ndata: {}\n\nevent: device_removed\ndata: {"type":"device_');
    push('removed","mac":"AA"}\n\nevent: update\ndata: not json\n\n: keep-alive\n\nevent: lagged\ndata: {"missed":3}\n\n');
    await vi.waitFor(() => expect(got.length).toBe(3));
    expect(calls[0].url).toBe('/api/v1/events');
    expect(calls[0].url).not.toContain('token');
    expect((calls[0].init.headers as Record<string, string>).authorization).toBe('Bearer a b');
    expect(got).toEqual([{ type: 'hello' }, { type: 'device_removed', mac: 'AA' }, { type: 'lagged' }]);
    expect(states).toEqual(['connecting', 'open']);
    stop();
  });

  test('the event stream reconnects after a drop and gives up on a refused token', async () => {
    const { f, calls } = fakeFetch([
      new Response('event: hello\ndata: {}\n\n', { status: 200 }),
      json(401, { error: { code: 'admin_token_invalid', message: 'wrong' } }),
    ]);
    const b = new HttpBackend({ baseUrl: '', token: 'T', fetch: f, sleep: async () => {} });
    const states: string[] = [];
    b.subscribe(() => {}, (s) => states.push(s));
    await vi.waitFor(() => expect(states.at(-1)).toBe('down'));
    expect(calls.length).toBe(2);
    expect(states).toEqual(['connecting', 'open', 'connecting', 'down']);
  });
});
