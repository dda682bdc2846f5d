import { fireEvent, render, screen } from '@testing-library/svelte';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { auditEntry, command, MockBackend } from '../lib/backend/mock';
import { Fleet } from '../lib/fleet.svelte';
import ActivityView from './ActivityView.svelte';

describe('activity', () => {
  test('lists the audit log with results and filters it by outcome on the server', async () => {
    const backend = new MockBackend();
    backend.audit = [
      auditEntry(2, { action: 'delete_firmware', method: 'DELETE', status: 409, outcome: 'refused', detail: null }),
      auditEntry(1, { detail: { fields: ['version', 'notes'], values: { version: '1.0.1' } } }),
    ];
    render(ActivityView, { fleet: new Fleet(backend) });
    expect((await screen.findAllByTestId('audit-row')).length).toBe(2);
    expect(screen.getByText('version = 1.0.1, notes')).toBeTruthy();
    expect(screen.getByText('refused (409)')).toBeTruthy();
    await fireEvent.change(screen.getByLabelText('Outcome'), { target: { value: 'refused' } });
    expect(backend.calls).toContain('listAudit {"outcome":"refused","limit":500}');
    await screen.findByText('refused (409)');
    expect((await screen.findAllByTestId('audit-row')).length).toBe(1);
  });

  test('a command queued elsewhere brings its audit row without a reload; Refresh reads the log again', async () => {
    vi.useFakeTimers();
    try {
      const backend = new MockBackend();
      backend.audit = [auditEntry(1)];
      const frames: (() => void)[] = [];
      const fleet = new Fleet(backend, (f) => void frames.push(f));
      await fleet.start();
      render(ActivityView, { fleet });
      await vi.waitFor(() => expect(screen.getAllByTestId('audit-row').length).toBe(1));
      backend.audit = [auditEntry(2, { action: 'queue_command', method: 'POST', status: 201 }), auditEntry(1)];
      backend.emit({ type: 'command', command: command(7) });
      for (const f of frames.splice(0)) f();
      await vi.advanceTimersByTimeAsync(600);
      await vi.waitFor(() => expect(screen.getAllByTestId('audit-row').length).toBe(2));
      const reads = backend.calls.filter((c) => c.startsWith('listAudit')).length;
      await fireEvent.click(screen.getByRole('button', { name: 'Refresh' }));
      expect(backend.calls.filter((c) => c.startsWith('listAudit')).length).toBe(reads + 1);
    } finally {
      vi.useRealTimers();
    }
  });

  const objectUrls = { create: URL.createObjectURL, revoke: URL.revokeObjectURL };
  afterEach(() => {
    vi.restoreAllMocks();
    Object.assign(URL, { createObjectURL: objectUrls.create, revokeObjectURL: objectUrls.revoke });
  });

  test('"Download CSV" asks the backend for the rows shown, with the filters they were read with, and saves them as a file', async () => {
    const backend = new MockBackend();
    backend.audit = [
      auditEntry(2, { action: 'delete_firmware', method: 'DELETE', status: 409, outcome: 'refused', detail: null }),
      auditEntry(1),
    ];
    // jsdom has no object URLs and does not download: both are watched instead.
    const blobs: Blob[] = [];
    (URL as unknown as { createObjectURL: (b: Blob) => string }).createObjectURL = (b: Blob) => (blobs.push(b), 'blob:audit');
    (URL as unknown as { revokeObjectURL: (u: string) => void }).revokeObjectURL = () => {};
    const clicked: HTMLAnchorElement[] = [];
    vi.spyOn(HTMLAnchorElement.prototype, 'click').mockImplementation(function (this: HTMLAnchorElement) {
      clicked.push(this);
    });
    render(ActivityView, { fleet: new Fleet(backend) });
    await screen.findAllByTestId('audit-row');
    await fireEvent.change(screen.getByLabelText('Outcome'), { target: { value: 'refused' } });
    await fireEvent.input(screen.getByLabelText('Action'), { target: { value: ' delete_firmware ' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Filter' }));
    await fireEvent.click(screen.getByRole('button', { name: 'Download CSV' }));
    await vi.waitFor(() => expect(clicked.length).toBe(1));
    expect(backend.calls).toContain('auditCsv {"outcome":"refused","action":"delete_firmware","limit":500}');
    expect(clicked[0].href).toBe('blob:audit');
    expect(clicked[0].download).toMatch(/^otafleet-audit-\d{4}-\d{2}-\d{2}\.csv$/);
    const lines = (await blobs[0].text()).trim().split('\r\n');
    expect(lines.length).toBe(2);
    expect(lines[1]).toMatch(/^2,.*,delete_firmware,.*,refused,$/);
  });
});
