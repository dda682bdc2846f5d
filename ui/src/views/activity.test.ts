import { fireEvent, render, screen } from '@testing-library/svelte';
import { describe, expect, test } from 'vitest';
import { auditEntry, MockBackend } from '../lib/backend/mock';
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
});
