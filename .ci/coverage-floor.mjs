// Per-file coverage floor for lib/: reads the V8 coverage that the last `tap` run left in
// .tap/coverage (test processes and the tether children they spawn, mapped back to lib/*.ts
// through the build's source maps) and fails when any lib/ file's line coverage is below its
// floor in .ci/coverage-floors.json, or when a lib/ file has no coverage at all.
//   node .ci/coverage-floor.mjs            check, print the files below or near their floor
//   node .ci/coverage-floor.mjs --measure  print every file's figures as a floors table
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import c8 from 'c8';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const measure = process.argv.includes('--measure');
const floors = JSON.parse(readFileSync(path.join(root, '.ci/coverage-floors.json'), 'utf8'));

/** Every .ts file under lib/, relative to the root. */
function libFiles(dir = path.join(root, 'lib')) {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return libFiles(full);
    return name.endsWith('.ts') ? [path.relative(root, full)] : [];
  });
}

const report = new c8.Report({ reporter: [], tempDirectory: path.join(root, '.tap/coverage'), reportsDirectory: path.join(root, '.tap/report'), excludeNodeModules: true });
const map = await report.getCoverageMapFromAllCoverageFiles();
/** Line coverage per lib/ file, in percent, keyed by the path relative to the root. */
const lines = new Map();
for (const file of map.files()) {
  const rel = path.relative(root, file);
  if (!rel.startsWith('lib/') || !rel.endsWith('.ts')) continue;
  lines.set(rel, map.fileCoverageFor(file).toSummary().lines.pct);
}

const files = libFiles().sort();
if (measure) {
  const table = Object.fromEntries(files.map((f) => [f, lines.get(f) ?? 0]));
  process.stdout.write(`${JSON.stringify(table, null, 2)}\n`);
  process.exit(0);
}
const failures = [];
for (const f of files) {
  const floor = floors.files[f] ?? floors.default;
  const got = lines.get(f);
  // A floor of 0 is for a file of types only, which compiles to no code and so has no record.
  if (got === undefined) {
    if (floor > 0) failures.push(`${f}: no coverage recorded (floor ${floor}%)`);
  }
  else if (got < floor) failures.push(`${f}: ${got.toFixed(1)}% of lines, below its floor of ${floor}%`);
}
for (const f of Object.keys(floors.files)) if (!files.includes(f)) failures.push(`${f}: in .ci/coverage-floors.json but not in lib/ (remove it)`);
const total = [...lines.values()];
process.stdout.write(`coverage floor: ${files.length} lib/ files, lowest ${Math.min(...total).toFixed(1)}%, default floor ${floors.default}%\n`);
for (const m of failures) process.stdout.write(`coverage floor: FAIL ${m}\n`);
process.exit(failures.length === 0 ? 0 : 1);
