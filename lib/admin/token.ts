// I/O. The admin API's bearer token, read from --admin-token-file (admin-token-file in a config
// file) at start and on each reload. Shared by the start (cli/main.ts) and `tether check`
// (runtime/check.ts), so both give an operator the same words.
import { TetherError } from '../errors.js';
import { describeFileError, readFileBounded } from '../files/read.js';

/** The largest admin token file read: a token is tens of bytes. */
export const MAX_TOKEN_BYTES = 4096;

/** Reads the admin bearer token (surrounding whitespace dropped). Rejects with TETHER_ERR_CONFIG. */
export async function readToken(file: string): Promise<string> {
  let text: string;
  try {
    text = (await readFileBounded(file, { maxBytes: MAX_TOKEN_BYTES })).toString('utf8');
  } catch (e) {
    throw new TetherError('TETHER_ERR_CONFIG', `cannot read --admin-token-file ${file}: ${describeFileError(e)}`, { cause: e });
  }
  const token = text.trim();
  if (token === '' || /\s/.test(token)) throw new TetherError('TETHER_ERR_CONFIG', `--admin-token-file ${file}: expected one token with no spaces`);
  return token;
}
