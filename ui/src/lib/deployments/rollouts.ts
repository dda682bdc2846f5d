// How rollouts read: the deploy dialog's rollout choices (keyed by the server's `Preset`, plus
// today's plain deployment and a custom plan), a wave member's state (keyed by `MemberState`),
// a plan in one line, and the note an empty wave deserves. A variant added on the Rust side fails
// `npm run check` here until it has its words.
import type { MemberState, NewDeployment, Preset, RolloutPlan, Wave } from '../api/types';
import type { Tone } from '../devices/status';

/** `all_at_once` sends no plan at all (a deployment as before rollouts: every device at once,
 *  no soak); the other presets go by name; `custom` sends the plan the person edited. */
export type RolloutChoice = Preset | 'custom';

type ChoiceInfo = { label: string; hint: string };

export const ROLLOUT_CHOICES: Record<RolloutChoice, ChoiceInfo> = {
  all_at_once: { label: 'All at once', hint: 'every device is offered the image at its next check-in' },
  canary: { label: 'Canary', hint: 'devices tagged canary first, then up to 10 %, then up to 50 %, then the rest' },
  one_at_a_time: { label: 'One at a time', hint: 'every device, but only one updating at once' },
  custom: { label: 'Custom', hint: 'your own waves, soak time, success share and error limit' },
};

export const ROLLOUT_CHOICE_KEYS = Object.keys(ROLLOUT_CHOICES) as RolloutChoice[];

/** The request's rollout fields for a choice (`plan` only for `custom`). */
export function rolloutFields(choice: RolloutChoice, plan: () => RolloutPlan): Pick<NewDeployment, 'preset' | 'plan'> {
  switch (choice) {
    case 'all_at_once':
      return {};
    case 'custom':
      return { plan: plan() };
    case 'canary':
    case 'one_at_a_time':
      return { preset: choice };
  }
}

type MemberInfo = { label: string; tone: Tone; hint: string };

/** A wave member's state, in the order a device passes through them. */
export const MEMBER_STATES: Record<MemberState, MemberInfo> = {
  waiting: { label: 'waiting', tone: 'muted', hint: 'its wave has not started, or it has not taken the image yet' },
  updating: { label: 'updating', tone: 'run', hint: 'offered the image, or installing it' },
  soaking: { label: 'soaking', tone: 'run', hint: 'runs the image and must stay healthy until its soak time ends' },
  succeeded: { label: 'succeeded', tone: 'ok', hint: 'runs the image and stayed healthy through its soak time' },
  failed: { label: 'failed', tone: 'bad', hint: 'its update failed, or it restarted, reported an error or fell silent while soaking' },
  skipped: { label: 'skipped', tone: 'muted', hint: 'cannot take the image (another chip, a newer version, too little space, …): counts for nothing' },
};

export const MEMBER_STATE_KEYS = Object.keys(MEMBER_STATES) as MemberState[];

/** "45 s", "5 min", "1 h 30 min". */
export function duration(s: number): string {
  if (s < 60 || s % 60) return `${s} s`;
  const m = s / 60;
  if (m < 60) return `${m} min`;
  return m % 60 ? `${Math.floor(m / 60)} h ${m % 60} min` : `${m / 60} h`;
}

/** What a plan does besides its waves, as short phrases. */
export function planPhrases(p: RolloutPlan): string[] {
  const out: string[] = [];
  const soak = p.soak_s ?? 60;
  out.push(soak > 0 ? `each device must stay healthy for ${duration(soak)}` : 'no soak time');
  const success = p.success_pct ?? 100;
  if (p.waves.length > 1) out.push(`the next wave starts when ${success} % of a wave succeeded`);
  const limit = p.error_limit ?? { devices: null, percent: 10 };
  const limits = [
    limit.devices != null ? `more than ${limit.devices} device${limit.devices === 1 ? '' : 's'}` : null,
    limit.percent != null ? `more than ${limit.percent} %` : null,
  ].filter((x) => x !== null);
  out.push(limits.length ? `pauses by itself when ${limits.join(' or ')} failed` : 'never pauses by itself');
  if (p.max_parallel != null) out.push(`at most ${p.max_parallel} updating at once`);
  if (p.pause_after_wave) out.push('waits for your approval after each wave');
  if (p.offline_limit_s != null) out.push(`silent for more than ${duration(p.offline_limit_s)} while soaking counts as failed`);
  return out;
}

/** Phrases as one sentence: "Each device must stay healthy for 1 min; …." */
export function sentence(phrases: string[]): string {
  const s = phrases.join('; ');
  return s ? `${s[0].toUpperCase()}${s.slice(1)}.` : '';
}

export type WaveNote = { tone: Tone; text: string };

/** Why a wave is empty, when it is: an empty tag wave is most likely a forgotten tag. */
export function emptyWaveNote(wave: Wave, plan: RolloutPlan, waves: number): WaveNote | null {
  if (wave.devices.length) return null;
  const spec = plan.waves[wave.number - 1];
  const which = wave.number === 1 ? 'the first wave' : `wave ${wave.number}`;
  if (spec?.by === 'tag' && wave.number < waves) {
    return { tone: 'warn', text: `No device is tagged ${spec.tag}: ${which} is empty and starts the next at once.` };
  }
  return { tone: 'muted', text: wave.number < waves ? 'Empty: the next wave starts at once.' : 'Empty: no device is left for it.' };
}
