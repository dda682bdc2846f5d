import { fireEvent, render, screen, within } from '@testing-library/svelte';
import { describe, expect, test, vi } from 'vitest';
import { command, device, MockBackend, project } from '../backend/mock';
import { Fleet } from '../fleet.svelte';
import DeviceDetailView from '../../views/DeviceDetailView.svelte';
import DevicesView from '../../views/DevicesView.svelte';
import { BulkRun, customCommand, sharedCommands } from './commands.svelte';

const A = '24:6F:28:00:00:01';
const B = '24:6F:28:00:00:02';
const STOCK = '24:0A:C4:A3:15:3C';
const WHY = 'device updates with the stock Arduino HTTPUpdate client, which has no command channel';

const blink = { key: 'blink', label: 'Blink', payload: { times: 3 }, confirmation: null };
const wipe = { key: 'wipe', label: 'Wipe data', payload: null, confirmation: 'This erases the stored readings.' };

async function started(backend: MockBackend) {
  const fleet = new Fleet(backend, (flush) => flush());
  await fleet.start();
  return fleet;
}

describe('project commands for a selection', () => {
  const projects = [
    project('climate', { commands: [blink, wipe] }),
    project('porch', { commands: [{ ...blink, label: 'Flash' }] }),
    project('bare'),
  ];
  test('one project: its commands; none: says so', () => {
    expect(sharedCommands(['climate'], projects).commands.map((c) => c.key)).toEqual(['blink', 'wipe']);
    expect(sharedCommands(['bare'], projects)).toEqual({ commands: [], why: 'Project bare defines no commands.' });
    expect(sharedCommands([null], projects).why).toMatch(/no project/);
  });
  test('several projects: only keys every project defines, or why none', () => {
    expect(sharedCommands(['climate', 'porch', 'climate'], projects).commands).toEqual([blink]);
    expect(sharedCommands(['climate', 'bare'], projects)).toEqual({
      commands: [],
      why: 'No command key is defined in every one of the projects bare, climate.',
    });
    expect(sharedCommands(['climate', null, undefined], projects).why).toBe('2 of the selected devices have no project, so no project command fits them all.');
  });
  test('a project command goes out as kind custom with its key and payload', () => {
    expect(customCommand(blink)).toEqual({ kind: 'custom', key: 'blink', payload: { times: 3 } });
    expect(customCommand(wipe)).toEqual({ kind: 'custom', key: 'wipe', payload: null });
  });
});

describe('the bulk run', () => {
  test('sends once with the bulk route, keeps each outcome and follows the live states', async () => {
    const backend = new MockBackend();
    backend.devices = [device(A), device(STOCK, { protocol: 'arduino', auth: 'mac', enrolled: false })];
    backend.commandsUnsupported[STOCK] = WHY;
    const fleet = await started(backend);
    const bulk = new BulkRun(fleet);
    const stop = bulk.follow();
    bulk.ask({ title: 'Restart', verb: 'Restart', command: { kind: 'restart' } }, [A, STOCK]);
    await bulk.run();
    expect(backend.calls).toContain(`bulkCommand {"macs":["${A}","${STOCK}"],"kind":"restart","key":null,"payload":null}`);
    expect(bulk.counts).toEqual({ queued: 1, refused: 1 });
    expect(bulk.results?.[1].error?.code).toBe('commands_unsupported');
    const id = bulk.results![0].command!.id;
    backend.emit({ type: 'command', command: command(id, { mac: A, state: 'done', result: 'restarting' }) });
    expect(bulk.results?.[0].command?.state).toBe('done');
    bulk.apply(command(id, { mac: A, state: 'sent' }));
    expect(bulk.results?.[0].command?.state).toBe('done');
    stop();
  });
});

