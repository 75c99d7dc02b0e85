// tap's `before` module (package.json "tap".before): empties the tether log dir and stamps the
// start of the run, so the `after` module (logs-after.ts) reads this run's logs only.
import { logDir, startRun } from '../helpers/tether-logs.js';

startRun(logDir());
