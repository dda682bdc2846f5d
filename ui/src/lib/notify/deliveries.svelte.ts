import type { Delivery } from '../api/types';
import { errorOf } from '../firmware/firmware.svelte';
import type { Fleet } from '../fleet.svelte';

/** The delivery log grouped by report: loaded once (and again after every full reload), then kept
 *  current by the `delivery` live event. */
export class DeliveryFeed {
  byReport = $state<Map<number, Delivery[]>>(new Map());
  error = $state<{ code: string; message: string } | null>(null);

  constructor(private readonly fleet: Fleet) {}

  load() {
    return this.fleet.backend.listDeliveries({ limit: 1000 }).then(
      (rows) => {
        const m = new Map<number, Delivery[]>();
        for (const d of [...rows].sort((a, b) => a.id - b.id)) m.set(d.report_id, [...(m.get(d.report_id) ?? []), d]);
        this.byReport = m;
        this.error = null;
      },
      (e) => (this.error = errorOf(e)),
    );
  }

  /** Follow live deliveries; returns the function that stops following. */
  follow(): () => void {
    return this.fleet.onDelivery((d) => {
      const list = this.byReport.get(d.report_id) ?? [];
      const at = list.findIndex((x) => x.id === d.id);
      const next = at < 0 ? [...list, d] : list.map((x) => (x.id === d.id ? d : x));
      const m = new Map(this.byReport);
      m.set(d.report_id, next);
      this.byReport = m;
    });
  }
}
