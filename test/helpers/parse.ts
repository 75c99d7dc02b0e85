// The value parsers of lib/options/parse.ts as throwing functions, for tests that build fixtures
// from flag spellings (`parseBackend('a=10.0.0.1:143')`) or assert a rejection's message. The
// parsers themselves return a Parsed and never throw (test/options/parse.test.ts).
import * as P from '../../lib/options/parse.js';

/** A parser's rejection: its message is the parser's. */
export class ParseRejected extends Error {}

function unwrap<T>(parse: P.Parser<T>): (text: string) => T {
  return (text) => {
    const p = parse(text);
    if (!p.ok) throw new ParseRejected(p.message);
    return p.value;
  };
}

export const parseListen = unwrap(P.parseListen);
export const parseBackend = unwrap(P.parseBackend);
export const parseAffinityChain = unwrap(P.parseAffinityChain);
export const parseBalance = unwrap(P.parseBalance);
export const parseDuration = unwrap(P.parseDuration);
export const parseLogLevel = unwrap(P.parseLogLevel);
export const parseName = unwrap(P.parseName);
export const parseExpect = unwrap(P.parseExpect);
export const parseSendString = unwrap(P.parseSendString);
export const parseAdminAddress = unwrap(P.parseAdminAddress);
export const parseCidr = unwrap(P.parseCidr);
export const parseLookupUrl = unwrap(P.parseLookupUrl);
export const parseCount = (min: number, max: number): ((text: string) => number) => unwrap(P.parseCount(min, max));
