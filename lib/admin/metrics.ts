// Admin, I/O-free. Prometheus metrics: a prom-client registry whose collectors read tether's live
// counters at scrape time, so the connection path only bumps plain numbers (no label lookups).
import { Counter, Gauge, Registry, collectDefaultMetrics, type CounterConfiguration, type GaugeConfiguration } from 'prom-client';
import type { Clock } from '../clock.js';
import type { PoolRuntime, Tether } from '../runtime/types.js';
import type { Backend } from '../place/pool.js';
import { BACKEND_STATES } from './view.js';

/** Every metric name starts with this. */
export const METRIC_PREFIX = 'tether_';

type Labels<T extends string> = Partial<Record<T, string | number>>;

/**
 * A counter whose value is read from tether at scrape time. prom-client has no `set` for
 * counters; resetting and adding the current total keeps the type (and `rate()`) right.
 */
function liveCounter<T extends string>(registry: Registry, name: string, help: string, labelNames: readonly T[], read: (add: (labels: Labels<T>, v: number) => void) => void): void {
  const conf: CounterConfiguration<T> = {
    name: METRIC_PREFIX + name,
    help,
    labelNames,
    registers: [registry],
    collect(this: Counter<T>) {
      this.reset();
      read((labels, v) => {
        this.inc(labels, v);
      });
    },
  };
  new Counter(conf);
}

function liveGauge<T extends string>(registry: Registry, name: string, help: string, labelNames: readonly T[], read: (set: (labels: Labels<T>, v: number) => void) => void): void {
  const conf: GaugeConfiguration<T> = {
    name: METRIC_PREFIX + name,
    help,
    labelNames,
    registers: [registry],
    collect(this: Gauge<T>) {
      this.reset();
      read((labels, v) => {
        this.set(labels, v);
      });
    },
  };
  new Gauge(conf);
}

/** Reloads so far (SIGHUP and the admin call), counted by whoever runs them. */
export interface ReloadCounts {
  ok: number;
  failed: number;
}

/**
 * Builds the registry for one tether. `process`: also Node's default process metrics;
 * `reloads`: the reload outcomes to expose.
 */
