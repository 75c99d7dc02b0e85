// Error codes, the error class for config/startup failures, and the per-connection Termination.
// Pure. Operators and tests match on codes; the README's error table mirrors ERROR_CODES.

/** The catalogue of error codes: code → one-line meaning. The README lists the same codes. */
export const ERROR_CODES = {
  TETHER_ERR_USAGE: 'invalid command-line flag or argument',
  TETHER_ERR_CONFIG: 'invalid configuration (flags or config file)',
  TETHER_ERR_CONFIG_FILE: 'config file cannot be read or parsed',
  TETHER_ERR_LISTEN: 'a listener could not be bound',
  TETHER_ERR_INTERNAL: 'broken invariant inside tether (please report)',
} as const;

export type TetherErrorCode = keyof typeof ERROR_CODES;

/** One problem found in a configuration, with the path of the field it concerns. */
export interface ConfigIssue {
  readonly path: string;
  readonly message: string;
}

/** The one error class of tether; callers branch on `code`. `issues` is set for config errors. */
export class TetherError extends Error {
  readonly code: TetherErrorCode;
  readonly issues: readonly ConfigIssue[];

  constructor(
    code: TetherErrorCode,
    message: string,
    options: { cause?: unknown; issues?: readonly ConfigIssue[] } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TetherError';
    this.code = code;
    this.issues = options.issues ?? [];
  }
}

/**
 * Who or what ended a connection (HAProxy's termination state, first letter). `tether`: tether
 * itself — a limit it enforces (`max-conns`, `frontend-max-conns`, `queue-full`; HAProxy's "P"),
 * a stop, or a bug.
 */
export type TerminationCause =
  | 'normal'
  | 'client'
  | 'backend'
  | 'tether'
  | 'client-timeout'
  | 'backend-timeout';

/** The stage a connection was in when it ended; `queue`: waiting for a backend below its max-conns. */
export type TerminationStage = 'accept' | 'peek' | 'greet' | 'place' | 'queue' | 'connect' | 'splice' | 'shutdown';

/** The one record of why and where a connection ended; logged once in `conn.close`. */
export interface Termination {
  readonly cause: TerminationCause;
  readonly stage: TerminationStage;
  /**
   * A Node error code (ECONNRESET, ECONNREFUSED, ETIMEDOUT) or a tether reason; the splice's
   * timeouts are `idle`, `fin-timeout` and `write-stall` (the README's termination table).
   */
  readonly code?: string;
}

/** Narrows an unknown thrown value to its Node `code`, if it has one. */
export function errorCode(err: unknown): string | undefined {
  if (err instanceof Error && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}
