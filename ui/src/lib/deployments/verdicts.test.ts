import { describe, expect, test } from 'vitest';
import type { DeploymentStatus, Tally, Verdict, VerdictKind } from '../api/types';
import { deployment } from '../backend/mock';
import { bucketOf, DEPLOYMENT_STATUS, groupPhrase, TALLY, TALLY_KEYS, targets, verdictLabel, VERDICTS } from './verdicts';
import { imageLabel, targetLabel } from './describe';
import { device, firmware } from '../backend/mock';

const KINDS: VerdictKind[] = ['offer', 'in_progress', 'already_running', 'newer_running', 'other_chip', 'other_project', 'too_big', 'failed',
  'chip_unknown', 'unsupported', 'waiting', 'superseded', 'waiting_for_wave', 'paused', 'queued'];

describe('verdict words', () => {
  test('every verdict kind reads as the dry-run breakdown says it', () => {
    expect(Object.keys(VERDICTS).sort()).toEqual([...KINDS].sort());
    expect(groupPhrase({ kind: 'offer', count: 42 })).toBe('42 will be offered the image');
    expect(groupPhrase({ kind: 'already_running', count: 35 })).toBe('35 already run it');
    expect(groupPhrase({ kind: 'newer_running', count: 8 })).toBe('8 run a newer version');
    expect(groupPhrase({ kind: 'newer_running', count: 1 })).toBe('1 runs a newer version');
    expect(groupPhrase({ kind: 'other_project', count: 3 })).toBe('3 run another project');
  });

  test('the options that change a verdict: rollback for newer versions, consent for other projects', () => {
    const withOption = KINDS.filter((k) => VERDICTS[k].option).map((k) => [k, VERDICTS[k].option]);
    expect(withOption).toEqual([['newer_running', 'rollback'], ['other_project', 'allow_other_project']]);
    expect(KINDS.filter((k) => VERDICTS[k].retry)).toEqual(['failed']);
  });

  test('an attempt under way says its state and progress', () => {
    expect(verdictLabel({ kind: 'in_progress', state: 'downloading', progress: 40 })).toBe('downloading 40%');
    expect(verdictLabel({ kind: 'in_progress', state: 'offered', progress: 0 })).toBe('update offered');
    expect(verdictLabel({ kind: 'newer_running', running: '2.0.0', target: '1.0.0' })).toBe('newer running');
  });

  test('verdicts fall in the same tally buckets as the server counts them', () => {
    const cases: [Verdict, keyof Tally][] = [
      [{ kind: 'already_running' }, 'done'],
      [{ kind: 'in_progress', state: 'flashing', progress: 100 }, 'in_progress'],
      [{ kind: 'in_progress', state: 'interrupted', progress: 10 }, 'in_progress'],
      [{ kind: 'in_progress', state: 'offered', progress: 0 }, 'waiting'],
      [{ kind: 'offer' }, 'waiting'],
      [{ kind: 'waiting', why: 'x' }, 'waiting'],
      [{ kind: 'failed', attempts: 3 }, 'failed'],
      [{ kind: 'superseded', by: 9 }, 'superseded'],
      [{ kind: 'too_big', size: 2, free: 1 }, 'held'],
      [{ kind: 'other_project', device: 'a', image: 'b' }, 'held'],
      // A rollout holds these back; they still wait for the image.
      [{ kind: 'waiting_for_wave', wave: 3, current: 1 }, 'waiting'],
      [{ kind: 'paused', reason: 'error limit crossed' }, 'waiting'],
      [{ kind: 'queued', max: 2 }, 'waiting'],
    ];
    for (const [v, bucket] of cases) expect([v.kind, bucketOf(v)]).toEqual([v.kind, bucket]);
    expect(TALLY_KEYS).toEqual(['done', 'in_progress', 'waiting', 'failed', 'held', 'superseded']);
    expect(Object.values(TALLY).every((b) => b.hint)).toBe(true);
  });
});

describe('deployment status', () => {
  test('completed deployments still target their devices; stopped ones do not', () => {
    const all: DeploymentStatus[] = ['active', 'completed', 'paused', 'stopped'];
    expect(Object.keys(DEPLOYMENT_STATUS).sort()).toEqual([...all].sort());
    expect(all.map((status) => targets(deployment(1, { status })))).toEqual([true, true, true, false]);
  });

  test('image and target in words', () => {
    expect(imageLabel(firmware(2, { project: 'blink', version: '1.1.0' }), 2)).toBe('blink 1.1.0');
    expect(imageLabel(undefined, 9)).toBe('image #9 (no longer in the library)');
    expect(targetLabel(deployment(1, { project: 'blink', chip: 'esp32s3' }), () => undefined)).toBe('every esp32s3 device of project blink');
    const names = new Map([['A1', device('A1', { name: 'bench-01' })]]);
    expect(targetLabel(deployment(1, { devices: ['A1', 'A2', 'A3', 'A4', 'A5'] }), (m) => names.get(m))).toBe('bench-01, A2, A3 and 2 more');
  });
});
