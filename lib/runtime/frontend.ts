// I/O. Builds one frontend generation from its config (files read, pools carried over) and
// starts its timers (tls-ticket discovery, health checks).
import type net from 'node:net';
import { compileAcl } from '../accept/acl.js';
import { Throttle } from '../accept/limits.js';
import { chainNeedsPeek, tableKey } from '../affinity/chain.js';
import { KeyModule } from '../affinity/key-module.js';
import type { FrontendConfig } from '../config/types.js';
import { TICKET_PROBE_INTERVAL_MS, probeTicketKeyName } from '../connect/ticket-probe.js';
import { startHealthChecks } from '../health/monitor.js';
import { EVENTS, keyHash } from '../log.js';
import { mailRuntime } from './mail.js';
import { poolRuntime } from './pools.js';
import { newFrontendStats, type Deps, type Frontend, type MailRuntime, type OpenConn, type PoolRuntime, type Shared } from './types.js';

/** `limit.reached` is logged at most once a second per frontend and limit, however many hit it. */
const LIMIT_LOG_INTERVAL_MS = 1_000;

/** Discovers each backend's ticket key_name now and every TICKET_PROBE_INTERVAL_MS. */
function startTicketProbes(config: FrontendConfig, pools: ReadonlyMap<string, PoolRuntime>, deps: Deps): () => void {
  const round = (): void => {
    for (const pr of pools.values()) {
      for (const b of pr.pool.backends) {
        const port = b.spec.port ?? config.listen[0]?.portLow;
        if (port === undefined || port === 0) continue;
        void probeTicketKeyName(b.spec.host, port, config.connectTimeoutMs).then((keyName) => {
          if (keyName === undefined) return;
          pr.table.set(tableKey({ kind: 'tls-ticket', value: keyName }), b.name, deps.clock.now());
          deps.logger.debug({ event: EVENTS.ticketKey, frontend: config.name, pool: pr.name, backend: b.name, hash: keyHash(keyName) }, 'ticket key learned');
        });
      }
    }
  };
  round();
  const timer = setInterval(round, TICKET_PROBE_INTERVAL_MS);
  timer.unref();
  return () => {
    clearInterval(timer);
  };
}

/**
 * Builds a frontend generation from its config: reads TLS files, user map and key module (any
 * failure rejects with TETHER_ERR_CONFIG and changes nothing). With `prev`, pools keep their
 * affinity tables and backends, and `open`/`stats` are shared.
 */
export async function buildFrontend(config: FrontendConfig, deps: Deps, shared: Shared, prev?: Frontend): Promise<Frontend> {
  const pools = new Map<string, PoolRuntime>();
  pools.set('default', poolRuntime('default', config.backends, config.balance, config, deps, prev?.pools.get('default')));
  for (const p of config.pools) pools.set(p.name, poolRuntime(p.name, p.backends, p.balance, config, deps, prev?.pools.get(p.name)));
  // The same file keeps its worker (and is not re-read) across reloads, as an in-process import was cached.
  const keyModule = config.keyModule === undefined ? undefined : prev?.keyModule?.file === config.keyModule ? prev.keyModule : await KeyModule.load(config.keyModule);
  let mail: MailRuntime | undefined;
  try {
    mail = await mailRuntime(config, deps);
  } catch (e) {
    if (keyModule !== prev?.keyModule) await keyModule?.close();
    throw e;
  }
  const trusted = config.acceptProxyProtocol ? compileAcl({ allow: config.trustedProxies, deny: [] }) : undefined;
  const open = prev?.open ?? new Map<net.Socket, OpenConn>();
  if (!prev) shared.opens.push(open);
  return {
    config,
    pools,
    peeks: chainNeedsPeek(config.affinity) || config.routes.length > 0 || config.insertCookie !== undefined,
    ...(keyModule === undefined ? {} : { keyModule }),
    ...(mail === undefined ? {} : { mail }),
    open,
    acl: compileAcl({ allow: config.allow, deny: config.deny }),
    ...(trusted === undefined ? {} : { trusted }),
    stats: prev?.stats ?? newFrontendStats(),
    shared,
    limitLog: prev?.limitLog ?? new Throttle(LIMIT_LOG_INTERVAL_MS),
  };
}

/** Starts a frontend generation's timers (tls-ticket discovery); returns how to stop them. */
export function startTimers(fe: Frontend, deps: Deps): () => void {
  const stops: (() => void)[] = [];
  if (fe.config.affinity.some((st) => st.kind === 'tls-ticket')) stops.push(startTicketProbes(fe.config, fe.pools, deps));
  if (fe.config.health.check !== 'none') stops.push(startHealthChecks(fe.config, fe.pools.values(), deps));
  return () => {
    for (const stop of stops) stop();
  };
}
