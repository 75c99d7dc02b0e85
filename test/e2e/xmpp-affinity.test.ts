// xmpp-to affinity through `node bin/tether`: XMPP clients open a stream to a domain, backends
// a, b, c answer with a stream header `from='NAME'`. Same domain → same backend from any
// source, whatever the quoting, declaration, case or TCP segmentation of the stream header.
import t, { type Test } from 'tap';
import net from 'node:net';

import { startBackend, type BackendBehaviour, type TestBackend } from '../helpers/named-backend.js';
import { tetherOnLoopback as tether, connCloses as closes, keyKind } from '../helpers/e2e-tools.js';

const NAMES = ['a', 'b', 'c'] as const;
const SOURCES = ['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];
const NS = "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'";
const DECL = "<?xml version='1.0'?>";

/** The usual client stream header (RFC 6120 §4.7) with single quotes. */
const open = (to: string): string => `${DECL}<stream:stream to='${to}' ${NS} version='1.0'>`;

/** What every backend received on each connection, whole (pushed when the client ends). */
const received = new Map<string, string[]>();

/**
 * An XMPP-ish server: reads up to the end of the client's stream header, answers with its own
 * (`from='NAME'`), and when the client ends, closes its stream and ends too.
 */
const xmppServer: BackendBehaviour = (socket, name) => {
  let got = '';
  let answered = false;
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => {
    got += d;
    const at = got.indexOf('stream:stream');
    if (answered || at < 0 || !got.includes('>', at)) return;
    answered = true;
    socket.write(`<?xml version='1.0'?><stream:stream from='${name}' id='s-${name}' version='1.0' xml:lang='en' ${NS}>`);
  });
  socket.on('end', () => {
    const list = received.get(name) ?? [];
    list.push(got);
    received.set(name, list);
    socket.end('</stream:stream>');
  });
};

async function xmppBackends(t: Test): Promise<TestBackend[]> {
  const bs = await Promise.all(NAMES.map((n) => startBackend(n, { behaviour: xmppServer })));
  t.teardown(() => Promise.all(bs.map((b) => b.close())));
  return bs;
}

/**
 * Opens an XMPP stream through `port` from `source`, writing `pieces` with `pauseMs` between
 * them; resolves with the name in the answering stream header once the whole exchange closed.
 */
function xmppWho(port: number, pieces: readonly string[], source = '127.0.0.1', pauseMs = 25): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress: source, allowHalfOpen: true });
    s.setNoDelay(true);
    s.setEncoding('utf8');
    let got = '';
    let ended = false;
    const timer = setTimeout(() => s.destroy(new Error(`no stream header within 8 s (got ${JSON.stringify(got)})`)), 8_000);
    s.on('data', (d: string) => {
      got += d;
      if (!ended && /<stream:stream [^>]*>/.test(got)) {
        ended = true;
        s.end('</stream:stream>');
      }
    });
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    s.on('close', (hadError) => {
      clearTimeout(timer);
      if (hadError) return;
      const m = /<stream:stream from='([^']*)'/.exec(got);
      resolve(m?.[1] ?? '');
    });
    s.once('connect', () => {
      void (async () => {
        for (const [i, p] of pieces.entries()) {
          if (i > 0) await new Promise((r) => setTimeout(r, pauseMs));
          if (s.destroyed) return;
          s.write(p);
        }
      })();
    });
  });
}

const DOMAINS = ['example.com', 'example.org', 'chat.example.net', 'muc.example.com'];

