// The 3-way result of every wire parser (sslh's PROBE_AGAIN/NEXT/MATCH). Pure.
// "Not enough bytes yet" is a normal answer, not an error; parsers never throw on input.

export type Parse<T> =
  | { readonly kind: 'need-more' }
  | { readonly kind: 'not-mine'; readonly reason: string }
  | { readonly kind: 'match'; readonly value: T };

export const NEED_MORE: Parse<never> = Object.freeze({ kind: 'need-more' });

export function notMine(reason: string): Parse<never> {
  return { kind: 'not-mine', reason };
}

export function match<T>(value: T): Parse<T> {
  return { kind: 'match', value };
}
