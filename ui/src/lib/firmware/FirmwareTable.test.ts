import { fireEvent, render, screen, within } from '@testing-library/svelte';
import { describe, expect, test } from 'vitest';
import { MockBackend, firmware } from '../backend/mock';
import { DeploymentStore } from '../deployments/deployments.svelte';
import { FirmwareStore } from './firmware.svelte';
import FirmwareTable from './FirmwareTable.svelte';
import { groupByProject } from './identity';

const items = [
  firmware(1, { project: 'thermo', version: '1.0.0', uploaded_at: '2026-11-20T10:00:00Z' }),
  firmware(2, { project: 'blink', version: '1.0.0', uploaded_at: '2026-11-20T11:00:00Z' }),
  firmware(3, { project: 'thermo', version: '1.1.0', uploaded_at: '2026-11-22T09:00:00Z' }),
  firmware(4, { filename: 'firmware.bin', project: null, project_source: 'none', version: '0.3.0', uploaded_at: '2026-11-19T09:00:00Z' }),
  firmware(5, { project: 'blink', version: '0.9.0', uploaded_at: '2026-11-18T09:00:00Z' }),
  firmware(6, { project: 'blink', version: '1.1.0', uploaded_at: '2026-11-21T09:00:00Z' }),
];

describe('Firmware library', () => {
  test('grouped by project, newest first in each; images without a project first', () => {
    expect(groupByProject(items).map((g) => [g.project, g.items.map((f) => f.id)])).toEqual([
      [null, [4]],
      ['blink', [6, 2, 5]],
      ['thermo', [3, 1]],
    ]);
  });

  test('the table shows the groups, asks for a project, and a row click opens its sheet', async () => {
    const b = new MockBackend();
    b.firmwareList = items;
    const store = new FirmwareStore(b);
    await store.load();
    render(FirmwareTable, { store, deployments: new DeploymentStore(b), ondeploy: () => undefined });
    const groups = screen.getAllByTestId('firmware-group');
    expect(groups.map((g) => g.dataset.project)).toEqual(['', 'blink', 'thermo']);
    expect(within(groups[0]).getByText('No project')).toBeTruthy();
    expect(within(groups[0]).getByText('project unknown — set')).toBeTruthy();
    expect(within(groups[1]).getAllByTestId('firmware-row').map((r) => r.dataset.firmware)).toEqual(['6', '2', '5']);
    await fireEvent.click(within(groups[2]).getAllByTestId('firmware-row')[1].querySelector('td')!);
    expect(store.sheet).toEqual({ id: 1, why: 'library' });
    // The row's own buttons do what they say, not open the sheet.
    store.closeSheet();
    await fireEvent.click(within(groups[2]).getAllByRole('button', { name: 'Delete' })[0]);
    expect(store.sheet).toBeNull();
  });
});
