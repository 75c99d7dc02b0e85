// Markdown tables for the README, made from the same data as --help and the error catalogue,
// so the docs cannot drift from the code (a test compares them). Pure.
import { ERROR_CODES } from '../errors.js';
import { OPTIONS } from '../options/table.js';

const cell = (s: string): string => s.replace(/\|/g, '\\|');

/** The README's option table. */
export function optionTableMarkdown(): string {
  const rows = OPTIONS.flatMap((r) =>
    r.flags === undefined ? [] : [`| \`${r.flags}\` | ${r.key === undefined ? '—' : `\`${r.key}\``} | ${r.defaultText ?? '—'} | ${cell(r.description)} |`],
  );
  return ['| Flag | Config key | Default | Meaning |', '|---|---|---|---|', ...rows].join('\n');
}

/** The README's error-code table. */
export function errorTableMarkdown(): string {
  const rows = Object.entries(ERROR_CODES).map(([code, meaning]) => `| \`${code}\` | ${cell(meaning)} |`);
  return ['| Code | Meaning |', '|---|---|', ...rows].join('\n');
}
