// A plain node:http client for tether's admin API, and a strict reader of the Prometheus text
// exposition format (0.0.4) so a scrape that does not parse fails the test.
import http from 'node:http';

export interface AdminReply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly text: string;
  /** The body parsed as JSON (undefined when it is not JSON). */
  readonly json: unknown;
}

/** One request to the admin API on 127.0.0.1:`port`. */
export function admin(port: number, method: string, path: string, opts: { body?: string | object; token?: string; headers?: Record<string, string> } = {}): Promise<AdminReply> {
  return new Promise((resolve, reject) => {
    const body = opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        headers: {
          ...(opts.token === undefined ? {} : { authorization: `Bearer ${opts.token}` }),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...opts.headers,
        },
        timeout: 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('admin request timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Exposition {
  readonly types: ReadonlyMap<string, string>;
  readonly help: ReadonlyMap<string, string>;
  readonly samples: readonly Sample[];
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = `([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\\\\n]|\\\\[\\\\"n])*)"`;
const SAMPLE_RE = new RegExp(`^(${NAME})(?:\\{((?:${LABEL})(?:,${LABEL})*,?)?\\})? (-?(?:[0-9]+(?:\\.[0-9]*)?(?:e[+-]?[0-9]+)?|\\.[0-9]+)|NaN|[+-]Inf)(?: -?[0-9]+)?$`);
const LABEL_G = new RegExp(LABEL, 'g');

/**
 * Parses Prometheus text format strictly: every line is a HELP, a TYPE, another comment, a blank
 * or a sample; a TYPE comes before its samples, once. Throws with the line on anything else.
 */
export function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  const samples: Sample[] = [];
  const lines = text.split('\n');
  if (lines.at(-1) !== '') throw new Error('exposition must end with a newline');
  for (const line of lines.slice(0, -1)) {
    if (line === '') continue;
    let m;
    if ((m = new RegExp(`^# HELP (${NAME}) (.*)$`).exec(line))) {
      help.set(m[1]!, m[2]!);
    } else if ((m = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`).exec(line))) {
      if (types.has(m[1]!)) throw new Error(`TYPE given twice: ${line}`);
      if (samples.some((s) => s.name === m![1])) throw new Error(`TYPE after samples: ${line}`);
      types.set(m[1]!, m[2]!);
    } else if (line.startsWith('#')) {
      continue;
    } else if ((m = SAMPLE_RE.exec(line))) {
      const labels: Record<string, string> = {};
      for (const lm of (m[2] ?? '').matchAll(LABEL_G)) labels[lm[1]!] = lm[2]!;
      const v = m.at(-1)!;
      samples.push({ name: m[1]!, labels, value: v === 'NaN' ? NaN : v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : Number(v) });
    } else {
      throw new Error(`not Prometheus text format: ${JSON.stringify(line)}`);
    }
  }
  return { types, help, samples };
}

/** The value of the one sample `name` whose labels include `labels` (undefined if none). */
export function sampleValue(e: Exposition, name: string, labels: Readonly<Record<string, string>> = {}): number | undefined {
  const hits = e.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (hits.length > 1) throw new Error(`${String(hits.length)} samples of ${name} match ${JSON.stringify(labels)}`);
  return hits[0]?.value;
}
