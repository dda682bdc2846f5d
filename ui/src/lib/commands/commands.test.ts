import { fireEvent, render, screen, within } from '@testing-library/svelte';
import { describe, expect, test, vi } from 'vitest';
import { command, device, MockBackend } from '../backend/mock';
import { Fleet } from '../fleet.svelte';
import DeviceDetailView from '../../views/DeviceDetailView.svelte';
import { CommandFeed } from './commands.svelte';

const A = '24:6F:28:00:00:01';
const STOCK = '24:0A:C4:A3:15:3C';

/** A fleet whose live events are applied at once. */
async function started(backend: MockBackend) {
  const fleet = new Fleet(backend, (flush) => flush());
  await fleet.start();
  return fleet;
}

describe('the command store', () => {
  test('loads newest first, follows live states of its own device only, and never goes back from a finished state', async () => {
    const backend = new MockBackend();
    backend.devices = [device(A)];
    backend.commands = [command(1, { mac: A, state: 'done', result: 'rebooting' }), command(2, { mac: STOCK })];
    const fleet = await started(backend);
    const feed = new CommandFeed(fleet, A);
    const stop = feed.follow();
    await feed.load();
    expect(feed.rows?.map((c) => c.id)).toEqual([1]);
    expect(feed.unsupported).toBeNull();

    const made = await feed.restart();
    expect(made?.state).toBe('queued');
    expect(backend.calls).toContain(`queueCommand ${A} {"kind":"restart"}`);
    expect(feed.rows?.map((c) => c.id)).toEqual([3, 1]);

    backend.emit({ type: 'command', command: command(3, { mac: A, state: 'sent' }) });
    expect(feed.rows?.[0].state).toBe('sent');
    backend.emit({ type: 'command', command: command(3, { mac: A, state: 'done', result: 'restarting' }) });
    expect(feed.rows?.[0].state).toBe('done');
    // A late `sent` (our own request's answer, say) does not undo `done`.
    feed.apply(command(3, { mac: A, state: 'sent' }));
    expect(feed.rows?.[0].state).toBe('done');
    // Another device's command is not ours.
    backend.emit({ type: 'command', command: command(9, { mac: STOCK }) });
    expect(feed.rows?.length).toBe(2);
    stop();
    backend.emit({ type: 'command', command: command(10, { mac: A }) });
    expect(feed.rows?.length).toBe(2);
  });

  test("a stock device's refusal is kept as the reason, not as an error", async () => {
    const backend = new MockBackend();
    backend.devices = [device(STOCK, { protocol: 'arduino', auth: 'mac', enrolled: false })];
    const fleet = await started(backend);
    const feed = new CommandFeed(fleet, STOCK);
    await feed.load();
    expect(feed.unsupported).toBeNull();
    backend.commandsUnsupported[STOCK] = 'device updates with the stock Arduino HTTPUpdate client, which has no command channel';
    expect(await feed.restart()).toBeNull();
    expect(feed.unsupported).toContain('no command channel');
    expect(feed.error).toBeNull();
  });

  test('cancel applies the answer; a refusal is shown', async () => {
    const backend = new MockBackend();
    backend.devices = [device(A)];
    backend.commands = [command(1, { mac: A, state: 'sent' }), command(2, { mac: A, state: 'done' })];
    const fleet = await started(backend);
    const feed = new CommandFeed(fleet, A);
    await feed.load();
    await feed.cancel(1);
    expect(feed.rows?.find((c) => c.id === 1)?.state).toBe('cancelled');
    await feed.cancel(2);
    expect(feed.error?.code).toBe('command_finished');
  });
});

describe('the control panel on the device page', () => {
  test('Restart asks first, then the command shows up and its state follows the live events', async () => {
    const backend = new MockBackend();
    backend.devices = [device(A)];
    const fleet = await started(backend);
    render(DeviceDetailView, { fleet, mac: A, tab: 'control' });
    const panel = await screen.findByTestId('control-panel');
    await fireEvent.click(await within(panel).findByText('Restart…'));
    expect(backend.calls.some((c) => c.startsWith('queueCommand'))).toBe(false);
    expect(within(panel).getByText(/Restart this device\?/)).toBeTruthy();
    await fireEvent.click(within(panel).getByRole('button', { name: 'Restart' }));
    const row = await within(panel).findByTestId('command-row');
    expect(row.dataset.state).toBe('queued');
    backend.emit({ type: 'command', command: command(1, { mac: A, state: 'done', result: 'restarting' }) });
    await vi.waitFor(() => expect(within(panel).getByTestId('command-row').dataset.state).toBe('done'));
    expect(within(panel).getByText('restarting')).toBeTruthy();
  });

  test('a stock device shows why instead of the buttons', async () => {
    const backend = new MockBackend();
    backend.devices = [device(STOCK, { protocol: 'arduino', auth: 'mac', enrolled: false })];
    backend.commandsUnsupported[STOCK] = 'device updates with the stock Arduino HTTPUpdate client, which has no command channel';
    const fleet = await started(backend);
    render(DeviceDetailView, { fleet, mac: STOCK, tab: 'control' });
    const why = await screen.findByTestId('commands-unsupported');
    expect(why.textContent).toContain('no command channel');
    expect(screen.queryByText('Restart…')).toBeNull();
  });
});
