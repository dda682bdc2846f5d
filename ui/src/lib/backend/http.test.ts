import { describe, expect, test, vi } from 'vitest';
import { BackendError, isAuthError } from './backend';
import { HttpBackend } from './http';

/** A fetch that records the Requests openapi-fetch makes and answers from a list. */
function fakeFetch(responses: Response[] | (() => never)) {
  const calls: Request[] = [];
  const f = (async (req: Request) => {
    calls.push(req);
    if (typeof responses === 'function') return responses();
    return responses.shift()!;
  }) as unknown as typeof fetch;
  return { f, calls };
}

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
/** Where a same-origin request goes in the test page (jsdom's location). */
const origin = location.origin;

describe('HttpBackend', () => {
  test('sends the admin token as a Bearer header', async () => {
    const { f, calls } = fakeFetch([json(200, [])]);
    const b = new HttpBackend({ baseUrl: 'http://h:1/', token: 'T', fetch: f });
    await b.listDevices();
    expect(calls[0].url).toBe('http://h:1/api/v1/devices');
    expect(calls[0].method).toBe('GET');
    expect(calls[0].headers.get('authorization')).toBe('Bearer T');
  });

  test('the device list follows the Link header through every page', async () => {
    const dev = (mac: string) => ({ mac, tags: [] });
    const page = (rows: unknown[], next?: string) =>
      new Response(JSON.stringify(rows), {
        status: 200,
        headers: { 'content-type': 'application/json', ...(next ? { link: `<${next}>; rel="next"` } : {}) },
      });
    const { f, calls } = fakeFetch([
      page([dev('24:0A:C4:00:00:01'), dev('24:0A:C4:00:00:02')], '/api/v1/devices?limit=2&after=24:0A:C4:00:00:02'),
      page([dev('24:0A:C4:00:00:03'), { mac: null, key: '_arduino._tcp/lamp' }]),
    ]);
    const list = await new HttpBackend({ baseUrl: 'http://h:1', token: 'T', fetch: f }).listDevices();
    expect(list.devices.map((d) => d.mac)).toEqual(['24:0A:C4:00:00:01', '24:0A:C4:00:00:02', '24:0A:C4:00:00:03']);
    expect(list.hosts.map((h) => h.key)).toEqual(['_arduino._tcp/lamp']);
    expect(calls.map((c) => c.url)).toEqual([
      'http://h:1/api/v1/devices',
      'http://h:1/api/v1/devices?limit=2&after=24%3A0A%3AC4%3A00%3A00%3A02',
    ]);
  });

  test('path parameters are encoded; no token, no header', async () => {
    const { f, calls } = fakeFetch([json(200, { mac: '24:0A:C4:00:00:01' }), new Response(null, { status: 204 })]);
    const b = new HttpBackend({ baseUrl: '', fetch: f });
    expect((await b.getDevice('24:0A:C4:00:00:01')).mac).toBe('24:0A:C4:00:00:01');
    expect(calls[0].url).toBe(`${origin}/api/v1/devices/24%3A0A%3AC4%3A00%3A00%3A01`);
    expect(calls[0].headers.get('authorization')).toBeNull();
    await b.deleteFirmware(7);
    expect([calls[1].method, calls[1].url]).toEqual(['DELETE', `${origin}/api/v1/firmware/7`]);
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
    expect(e).toBeInstanceOf(BackendError);
    expect(e.code).toBe('network');
    expect(e.message).toContain('http://10.0.0.2:8470');
  });

  test('an answer that is not the server\'s JSON is a "bad_response" that names the request', async () => {
    const { f } = fakeFetch([
      new Response('<html>proxy error</html>', { status: 502, statusText: 'Bad Gateway' }),
      new Response('<html>a login page</html>', { status: 200, headers: { 'content-type': 'text/html' } }),
      new Response('', { status: 200, headers: { 'content-length': '0' } }),
    ]);
    const b = new HttpBackend({ baseUrl: 'http://h:1', token: 'T', fetch: f });
    const gateway = await b.listDeployments().catch((e) => e);
    expect([gateway.code, gateway.status, gateway.message]).toEqual([
      'bad_response', 502, 'The server answered 502 Bad Gateway to GET /api/v1/deployments.',
    ]);
    const html = await b.getDevice('AA').catch((e) => e);
    expect([html.code, html.message]).toEqual(['bad_response', "The server's answer to GET /api/v1/devices/AA was not JSON."]);
    const empty = await b.settings().catch((e) => e);
    expect(empty.code).toBe('bad_response');
  });

  test('an upload is multipart with a "file" part; 201 means new, 200 means already there', async () => {
    const fw = { id: 3 };
    const { f, calls } = fakeFetch([json(201, fw), json(200, fw)]);
    const b = new HttpBackend({ baseUrl: '', token: 'T', fetch: f });
    const file = new File([new Uint8Array([0xe9])], 'app.bin');
    expect((await b.uploadFirmware(file)).created).toBe(true);
    expect((await b.uploadFirmware(file)).created).toBe(false);
    expect([calls[0].method, calls[0].url]).toEqual(['POST', `${origin}/api/v1/firmware`]);
    // The multipart boundary is set by fetch itself, not a JSON content type by us.
    expect(calls[0].headers.get('content-type')).toMatch(/^multipart\/form-data; boundary=/);
    // (The test environment hands jsdom's File to Node's Request as a bare Blob, name and bytes
    // lost on the way, so only the part is checked here; the browser e2e tests upload real files.)
    expect((await calls[0].formData()).has('file')).toBe(true);
  });

  test('the audit CSV: the filters in the query, the token in the header (never the URL), the CSV text back', async () => {
    const text = 'id,at,actor,action,method,path,target,status,outcome,detail\r\n2,2026-12-06T03:45:18.000Z,admin,patch_device,PATCH,/api/v1/devices/AA,mac=AA,422,refused,\r\n';
    const { f, calls } = fakeFetch([new Response(text, { status: 200, headers: { 'content-type': 'text/csv; charset=utf-8' } })]);
    const b = new HttpBackend({ baseUrl: 'http://h:1', token: 'T', fetch: f });
    const blob = await b.auditCsv({ outcome: 'refused', action: 'patch_device', limit: 500 });
    expect(await blob.text()).toBe(text);
    const url = new URL(calls[0].url);
    expect([calls[0].method, url.origin + url.pathname]).toEqual(['GET', 'http://h:1/api/v1/audit.csv']);
    expect(Object.fromEntries(url.searchParams)).toEqual({ outcome: 'refused', action: 'patch_device', limit: '500' });
    expect(calls[0].headers.get('authorization')).toBe('Bearer T');
    expect(calls[0].headers.get('accept')).toBe('text/csv');
    expect(url.search).not.toMatch(/token|Bearer/i);
  });

  test('CSV is accepted only where it was asked for: the audit CSV route still refuses HTML, and JSON routes still refuse CSV', async () => {
    const csv = () => new Response('a,b\r\n', { status: 200, headers: { 'content-type': 'text/csv' } });
    const { f } = fakeFetch([
      new Response('<html>a login page</html>', { status: 200, headers: { 'content-type': 'text/html' } }),
      csv(),
    ]);
    const b = new HttpBackend({ baseUrl: 'http://h:1', token: 'T', fetch: f });
    const html = await b.auditCsv().catch((e) => e);
    expect([html.code, html.message]).toEqual(['bad_response', "The server's answer to GET /api/v1/audit.csv was not JSON."]);
    const list = await b.listAudit().catch((e) => e);
    expect([list.code, list.message]).toEqual(['bad_response', "The server's answer to GET /api/v1/audit was not JSON."]);
  });

  test('open enrolment is changed with a PATCH of the settings', async () => {
    const { f, calls } = fakeFetch([json(200, { open_enrolment: false })]);
    const b = new HttpBackend({ baseUrl: '', token: 'T', fetch: f });
    expect((await b.patchSettings({ open_enrolment: false })).open_enrolment).toBe(false);
    expect(calls[0].url).toBe(`${origin}/api/v1/settings`);
    expect(calls[0].method).toBe('PATCH');
    expect(calls[0].headers.get('content-type')).toBe('application/json');
    expect(await calls[0].json()).toEqual({ open_enrolment: false });
  });

  test('adding a device posts its fields as JSON; a refusal keeps its code', async () => {
    const { f, calls } = fakeFetch([
      json(201, { mac: '24:0A:C4:A3:15:3C' }),
      json(409, { error: { code: 'conflict', message: 'device 24:0A:C4:A3:15:3C already exists' } }),
    ]);
    const b = new HttpBackend({ baseUrl: '', token: 'T', fetch: f });
    expect((await b.createDevice({ mac: '24:0a:c4:a3:15:3c', expect_protocol: 'native' })).mac).toBe('24:0A:C4:A3:15:3C');
    expect([calls[0].url, calls[0].method]).toEqual([`${origin}/api/v1/devices`, 'POST']);
    expect(await calls[0].json()).toEqual({ mac: '24:0a:c4:a3:15:3c', expect_protocol: 'native' });
    const e = await b.createDevice({ mac: '24:0a:c4:a3:15:3c' }).catch((e) => e);
    expect([e.code, e.status, e.message]).toEqual(['conflict', 409, 'device 24:0A:C4:A3:15:3C already exists']);
  });

  test('adding an ESP Admin device posts to its own route and answers the id, the key and credentials.h', async () => {
    const added = { device: { mac: '02:CF:46:6E:AC:B3' }, id: '1e0f438a7459a19bd5d8d637', api_key: 'FROjei3ShFYoxNogOEasKNNGA821Na', credentials_h: '#ifndef H_CREDENTIALS\n' };
    const { f, calls } = fakeFetch([
      json(201, added),
      json(422, { error: { code: 'invalid_name', message: 'a device name has at most 64 characters and no control characters' } }),
    ]);
    const b = new HttpBackend({ baseUrl: '', token: 'T', fetch: f });
    expect(await b.createEspAdminDevice({ name: 'greenhouse' })).toEqual(added);
    expect([calls[0].url, calls[0].method, calls[0].headers.get('authorization')]).toEqual([`${origin}/api/v1/esp-admin/devices`, 'POST', 'Bearer T']);
    expect(await calls[0].json()).toEqual({ name: 'greenhouse' });
    const e = await b.createEspAdminDevice({ name: 'x'.repeat(65) }).catch((e) => e);
    expect([e.code, e.status]).toEqual(['invalid_name', 422]);
  });

  test('a bulk command posts the MACs and the command once and answers each device\'s outcome', async () => {
    const out = [
      { mac: 'A', command: { id: 1 }, error: null },
      { mac: 'B', command: null, error: { code: 'commands_unsupported', message: 'no command channel' } },
    ];
    const { f, calls } = fakeFetch([json(200, out)]);
    const b = new HttpBackend({ baseUrl: '', token: 'T', fetch: f });
    const r = await b.bulkCommand({ macs: ['A', 'B'], kind: 'custom', key: 'blink', payload: { times: 3 } });
    expect(r[1].error?.code).toBe('commands_unsupported');
    expect([calls[0].url, calls[0].method]).toEqual([`${origin}/api/v1/commands`, 'POST']);
    expect(await calls[0].json()).toEqual({ macs: ['A', 'B'], kind: 'custom', key: 'blink', payload: { times: 3 } });
  });

  test('a dry run asks with ?dry_run=true and answers the plan; creating answers the deployment', async () => {
    const { f, calls } = fakeFetch([json(200, { reach: 5, offered: 5, groups: [] }), json(201, { id: 9, status: 'active' })]);
    const b = new HttpBackend({ baseUrl: '', token: 'T', fetch: f });
    expect((await b.planDeployment({ firmware_id: 1 })).reach).toBe(5);
    expect(calls[0].url).toBe(`${origin}/api/v1/deployments?dry_run=true`);
    expect(await calls[0].text()).toBe('{"firmware_id":1}');
    expect((await b.createDeployment({ firmware_id: 1 })).id).toBe(9);
    expect(calls[1].url).toBe(`${origin}/api/v1/deployments`);
  });

  test('the device list keeps mDNS services that told no MAC apart from the devices', async () => {
    const host = (name: string) => ({ key: `_arduino._tcp/${name}`, mac: null, hostname: `${name}.local`, online: true, source: 'mdns' });
    const { f } = fakeFetch([json(200, [{ mac: 'AA:00:00:00:00:01', online: true }, host('bench'), host('relay')])]);
    const list = await new HttpBackend({ baseUrl: '', token: 'T', fetch: f }).listDevices();
    expect(list.devices.map((d) => d.mac)).toEqual(['AA:00:00:00:00:01']);
    expect(list.hosts.map((h) => [h.key, h.mac])).toEqual([['_arduino._tcp/bench', null], ['_arduino._tcp/relay', null]]);
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
    // Events split across chunks are put back together; an mDNS host event is delivered too.
    push('event: hello\ndata: {}\n\nevent: device_removed\ndata: {"type":"device_');
    push('removed","mac":"AA"}\n\nevent: update\ndata: not json\n\n: keep-alive\n\nevent: lagged\ndata: {"missed":3}\n\n');
    push('event: mdns_host\ndata: {"type":"mdns_host","host":{"key":"k"}}\n\n');
    await vi.waitFor(() => expect(got.length).toBe(4));
    expect(calls[0].url).toBe(`${origin}/api/v1/events`);
    expect(calls[0].url).not.toContain('token');
    expect(calls[0].headers.get('authorization')).toBe('Bearer a b');
    expect(calls[0].headers.get('accept')).toBe('text/event-stream');
    expect(got).toEqual([
      { type: 'hello' }, { type: 'device_removed', mac: 'AA' }, { type: 'lagged' }, { type: 'mdns_host', host: { key: 'k' } },
    ]);
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

  test('a server that is down is retried with a growing wait, from the first one again once it answers', async () => {
    let n = 0;
    const f = (async () => {
      n++;
      if (n <= 3) throw new TypeError('Failed to fetch');
      if (n === 4) return new Response('event: hello\ndata: {}\n\n', { status: 200 });
      throw new TypeError('Failed to fetch');
    }) as unknown as typeof fetch;
    const waits: number[] = [];
    let stop = () => {};
    // The sixth wait ends the test (the loop would go on for ever with waits that take no time).
    const sleep = async (ms: number) => void (waits.push(ms) === 6 && stop());
    const b = new HttpBackend({ baseUrl: '', token: 'T', fetch: f, sleep });
    stop = b.subscribe(() => {});
    await vi.waitFor(() => expect(waits.length).toBe(6));
    expect(waits).toEqual([1000, 2000, 4000, 1000, 2000, 4000]);
  });
});