export function createMetrics(tether: Tether, clock: Clock, options: { process?: boolean; reloads?: ReloadCounts } = {}): Registry {
  const r = new Registry();
  if (options.process !== false) collectDefaultMetrics({ register: r, prefix: METRIC_PREFIX });
  const frontends = (): Tether['frontends'] => tether.frontends;
  const eachBackend = (visit: (labels: { frontend: string; pool: string; backend: string }, b: Backend, pr: PoolRuntime) => void): void => {
    for (const f of frontends()) {
      for (const pr of f.current.pools.values()) {
        for (const b of pr.pool.backends) visit({ frontend: f.name, pool: pr.name, backend: b.name }, b, pr);
      }
    }
  };
  const eachPool = (visit: (labels: { frontend: string; pool: string }, pr: PoolRuntime) => void): void => {
    for (const f of frontends()) for (const pr of f.current.pools.values()) visit({ frontend: f.name, pool: pr.name }, pr);
  };

  liveGauge(r, 'frontend_connections_active', 'Open client connections of a frontend.', ['frontend'], (set) => {
    for (const f of frontends()) set({ frontend: f.name }, f.current.open.size);
  });
  liveCounter(r, 'frontend_connections_total', 'Clients accepted by a frontend.', ['frontend'], (add) => {
    for (const f of frontends()) add({ frontend: f.name }, f.current.stats.accepted);
  });
  liveCounter(r, 'frontend_bytes_total', 'Bytes of closed connections: in = client to backend, out = backend to client.', ['frontend', 'direction'], (add) => {
    for (const f of frontends()) {
      add({ frontend: f.name, direction: 'in' }, f.current.stats.bytesIn);
      add({ frontend: f.name, direction: 'out' }, f.current.stats.bytesOut);
    }
  });
  liveCounter(r, 'retries_total', 'Backend dials beyond the first for a connection (failover).', ['frontend'], (add) => {
    for (const f of frontends()) add({ frontend: f.name }, f.current.stats.retries);
  });
  liveCounter(r, 'connection_closes_total', 'Closed connections by termination (who ended it, at which stage, with which code).', ['frontend', 'cause', 'stage', 'code'], (add) => {
    for (const f of frontends()) {
      for (const [k, n] of f.current.stats.closes) {
        const [cause = '', stage = '', code = ''] = k.split('|');
        add({ frontend: f.name, cause, stage, code }, n);
      }
    }
  });
  liveCounter(r, 'peek_outcomes_total', 'Peeked clients by the protocol found and what ended the peek (verdict, timeout, cap, eof).', ['frontend', 'protocol', 'stop'], (add) => {
    for (const f of frontends()) {
      for (const [k, n] of f.current.stats.peeks) {
        const [protocol = '', stop = ''] = k.split('|');
        add({ frontend: f.name, protocol, stop }, n);
      }
    }
  });
  liveGauge(r, 'backend_connections_active', 'Open (dialing or spliced) connections to a backend.', ['frontend', 'pool', 'backend'], (set) => {
    eachBackend((l, b) => {
      set(l, b.active);
    });
  });
  liveCounter(r, 'backend_connections_total', 'Connections placed on a backend.', ['frontend', 'pool', 'backend'], (add) => {
    eachBackend((l, b) => {
      add(l, b.total);
    });
  });
  liveCounter(r, 'backend_connect_failures_total', 'Failed dials to a backend (refused, timed out).', ['frontend', 'pool', 'backend'], (add) => {
    eachBackend((l, b) => {
      add(l, b.failures);
    });
  });
  liveCounter(r, 'backend_bytes_total', 'Bytes of closed connections on a backend: in = client to backend, out = backend to client.', ['frontend', 'pool', 'backend', 'direction'], (add) => {
    eachBackend((l, b) => {
      add({ ...l, direction: 'in' }, b.bytesIn);
      add({ ...l, direction: 'out' }, b.bytesOut);
    });
  });
  liveGauge(r, 'backend_up', '1 when the backend takes new clients, else 0.', ['frontend', 'pool', 'backend'], (set) => {
    const now = clock.now();
    eachBackend((l, b, pr) => {
      set(l, pr.pool.state(b, now) === 'up' ? 1 : 0);
    });
  });
  liveGauge(r, 'backend_state', 'The backend state: 1 for the current one of up, down, draining, maint.', ['frontend', 'pool', 'backend', 'state'], (set) => {
    const now = clock.now();
    eachBackend((l, b, pr) => {
      const state = pr.pool.state(b, now);
      for (const s of BACKEND_STATES) set({ ...l, state: s }, s === state ? 1 : 0);
    });
  });
  liveGauge(r, 'queue_waiting', 'Clients waiting in a pool\'s queue for a backend below its max-conns.', ['frontend', 'pool'], (set) => {
    eachPool((l, pr) => {
      set(l, pr.queue.size);
    });
  });
  const reloads = options.reloads;
  if (reloads) {
    liveCounter(r, 'reloads_total', 'Configuration reloads (SIGHUP or POST /reload) by result: ok, or failed (refused; the old configuration kept serving).', ['result'], (add) => {
      add({ result: 'ok' }, reloads.ok);
      add({ result: 'failed' }, reloads.failed);
    });
  }
  liveGauge(r, 'affinity_entries', 'Entries in a pool\'s affinity table.', ['frontend', 'pool'], (set) => {
    eachPool((l, pr) => {
      set(l, pr.table.size);
    });
  });
  const tableCounter = (name: string, help: string, field: 'hits' | 'misses' | 'evictions' | 'expirations'): void => {
    liveCounter(r, name, help, ['frontend', 'pool'], (add) => {
      eachPool((l, pr) => {
        add(l, pr.table.stats[field]);
      });
    });
  };
  tableCounter('affinity_hits_total', 'Affinity-table lookups that found a live entry.', 'hits');
  tableCounter('affinity_misses_total', 'Affinity-table lookups that found no live entry.', 'misses');
  tableCounter('affinity_evictions_total', 'Entries dropped because the table was full (least recently used first).', 'evictions');
  tableCounter('affinity_expirations_total', 'Entries dropped after their idle timeout.', 'expirations');
  return r;
}