t.test('xmpp-to', async (t) => {
  const bs = await xmppBackends(t);
  const flags = bs.flatMap((b) => ['--backend', `${b.name}=127.0.0.1:${String(b.port)}`]);
  // Round robin: without the xmpp-to key, the source fallback would spread these connections.
  const { rt, port } = await tether(t, [...flags, '--affinity', 'xmpp-to,source', '--balance', 'roundrobin']);
  let conns = 0;

  t.test('each domain stays on one backend from five sources', async (t) => {
    const got = new Map<string, string[]>(DOMAINS.map((d) => [d, []]));
    for (const src of SOURCES) for (const d of DOMAINS) got.get(d)!.push(await xmppWho(port, [open(d)], src));
    for (const d of DOMAINS) {
      const names = got.get(d)!;
      t.ok(NAMES.includes(names[0] as (typeof NAMES)[number]), `${d}: answered by ${names[0]!}`);
      t.same(new Set(names).size, 1, `${d}: one backend (${names.join(' ')})`);
    }
    const firsts = DOMAINS.map((d) => got.get(d)![0]!);
    t.same(new Set(firsts.slice(0, 3)).size, 3, `round robin placed the first three domains on a, b, c (${firsts.join(' ')})`);
    const lines = await closes(rt, (conns += 20));
    t.ok(lines.every((l) => l['protocol'] === 'xmpp' && keyKind(l) === 'xmpp-to'), 'protocol xmpp, key kind xmpp-to');
    t.same(lines.map((l) => l['via']), [...Array<string>(4).fill('balance'), ...Array<string>(16).fill('table')], 'placed once per domain, then from the table');
    const all = [...received.values()].flat();
    t.ok(all.includes(`${open('example.com')}</stream:stream>`), 'the backend received the stream header unchanged');
  });

  t.test('quoting, declaration, case and segmentation do not change the domain', async (t) => {
    const home = await xmppWho(port, [open('example.com')], '127.0.0.9');
    const variants: [string, string[]][] = [
      ['double quotes', [`<?xml version="1.0"?><stream:stream to="example.com" xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" version="1.0">`]],
      ['no XML declaration', [`<stream:stream xmlns='jabber:client' to='example.com' version='1.0' xmlns:stream='http://etherx.jabber.org/streams'>`]],
      ['upper case, new lines between attributes', [`${DECL}\n<stream:stream\n  to='Example.COM'\n  ${NS}\n  version='1.0'>`]],
      ['split over five segments', [DECL.slice(0, 9), `${DECL.slice(9)}<stream:str`, `eam to='exam`, `ple.com' ${NS} versi`, `on='1.0'>`]],
      ['one byte per segment for the first 40 bytes', [...Array.from({ length: 40 }, (_, i) => open('example.com').slice(i, i + 1)), open('example.com').slice(40)]],
    ];
    for (const [i, [what, pieces]] of variants.entries()) {
      const sent = pieces.join('');
      const name = await xmppWho(port, pieces, SOURCES[i % SOURCES.length], pieces.length > 10 ? 5 : 40);
      t.equal(name, home, `${what}: ${home}`);
      t.ok(received.get(name)?.includes(`${sent}</stream:stream>`), `${what}: the backend received every byte, in order`);
    }
    const lines = (await closes(rt, (conns += 1 + variants.length))).slice(-variants.length);
    t.ok(lines.every((l) => keyKind(l) === 'xmpp-to' && l['via'] === 'table' && l['peek'] === 'verdict'), 'all by the xmpp-to entry, on a verdict (not the deadline)');
  });

  t.test('a stream header without `to` falls back to the source', async (t) => {
    const noTo = `${DECL}<stream:stream ${NS} version='1.0'>`;
    const got: string[] = [];
    for (let i = 0; i < 3; i++) got.push(await xmppWho(port, [noTo], '127.0.0.10'));
    t.same(new Set(got).size, 1, `one backend (${got.join(' ')})`);
    const lines = (await closes(rt, (conns += 3))).slice(-3);
    t.same(lines.map(keyKind), ['source', 'source', 'source']);
    t.same(lines.map((l) => l['via']), ['balance', 'table', 'table']);
  });

  t.test('the log never shows a domain', async (t) => {
    await closes(rt, conns);
    const out = rt.stdout();
    for (const d of ['example.com', 'example.org', 'example.net', 'Example.COM']) t.notOk(out.includes(d), `no ${d} in the log`);
    t.ok(out.includes('"kind":"xmpp-to"'), 'but the key kind is there');
  });
});
