// Skips for a missing tool, made honest: on a developer's machine a test that needs a tool the
// machine lacks (python3, systemd-notify, nginx…) skips and says why; under CI=true it fails
// instead, since .ci/run installs every tool the suite uses and a skip there would hide a hole.
import t from 'tap';

/**
 * The `skip` option for a test that needs a tool: `reason` (why it cannot run here) or false.
 * Under CI=true a reason is reported as a failure (through `fail`, tap's by default) and the
 * test is still skipped, so it fails once with the reason rather than on a spawn error.
 */
export function needTool(
  reason: string | false | undefined,
  opts: { readonly env?: NodeJS.ProcessEnv; readonly fail?: (message: string) => void } = {},
): string | false {
  if (reason === false || reason === undefined) return false;
  if ((opts.env ?? process.env)['CI'] === 'true') {
    (opts.fail ?? ((m: string) => t.fail(m)))(`CI=true, but ${reason} (.ci/run installs it; a skip here would hide a test)`);
  }
  return reason;
}