describe('the control panel with project commands', () => {
  test('runs a command at once, and asks first when it has a confirmation text', async () => {
    const backend = new MockBackend();
    backend.devices = [device(A, { project: 'climate' })];
    backend.projects = [project('climate', { commands: [blink, wipe] })];
    const fleet = await started(backend);
    render(DeviceDetailView, { fleet, mac: A, tab: 'control' });
    const panel = await screen.findByTestId('control-panel');
    const own = await within(panel).findByTestId('project-commands');
    await fireEvent.click(within(own).getByRole('button', { name: 'Blink' }));
    await vi.waitFor(() => expect(backend.calls).toContain(`queueCommand ${A} {"kind":"custom","key":"blink","payload":{"times":3}}`));

    await fireEvent.click(within(own).getByRole('button', { name: 'Wipe data…' }));
    const dialog = await screen.findByRole('dialog');
    expect(within(dialog).getByText('This erases the stored readings.')).toBeTruthy();
    expect(backend.calls.some((c) => c.includes('"key":"wipe"'))).toBe(false);
    await fireEvent.click(within(dialog).getByRole('button', { name: 'Wipe data' }));
    await vi.waitFor(() => expect(backend.calls).toContain(`queueCommand ${A} {"kind":"custom","key":"wipe","payload":null}`));
    expect(screen.queryByRole('dialog')).toBeNull();
    await vi.waitFor(() => expect(within(panel).getAllByTestId('command-row').length).toBe(2));

    await fireEvent.click(within(panel).getByRole('button', { name: 'Push config' }));
    await vi.waitFor(() => expect(backend.calls).toContain(`queueCommand ${A} {"kind":"config"}`));
    await fireEvent.click(within(panel).getByRole('button', { name: 'Logs on' }));
    await vi.waitFor(() => expect(backend.calls).toContain(`queueCommand ${A} {"kind":"log","payload":{"on":true}}`));
  });

  test('a project without commands says where to add them, and a new command appears live', async () => {
    const backend = new MockBackend();
    backend.devices = [device(A, { project: 'climate' })];
    backend.projects = [project('climate')];
    const fleet = await started(backend);
    render(DeviceDetailView, { fleet, mac: A, tab: 'control' });
    const note = await screen.findByTestId('no-project-commands');
    expect(note.textContent).toContain('Project climate defines no commands.');
    expect((within(note).getByRole('link', { name: 'Projects' }) as HTMLAnchorElement).getAttribute('href')).toBe('/projects');
    backend.emit({ type: 'project', project: project('climate', { commands: [blink] }) });
    expect(await screen.findByRole('button', { name: 'Blink' })).toBeTruthy();
  });
});

describe('bulk actions in the device table', () => {
  test('Restart… names how many, uses the bulk route and shows each outcome', async () => {
    const backend = new MockBackend();
    backend.devices = [device(A, { name: 'kitchen' }), device(B), device(STOCK, { protocol: 'arduino', auth: 'mac', enrolled: false })];
    backend.commandsUnsupported[STOCK] = WHY;
    const fleet = await started(backend);
    render(DevicesView, { fleet, baseUrl: 'http://127.0.0.1:8080' });
    fleet.devices.toggle(A);
    fleet.devices.toggle(STOCK);
    const bar = await screen.findByTestId('bulk-commands');
    await fireEvent.click(within(bar.parentElement!).getByRole('button', { name: 'Restart…' }));
    const dialog = await screen.findByRole('dialog');
    expect(within(dialog).getByText(/Restart 2 devices\?/)).toBeTruthy();
    expect(backend.calls.some((c) => c.startsWith('bulkCommand'))).toBe(false);
    await fireEvent.click(within(dialog).getByTestId('bulk-confirm'));
    await within(dialog).findByTestId('bulk-summary');
    expect(within(dialog).getByTestId('bulk-summary').textContent).toMatch(/1 queued · 1 not sent/);
    const rows = within(dialog).getAllByTestId('bulk-result');
    expect(rows.map((r) => r.dataset.state)).toEqual(['queued', 'refused']);
    expect(rows[0].textContent).toContain('kitchen');
    expect(rows[1].textContent).toContain('no command channel');
    const id = backend.commands.find((c) => c.mac === A)!.id;
    backend.emit({ type: 'command', command: command(id, { mac: A, state: 'done', result: 'restarting' }) });
    await vi.waitFor(() => expect(within(dialog).getAllByTestId('bulk-result')[0].dataset.state).toBe('done'));
  });

  test('Run command… offers only the keys every selected project defines, or says why none', async () => {
    const backend = new MockBackend();
    backend.devices = [device(A, { project: 'climate' }), device(B, { project: 'porch' })];
    backend.projects = [project('climate', { commands: [blink, wipe] }), project('porch', { commands: [blink] })];
    const fleet = await started(backend);
    render(DevicesView, { fleet, baseUrl: 'http://127.0.0.1:8080' });
    fleet.devices.toggle(A);
    fleet.devices.toggle(B);
    const pick = (await screen.findByLabelText('Project command')) as HTMLSelectElement;
    expect([...pick.options].map((o) => o.value)).toEqual(['', 'blink']);
    await fireEvent.change(pick, { target: { value: 'blink' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Run command…' }));
    const dialog = await screen.findByRole('dialog');
    expect(within(dialog).getByText(/Blink 2 devices\?/)).toBeTruthy();
    await fireEvent.click(within(dialog).getByTestId('bulk-confirm'));
    await within(dialog).findByTestId('bulk-summary');
    expect(backend.calls).toContain(`bulkCommand {"macs":["${A}","${B}"],"kind":"custom","key":"blink","payload":{"times":3}}`);

    backend.emit({ type: 'project', project: project('porch', { commands: [] }) });
    expect((await screen.findByTestId('bulk-no-commands')).textContent).toBe('No command key is defined in every one of the projects climate, porch.');
  });
});
