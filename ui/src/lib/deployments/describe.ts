// Words for a deployment's image and target, shared by the Deployments page and the device page.
import type { Deployment, Device, Firmware } from '../api/types';

export function imageLabel(fw: Firmware | undefined, id: number): string {
  if (!fw) return `image #${id} (no longer in the library)`;
  return `${fw.project ?? fw.filename} ${fw.version ?? ''}`.trim();
}

/** "every esp32 device of project blink", or the named devices ("bench-01, bench-02 and 3 more"). */
export function targetLabel(d: Deployment, device: (mac: string) => Device | undefined, shown = 3): string {
  if (!d.devices.length) return `every ${d.chip ?? ''} device of project ${d.project ?? '(none)'}`.replace('  ', ' ');
  const names = d.devices.map((m) => device(m)?.name || m);
  const head = names.slice(0, shown).join(', ');
  const rest = names.length - shown;
  return rest > 0 ? `${head} and ${rest} more` : head;
}
