import { fireEvent, render, screen, within } from '@testing-library/svelte';
import { describe, expect, test } from 'vitest';
import { BackendError } from '../backend/backend';
import { MockBackend, project } from '../backend/mock';
import { Fleet } from '../fleet.svelte';
import ProjectsView from '../../views/ProjectsView.svelte';
import { ProjectDraft, ProjectStore } from './projects.svelte';

async function started(backend: MockBackend) {
  const fleet = new Fleet(backend, (flush) => flush());
  await fleet.start();
  return fleet;
}

const climate = project('climate', {
  devices: 2,
  images: 1,
  enrolment: ['native'],
  variables: [
    { key: 'ssid', type: 'string', description: 'Wi-Fi', default: 'lab' },
    { key: 'interval_s', type: 'int', description: '', default: 60 },
    { key: 'led', type: 'bool', description: '', default: true },
    { key: 'pass', type: 'secret', description: '', default: { set: true } },
  ],
  commands: [{ key: 'blink', label: 'Blink', payload: { times: 3 }, confirmation: 'Sure?' }],
});

describe('project store', () => {
  test('loads, follows project and project_removed events', async () => {
    const backend = new MockBackend();
    backend.projects = [climate];
    const fleet = await started(backend);
    const store = new ProjectStore(fleet);
    const stop = store.follow();
    await store.load();
    expect(store.list?.map((p) => p.name)).toEqual(['climate']);
    backend.emit({ type: 'project', project: project('blink', { devices: 1 }) });
    expect(store.list?.map((p) => p.name)).toEqual(['blink', 'climate']);
    backend.emit({ type: 'project', project: { ...climate, description: 'changed' } });
    expect(store.get('climate')?.description).toBe('changed');
    backend.emit({ type: 'project_removed', name: 'blink' });
    expect(store.list?.map((p) => p.name)).toEqual(['climate']);
    stop();
  });
});

describe('project draft', () => {
  test('round-trips every type; a secret is left out unless typed, null when cleared', () => {
    const d = new ProjectDraft(climate);
    expect(d.vars.map((v) => v.value)).toEqual(['lab', '60', true, '']);
    expect(d.vars[3].secretSet).toBe(true);
    let out = d.toPatch();
    if ('error' in out) throw new Error(out.error);
    expect(out.patch.variables).toEqual([
      { key: 'ssid', type: 'string', description: 'Wi-Fi', default: 'lab' },
      { key: 'interval_s', type: 'int', description: '', default: 60 },
      { key: 'led', type: 'bool', description: '', default: true },
      { key: 'pass', type: 'secret', description: '' },
    ]);
    expect(out.patch.commands).toEqual([{ key: 'blink', label: 'Blink', payload: { times: 3 }, confirmation: 'Sure?' }]);
    expect(out.patch.enrolment).toEqual(['native']);
    d.vars[3].value = 'new-secret';
    out = d.toPatch();
    if ('error' in out) throw new Error(out.error);
    expect(out.patch.variables?.[3].default).toBe('new-secret');
    d.vars[3].clear = true;
    out = d.toPatch();
    if ('error' in out) throw new Error(out.error);
    expect(out.patch.variables?.[3].default).toBeNull();
  });

  test('says what to fix before sending', () => {
    const d = new ProjectDraft(climate);
    d.vars[1].value = '1.5';
    expect(d.toPatch()).toEqual({ error: 'interval_s: the default must be a whole number.' });
    d.vars[1].value = '5';
    d.cmds[0].payload = '{not json';
    expect(d.toPatch()).toEqual({ error: 'blink: the payload is not valid JSON.' });
    d.cmds[0].payload = '';
    d.enrolment = [];
    expect('error' in d.toPatch()).toBe(true);
    d.toggleProtocol('arduino', true);
    const out = d.toPatch();
    expect('patch' in out && out.patch.enrolment).toEqual(['arduino']);
  });
});

describe('projects page', () => {
  test('lists projects with device and image counts, edits and saves one; in-use projects cannot be deleted', async () => {
    const backend = new MockBackend();
    backend.projects = [climate, project('spare')];
    const fleet = await started(backend);
    render(ProjectsView, { fleet });
    const rows = await screen.findAllByTestId('project-row');
    expect(rows.length).toBe(2);
    expect(within(rows[0]).getByText('native')).toBeTruthy();
    expect((within(rows[0]).getByText('Delete') as HTMLButtonElement).disabled).toBe(true);
    expect((within(rows[1]).getByText('Delete') as HTMLButtonElement).disabled).toBe(false);
    await fireEvent.click(within(rows[0]).getByText('Edit'));
    const editor = await screen.findByTestId('project-editor');
    expect(within(editor).getAllByTestId('var-row').length).toBe(4);
    await fireEvent.click(within(editor).getByText('Add variable'));
    const keys = within(editor).getAllByLabelText('variable key');
    await fireEvent.input(keys[4], { target: { value: 'mqtt_host' } });
    await fireEvent.click(screen.getByTestId('project-save'));
    await screen.findByText(/Saved\./);
    const call = backend.calls.find((c) => c.startsWith('patchProject climate'));
    expect(call).toContain('"mqtt_host"');
    expect(call).not.toContain('"pass","type":"secret","description":"","default"');
  });

  test('a refusal is shown with the server message', async () => {
    const backend = new MockBackend();
    backend.projects = [project('spare')];
    backend.projectError = new BackendError('project_exists', 'project spare exists already', 409);
    const fleet = await started(backend);
    render(ProjectsView, { fleet });
    await screen.findAllByTestId('project-row');
    await fireEvent.input(screen.getByLabelText('New project name'), { target: { value: 'spare' } });
    await fireEvent.click(screen.getByText('Add project'));
    expect(await screen.findByText(/exists already/)).toBeTruthy();
  });
});
