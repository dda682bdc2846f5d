import { fireEvent, render, screen, within } from '@testing-library/svelte';
import { describe, expect, test, vi } from 'vitest';
import { device, MockBackend, report } from '../backend/mock';
import { Fleet } from '../fleet.svelte';
import ActivityView from '../../views/ActivityView.svelte';
import DeviceDetailView from '../../views/DeviceDetailView.svelte';

const A = '24:6F:28:00:00:01';
const B = '24:6F:28:00:00:02';

/** A fleet whose live events are applied at once. */
async function started(backend: MockBackend) {
  const fleet = new Fleet(backend, (flush) => flush());
  await fleet.start();
  return fleet;
}

describe('device reports', () => {
  test('the device page lists its own reports newest first, type labelled, body expandable; a live report is added without a reload', async () => {
    const backend = new MockBackend();
    backend.devices = [device(A), device(B)];
    backend.reports = [
      report(1, { mac: A, type: 'warn', subject: 'low heap', body: 'free 12 KiB' }),
      report(2, { mac: A, type: 'success', subject: 'booted' }),
      report(3, { mac: B, type: 'error', subject: 'not mine' }),
    ];
    const fleet = await started(backend);
    render(DeviceDetailView, { fleet, mac: A, tab: 'reports' });
    const rows = await screen.findAllByTestId('report-row');
    expect(rows.length).toBe(2);
    expect(within(rows[0]).getByText('booted')).toBeTruthy();
    expect(within(rows[1]).getByText('warning').className).toContain('warn');
    expect(within(rows[1]).getByText('low heap').tagName).toBe('SUMMARY');
    expect(within(rows[1]).getByText('free 12 KiB')).toBeTruthy();
    expect(screen.queryByText('not mine')).toBeNull();
    expect(backend.calls).toContain(`listReports {"mac":"${A}","limit":100}`);

    const loads = backend.calls.filter((c) => c.startsWith('listReports')).length;
    backend.emit({ type: 'report', report: report(4, { mac: A, type: 'error', subject: 'sensor lost' }) });
    backend.emit({ type: 'report', report: report(5, { mac: B, type: 'info', subject: 'other device' }) });
    await screen.findByText('sensor lost');
    const now = screen.getAllByTestId('report-row');
    expect(now.length).toBe(3);
    expect(within(now[0]).getByText('sensor lost')).toBeTruthy();
    expect(screen.queryByText('other device')).toBeNull();
    expect(backend.calls.filter((c) => c.startsWith('listReports')).length).toBe(loads);
  });

  test('the Activity page lists reports of all devices, filters them by type, and adds a live one', async () => {
    const backend = new MockBackend();
    backend.reports = [
      report(1, { mac: A, type: 'warn', subject: 'low heap' }),
      report(2, { mac: B, type: 'error', subject: 'sensor lost' }),
    ];
    const fleet = await started(backend);
    render(ActivityView, { fleet });
    expect((await screen.findAllByTestId('report-row')).length).toBe(2);
    expect(screen.getByText(B)).toBeTruthy();

    backend.emit({ type: 'report', report: report(3, { mac: A, type: 'success', subject: 'updated' }) });
    await screen.findByText('updated');
    expect(within(screen.getAllByTestId('report-row')[0]).getByText('updated')).toBeTruthy();

    await fireEvent.change(screen.getByLabelText('Report type'), { target: { value: 'error' } });
    expect(backend.calls).toContain('listReports {"type":"error","limit":200}');
    await vi.waitFor(() => expect(screen.getAllByTestId('report-row').length).toBe(1));
    expect(screen.getByText('sensor lost')).toBeTruthy();
  });
});

