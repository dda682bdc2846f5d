import type { Report, ReportsQuery } from '../api/types';
import { errorOf } from '../firmware/firmware.svelte';
import type { Fleet } from '../fleet.svelte';

/** Reports of one device or all, newest first: loaded once (and again after every full reload of
 *  the fleet), then kept current by the `report` live event. */
export class ReportFeed {
  rows = $state<Report[] | null>(null);
  error = $state<{ code: string; message: string } | null>(null);

  constructor(
    private readonly fleet: Fleet,
    private query: ReportsQuery,
  ) {}

  load(query: ReportsQuery = this.query) {
    this.query = query;
    return this.fleet.backend.listReports(query).then(
      (r) => ((this.rows = r), (this.error = null)),
      (e) => (this.error = errorOf(e)),
    );
  }

  /** Follow live reports; returns the function that stops following. */
  follow(): () => void {
    return this.fleet.onReport((r) => {
      if (this.query.mac && r.mac !== this.query.mac) return;
      if (this.query.type && r.type !== this.query.type) return;
      if (!this.rows || this.rows.some((x) => x.id === r.id)) return;
      this.rows = [r, ...this.rows].slice(0, this.query.limit ?? 100);
    });
  }
}
