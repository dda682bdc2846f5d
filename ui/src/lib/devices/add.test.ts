import { describe, expect, test } from 'vitest';
import { BackendError } from '../backend/backend';
import { MockBackend, device } from '../backend/mock';
import { AddDeviceForm, addedMessage, suggestProtocol } from './add.svelte';

describe('suggestProtocol', () => {
  const fleet = [
    device('AA:00:00:00:00:01', { project: 'blink', chip: 'esp32', protocol: 'arduino' }),
    device('AA:00:00:00:00:02', { project: 'blink', chip: 'esp32', protocol: 'native', expect_protocol: 'arduino' }),
    device('AA:00:00:00:00:03', { project: 'blink', chip: 'esp32c3', protocol: 'native' }),
    device('AA:00:00:00:00:04', { project: 'door', chip: 'esp32', protocol: null }),
  ];

  test("an ESP8266 can only be served by ESP8266httpUpdate", () => {
    expect(suggestProtocol('blink', 'esp8266', fleet).protocol).toBe('esp8266');
  });

  test("the project's other devices of that chip, when they agree (their expected protocol before their last one)", () => {
    expect(suggestProtocol(' blink ', 'esp32', fleet)).toEqual({ protocol: 'arduino', why: 'like the 2 other devices of blink on esp32' });
    expect(suggestProtocol('blink', 'esp32c3', fleet)).toEqual({ protocol: 'native', why: 'like the other device of blink on esp32c3' });
  });

  test('"any" when nothing fits: no project, devices that disagree, or none that told their protocol', () => {
    expect(suggestProtocol('', 'esp32', fleet)).toEqual({ protocol: 'any', why: '' });
    expect(suggestProtocol('blink', '', fleet).protocol).toBe('any'); // arduino on esp32, native on esp32c3
    expect(suggestProtocol('door', '', fleet).protocol).toBe('any');
    expect(suggestProtocol('new', 'esp32', fleet).protocol).toBe('any');
  });
});

describe('AddDeviceForm', () => {
  test('posts trimmed fields, leaves blank ones unset, and follows the suggestion until a protocol is chosen', async () => {
    const b = new MockBackend();
    const fleet = [device('AA:00:00:00:00:01', { project: 'blink', protocol: 'esp32fota' })];
    const form = new AddDeviceForm(b, () => fleet);
    form.mac = ' 24:0a:c4:a3:15:3c ';
    expect(form.body()).toEqual({ mac: '24:0a:c4:a3:15:3c', expect_protocol: 'any' });
    form.project = 'blink';
    expect(form.expect).toBe('esp32fota');
    form.name = '  bench relay ';
    form.chip = 'esp32';
    expect(form.body()).toEqual({ mac: '24:0a:c4:a3:15:3c', name: 'bench relay', project: 'blink', chip: 'esp32', expect_protocol: 'esp32fota' });
    form.chosen = 'native';
    form.project = 'other';
    expect(form.expect).toBe('native');
    const d = await form.submit();
    expect(d?.mac).toBe('24:0A:C4:A3:15:3C');
    expect(b.calls.at(-1)).toBe('createDevice {"mac":"24:0a:c4:a3:15:3c","expect_protocol":"native","name":"bench relay","project":"other","chip":"esp32"}');
    expect([form.error, form.busy]).toEqual([null, false]);
  });

  test('does not post without a MAC', async () => {
    const b = new MockBackend();
    const form = new AddDeviceForm(b);
    form.mac = '   ';
    expect(await form.submit()).toBeNull();
    expect(b.calls).toEqual([]);
  });

  test("keeps the server's refusal verbatim and says which field it is about, by its code", async () => {
    const b = new MockBackend();
    const form = new AddDeviceForm(b);
    form.mac = 'ff:ff:ff:ff:ff:ff';
    b.createError = new BackendError('invalid_mac', 'FF:FF:FF:FF:FF:FF is the broadcast address; …', 422);
    expect(await form.submit()).toBeNull();
    expect(form.error).toEqual({ code: 'invalid_mac', message: 'FF:FF:FF:FF:FF:FF is the broadcast address; …' });
    expect(form.invalid).toBe('mac');
    b.createError = new BackendError('invalid_project', "'a b' is not a usable project name", 422);
    await form.submit();
    expect(form.invalid).toBe('project');
    form.edited('name'); // the project is still what was refused
    expect(form.invalid).toBe('project');
    form.edited('project');
    expect(form.error).toBeNull();
    b.createError = new BackendError('admin_token_invalid', 'the admin token is wrong', 401);
    await form.submit();
    expect([form.error?.code, form.invalid]).toEqual(['admin_token_invalid', null]);
    form.edited('name'); // about no field in particular: any edit retires it
    expect(form.error).toBeNull();
    b.createError = null;
    expect(await form.submit()).not.toBeNull();
    expect(form.error).toBeNull();
  });
});

describe('addedMessage', () => {
  test('names the device and who may serve it', () => {
    expect(addedMessage(device('24:0A:C4:A3:15:3C', { name: 'relay', expect_protocol: 'native' }))).toBe(
      'Added relay (24:0A:C4:A3:15:3C): only native may serve it once it checks in.',
    );
    expect(addedMessage(device('24:0A:C4:A3:15:3C', { expect_protocol: 'any' }))).toBe(
      'Added 24:0A:C4:A3:15:3C: any protocol may serve it once it checks in.',
    );
    expect(addedMessage(device('24:0A:C4:A3:15:3C'))).toBe('Added 24:0A:C4:A3:15:3C: the first protocol that checks in claims it.');
  });
});
