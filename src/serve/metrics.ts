// Request counts, errors and a latency histogram per route, in Prometheus's text format.

/** Upper bounds of the latency buckets, in seconds. */
const BUCKETS_S = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const label = (value: string): string => value.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n');

interface Histogram {
  buckets: number[];
  sum: number;
  count: number;
}

/** A {@link RequestMetrics}' counts as plain data (structured-clonable, for IPC). */
export interface MetricsSnapshot {
  requests: [string, number][];
  latency: [string, Histogram][];
}

/**
 * Counters kept by the server's onResponse hook.
 *
 * @example
 * const metrics = new RequestMetrics();
 * metrics.record('/v1/search', 200, 0.004);
 * metrics.text(); // "# TYPE byol_align_requests_total counter\nbyol_align_requests_total{route=\"/v1/search\",status=\"200\"} 1\n..."
 */
export class RequestMetrics {
  readonly #requests = new Map<string, number>();
  readonly #latency = new Map<string, Histogram>();

  /** What several processes counted, added up (a server of several workers, src/serve/workers.ts). */
  static sum(snapshots: readonly MetricsSnapshot[]): RequestMetrics {
    const out = new RequestMetrics();
    for (const { requests, latency } of snapshots) {
      for (const [key, n] of requests) out.#requests.set(key, (out.#requests.get(key) ?? 0) + n);
      for (const [route, h] of latency) {
        const into = out.#latency.get(route) ?? { buckets: BUCKETS_S.map(() => 0), sum: 0, count: 0 };
        h.buckets.forEach((n, i) => (into.buckets[i]! += n));
        into.sum += h.sum;
        into.count += h.count;
        out.#latency.set(route, into);
      }
    }
    return out;
  }

  /** The counts as plain data, for {@link RequestMetrics.sum} in another process. */
  snapshot(): MetricsSnapshot {
    return { requests: [...this.#requests], latency: [...this.#latency].map(([route, h]) => [route, { ...h, buckets: [...h.buckets] }]) };
  }

  /** One answered request: its route pattern (never the raw URL, which a client chooses), status and duration. */
  record(route: string, status: number, seconds: number): void {
    const key = `route="${label(route)}",status="${status}"`;
    this.#requests.set(key, (this.#requests.get(key) ?? 0) + 1);
    const histogram = this.#latency.get(route) ?? { buckets: BUCKETS_S.map(() => 0), sum: 0, count: 0 };
    BUCKETS_S.forEach((bound, i) => {
      if (seconds <= bound) histogram.buckets[i]! += 1;
    });
    histogram.sum += seconds;
    histogram.count += 1;
    this.#latency.set(route, histogram);
  }

  text(): string {
    const lines = ['# HELP byol_align_requests_total Requests answered, by route and status.', '# TYPE byol_align_requests_total counter'];
    for (const [key, n] of this.#requests) lines.push(`byol_align_requests_total{${key}} ${n}`);
    lines.push(
      '# HELP byol_align_request_errors_total Requests answered with a 4xx or 5xx status.',
      '# TYPE byol_align_request_errors_total counter',
    );
    for (const [key, n] of this.#requests) if (/status="[45]/.test(key)) lines.push(`byol_align_request_errors_total{${key}} ${n}`);
    lines.push(
      '# HELP byol_align_request_duration_seconds Time to answer, by route.',
      '# TYPE byol_align_request_duration_seconds histogram',
    );
    for (const [route, h] of this.#latency) {
      const r = `route="${label(route)}"`;
      BUCKETS_S.forEach((bound, i) => lines.push(`byol_align_request_duration_seconds_bucket{${r},le="${bound}"} ${h.buckets[i]}`));
      lines.push(`byol_align_request_duration_seconds_bucket{${r},le="+Inf"} ${h.count}`);
      lines.push(`byol_align_request_duration_seconds_sum{${r}} ${h.sum}`);
      lines.push(`byol_align_request_duration_seconds_count{${r}} ${h.count}`);
    }
    return `${lines.join('\n')}\n`;
  }
}
