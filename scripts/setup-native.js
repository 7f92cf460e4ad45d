// Installs the native TensorFlow backend without the internet host tfjs-node's install script
// downloads from: `npm run setup:native` (after `npm ci --ignore-scripts`).
//
// 1. The TensorFlow C library and its C headers come from TensorFlow's PyPI wheel (pip download,
//    no Python dependency at run time: libtensorflow_cc.so.2 exports the whole C API), extracted
//    once into a cache outside the repository (~/.cache/lifelong/, ~0.9 GB; the wheel is deleted).
// 2. @tensorflow/tfjs-node's deps/ points at the cache (symlinks), as its binding.gyp expects.
// 3. Its addon is built with node-gyp (the one npm ships) against those headers and Node's own
//    headers, and kept in the cache too: after the next `npm ci` this script only copies it back.
// 4. A child process requires the package and runs one op, so a broken build fails here, not in
//    the daemon.
// Every step is skipped when its output is already there, so a second run takes a second or two.
//
// `npm run setup:native -- --gpu` does the same for @tensorflow/tfjs-node-gpu with the GPU build of
// TensorFlow (the `tensorflow` wheel, ~570 MB) and the CUDA 12 libraries of its `and-cuda` extra
// (nvidia-* wheels, ~3 GB), which TensorFlow dlopens only when a GPU is present. Not part of CI.
//
// LIFELONG_NATIVE_CACHE overrides the cache folder (the Docker image keeps it inside the image).
const { spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const TENSORFLOW_VERSION = '2.21.0';
/** The wheel tag pip is asked for, whatever the local Python: the C library does not use Python. */
const WHEEL_PYTHON = '3.11';
const WHEEL_PLATFORM = 'manylinux_2_27_x86_64';
/** The nvidia-* wheels carry older manylinux tags; pip matches --platform tags exactly. */
const CUDA_PLATFORMS = ['manylinux_2_27_x86_64', 'manylinux_2_17_x86_64', 'manylinux2014_x86_64'];

const VARIANTS = {
  cpu: { pkg: '@tensorflow/tfjs-node', wheel: 'tensorflow-cpu', size: '~270 MB', cuda: [] },
  // The CUDA requirements of tensorflow==2.21.0's `and-cuda` extra (its METADATA).
  gpu: {
    pkg: '@tensorflow/tfjs-node-gpu',
    wheel: 'tensorflow',
    size: '~570 MB',
    cuda: [
      'nvidia-cublas-cu12>=12.5.3.2,<13.0', 'nvidia-cuda-cupti-cu12>=12.5.82,<13.0', 'nvidia-cuda-nvcc-cu12>=12.5.82,<13.0',
      'nvidia-cuda-nvrtc-cu12>=12.5.82,<13.0', 'nvidia-cuda-runtime-cu12>=12.5.82,<13.0', 'nvidia-cudnn-cu12>=9.3.0.75,<10.0',
      'nvidia-cufft-cu12>=11.2.3.61,<12.0', 'nvidia-curand-cu12>=10.3.6.82,<11.0', 'nvidia-cusolver-cu12>=11.6.3.83,<12.0',
      'nvidia-cusparse-cu12>=12.5.1.3,<13.0', 'nvidia-nccl-cu12>=2.27.7,<3.0', 'nvidia-nvjitlink-cu12>=12.5.82,<13.0',
    ],
  },
};

/** The wheel members the addon needs: the two libraries and the headers the C API includes. */
const LIBRARIES = ['libtensorflow_cc.so.2', 'libtensorflow_framework.so.2'];
const HEADER_PREFIXES = ['tensorflow/c/', 'tensorflow/core/platform/', 'tsl/platform/', 'xla/tsl/platform/', 'xla/tsl/c/'];

const root = path.resolve(__dirname, '..');
const cacheRoot = process.env.LIFELONG_NATIVE_CACHE || path.join(os.homedir(), '.cache', 'lifelong');

class SetupError extends Error {}

function log(message) {
  console.log(`setup:native: ${message}`);
}

/** Runs a command; returns its result, or undefined when the executable does not exist. */
function tryRun(command, args, options = {}) {
  const result = spawnSync(command, args, { encoding: 'utf8', ...options });
  if (result.error && result.error.code === 'ENOENT') return undefined;
  if (result.error) throw result.error;
  return result;
}

function run(command, args, what, options = {}) {
  const result = tryRun(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  if (result === undefined) throw new SetupError(`${what}: '${command}' is not installed`);
  if (result.status !== 0) {
    const output = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim().split('\n').slice(-25).join('\n');
    throw new SetupError(`${what} failed (${command} ${args.join(' ')} exited with ${result.status}):\n${output}`);
  }
  return result;
}

function requirePlatform() {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new SetupError(
      `only linux x64 is supported (TensorFlow's ${WHEEL_PLATFORM} wheel); this is ${process.platform} ${process.arch}. ` +
        'The daemon runs on the wasm backend without it.',
    );
  }
}

/** The Python that has pip: python3, else python. */
function findPython() {
  for (const python of ['python3', 'python']) {
    const result = tryRun(python, ['-m', 'pip', '--version']);
    if (result !== undefined && result.status === 0) return python;
  }
  const hasPython = ['python3', 'python'].some((p) => tryRun(p, ['--version'])?.status === 0);
  throw new SetupError(
    hasPython
      ? "pip is missing: the TensorFlow wheel is fetched with 'python3 -m pip download' (Debian: apt-get install python3-pip)"
      : 'Python 3 with pip is missing: pip fetches the TensorFlow wheel and node-gyp needs Python (Debian: apt-get install python3 python3-pip)',
  );
}

function requireCompiler() {
  const missing = ['make', 'g++'].filter((tool) => tryRun(tool, ['--version'])?.status !== 0);
  if (missing.length > 0) {
    throw new SetupError(`${missing.join(' and ')} missing: node-gyp compiles the addon with them (Debian: apt-get install g++ make)`);
  }
}

/** The folder whose include/node holds the headers of the running Node (node-gyp's --nodedir). */
function findNodeDir() {
  const candidates = [path.resolve(path.dirname(process.execPath), '..'), '/usr', '/usr/local'];
  const found = candidates.find((dir) => fs.existsSync(path.join(dir, 'include', 'node', 'node_api.h')));
  if (found === undefined) {
    throw new SetupError(`Node's headers are missing (looked for include/node/node_api.h under ${candidates.join(', ')})`);
  }
  return found;
}

function findNodeGyp() {
  const candidates = [];
  if (process.env.npm_execpath) candidates.push(path.join(path.dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  candidates.push(path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  const found = candidates.find((file) => fs.existsSync(file));
  if (found === undefined) throw new SetupError(`node-gyp is missing (it ships with npm; looked at ${candidates.join(', ')})`);
  return found;
}

function packageDir(pkg) {
  try {
    return path.dirname(require.resolve(`${pkg}/package.json`, { paths: [root] }));
  } catch {
    throw new SetupError(`${pkg} is not in node_modules: run 'npm ci --ignore-scripts' first (plain npm ci deletes it when its install script fails offline)`);
  }
}

/** Where tfjs-node looks for its addon (node-pre-gyp's rule: the highest N-API version it supports). */
function addonPath(dir) {
  const preGyp = require(require.resolve('@mapbox/node-pre-gyp', { paths: [dir] }));
  return preGyp.find(path.join(dir, 'package.json'));
}

/** Extracts the libraries and headers from the wheel into `target` (Python's zipfile: no unzip needed). */
function fetchTensorFlow(python, variant, target) {
  const download = fs.mkdtempSync(path.join(cacheRoot, 'download-'));
  try {
    log(`downloading ${variant.wheel}==${TENSORFLOW_VERSION} from PyPI (${variant.size})`);
    run(python, [
      '-m', 'pip', 'download', '--no-deps', '--no-cache-dir', '--only-binary=:all:',
      '--python-version', WHEEL_PYTHON, '--platform', WHEEL_PLATFORM,
      '--dest', download, `${variant.wheel}==${TENSORFLOW_VERSION}`,
    ], `pip download ${variant.wheel}==${TENSORFLOW_VERSION}`);
    const wheel = fs.readdirSync(download).find((f) => f.endsWith('.whl'));
    if (wheel === undefined) throw new SetupError(`pip download left no wheel in ${download}`);
    log(`extracting the C library and headers into ${target}`);
    const partial = `${target}.partial`;
    fs.rmSync(partial, { recursive: true, force: true });
    const extract = `
import os, shutil, sys, zipfile
wheel, out, libs, prefixes = sys.argv[1], sys.argv[2], sys.argv[3].split(','), tuple('tensorflow/include/' + p for p in sys.argv[4].split(','))
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        name = info.filename
        if name.endswith('/'):
            continue
        if name.startswith('tensorflow/') and name[len('tensorflow/'):] in libs:
            dest = os.path.join(out, 'lib', os.path.basename(name))
        elif name.startswith(prefixes):
            dest = os.path.join(out, 'include', name[len('tensorflow/include/'):])
        else:
            continue
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with z.open(info) as src, open(dest, 'wb') as dst:
            shutil.copyfileobj(src, dst, 1 << 22)
`;
    run(python, ['-c', extract, path.join(download, wheel), partial, LIBRARIES.join(','), HEADER_PREFIXES.join(',')], 'extracting the wheel');
    for (const lib of LIBRARIES) {
      if (!fs.existsSync(path.join(partial, 'lib', lib))) throw new SetupError(`the wheel ${wheel} has no tensorflow/${lib}`);
    }
    fs.rmSync(target, { recursive: true, force: true });
    fs.renameSync(partial, target);
  } finally {
    fs.rmSync(download, { recursive: true, force: true });
  }
}

/**
 * The CUDA libraries next to the TensorFlow libraries, where TensorFlow's RUNPATH
 * ($ORIGIN/../nvidia/<name>/lib) looks for them: `target`/nvidia/<name>/lib.
 */
function fetchCuda(python, variant, target) {
  const download = fs.mkdtempSync(path.join(cacheRoot, 'download-'));
  try {
    log(`downloading the CUDA libraries of ${variant.wheel}[and-cuda] from PyPI (${variant.cuda.length} nvidia-* wheels, ~3 GB)`);
    run(python, [
      '-m', 'pip', 'download', '--no-deps', '--no-cache-dir', '--only-binary=:all:', '--python-version', WHEEL_PYTHON,
      ...CUDA_PLATFORMS.flatMap((p) => ['--platform', p]), '--dest', download, ...variant.cuda,
    ], 'pip download (CUDA libraries)');
    const partial = `${target}.partial`;
    fs.rmSync(partial, { recursive: true, force: true });
    const extract = `
import os, shutil, sys, zipfile
out = sys.argv[1]
for wheel in sys.argv[2:]:
    with zipfile.ZipFile(wheel) as z:
        for info in z.infolist():
            name = info.filename
            if not name.startswith('nvidia/') or '/lib/' not in name or name.endswith('/'):
                continue
            dest = os.path.join(out, name)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with z.open(info) as src, open(dest, 'wb') as dst:
                shutil.copyfileobj(src, dst, 1 << 22)
`;
    const wheels = fs.readdirSync(download).filter((f) => f.endsWith('.whl')).map((f) => path.join(download, f));
    log(`extracting ${wheels.length} CUDA wheels into ${target}`);
    run(python, ['-c', extract, partial, ...wheels], 'extracting the CUDA wheels');
    fs.rmSync(target, { recursive: true, force: true });
    fs.renameSync(path.join(partial, 'nvidia'), target);
    fs.rmSync(partial, { recursive: true, force: true });
  } finally {
    fs.rmSync(download, { recursive: true, force: true });
  }
}

/** Makes `link` a symlink to `target` unless it already is one. */
function symlink(target, link) {
  try {
    if (fs.readlinkSync(link) === target) return;
  } catch {
    // Not a symlink (or absent): replaced below.
  }
  fs.rmSync(link, { recursive: true, force: true });
  fs.symlinkSync(target, link);
}

/**
 * deps/include and deps/lib as binding.gyp expects them. `-ltensorflow` links libtensorflow.so,
 * which resolves to libtensorflow_cc.so.2; the addon then records that soname and finds it
 * through its rpath ($ORIGIN/../../deps/lib).
 */
function linkDeps(dir, tensorflowDir) {
  const deps = path.join(dir, 'deps');
  const lib = path.join(deps, 'lib');
  fs.mkdirSync(lib, { recursive: true });
  symlink(path.join(tensorflowDir, 'include'), path.join(deps, 'include'));
  for (const name of LIBRARIES) symlink(path.join(tensorflowDir, 'lib', name), path.join(lib, name));
  symlink(path.join(tensorflowDir, 'lib', 'libtensorflow_cc.so.2'), path.join(lib, 'libtensorflow.so'));
  symlink(path.join(tensorflowDir, 'lib', 'libtensorflow_framework.so.2'), path.join(lib, 'libtensorflow_framework.so'));
  // $ORIGIN/../nvidia from deps/lib, should the loader take $ORIGIN from the link's folder.
  if (fs.existsSync(path.join(tensorflowDir, 'nvidia'))) symlink(path.join(tensorflowDir, 'nvidia'), path.join(deps, 'nvidia'));
}

function buildAddon(python, dir, addon) {
  requireCompiler();
  const napi = /napi-v(\d+)/.exec(addon)?.[1];
  if (napi === undefined) throw new SetupError(`cannot tell the N-API version from the addon path ${addon}`);
  const nodeDir = findNodeDir();
  log(`building ${path.relative(dir, addon)} with node-gyp (Node headers from ${nodeDir}, N-API ${napi})`);
  run(process.execPath, [
    findNodeGyp(), 'rebuild', `--nodedir=${nodeDir}`, `--python=${python}`,
    '--module_name=tfjs_binding', `--module_path=${path.dirname(addon)}`, `--napi_build_version=${napi}`,
  ], 'node-gyp (building the tfjs-node addon)', { cwd: dir, env: { ...process.env, npm_config_nodedir: nodeDir } });
  if (!fs.existsSync(addon)) throw new SetupError(`node-gyp finished but ${addon} does not exist`);
}

function sameFile(a, b) {
  if (!fs.existsSync(a) || !fs.existsSync(b)) return false;
  const hash = (file) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  return hash(a) === hash(b);
}

/** Requires the package in a fresh process and runs one op on its backend. */
function verify(pkg) {
  const check = `
const tf = require(${JSON.stringify(pkg)});
const sum = tf.tidy(() => tf.add(tf.tensor1d([1, 2]), tf.tensor1d([3, 4])).arraySync());
if (tf.getBackend() !== 'tensorflow' || sum.join() !== '4,6') throw new Error('backend ' + tf.getBackend() + ' computed ' + sum);
const device = tf.backend().isGPUPackage ? (tf.backend().isUsingGpuDevice ? ', on the GPU' : ', no GPU visible: runs on the CPU') : '';
console.log('TensorFlow ' + tf.backend().binding.TF_Version + device);
`;
  const result = run(process.execPath, ['-e', check], `loading ${pkg}`, { cwd: root, env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' } });
  return result.stdout.trim().split('\n').pop();
}

function setup(variantName) {
  const variant = VARIANTS[variantName];
  requirePlatform();
  const dir = packageDir(variant.pkg);
  const version = require(path.join(dir, 'package.json')).version;
  fs.mkdirSync(cacheRoot, { recursive: true });

  const tensorflowDir = path.join(cacheRoot, `${variant.wheel}-${TENSORFLOW_VERSION}`);
  const complete = LIBRARIES.every((lib) => fs.existsSync(path.join(tensorflowDir, 'lib', lib))) &&
    fs.existsSync(path.join(tensorflowDir, 'include', 'tensorflow', 'c', 'c_api.h'));
  let python;
  if (complete) {
    log(`TensorFlow ${TENSORFLOW_VERSION} C library: cached in ${tensorflowDir}`);
  } else {
    python = findPython();
    fetchTensorFlow(python, variant, tensorflowDir);
  }
  if (variant.cuda.length > 0) {
    const cudaDir = path.join(tensorflowDir, 'nvidia');
    if (fs.existsSync(cudaDir)) log(`CUDA libraries: cached in ${cudaDir}`);
    else fetchCuda(python ?? (python = findPython()), variant, cudaDir);
  }
  linkDeps(dir, tensorflowDir);

  const addon = addonPath(dir);
  const cachedAddon = path.join(cacheRoot, 'addons', `${variant.pkg.replace('/', '+')}-${version}-tf${TENSORFLOW_VERSION}`, path.basename(path.dirname(addon)), path.basename(addon));
  if (fs.existsSync(cachedAddon)) {
    if (!sameFile(cachedAddon, addon)) {
      fs.mkdirSync(path.dirname(addon), { recursive: true });
      fs.copyFileSync(cachedAddon, addon);
      log(`addon: copied from the cache (${cachedAddon})`);
    } else {
      log('addon: already in place');
    }
  } else {
    buildAddon(python ?? findPython(), dir, addon);
    fs.mkdirSync(path.dirname(cachedAddon), { recursive: true });
    fs.copyFileSync(addon, cachedAddon);
  }
  log(`${variant.pkg} ${version} loads: ${verify(variant.pkg)}`);
}

const started = Date.now();
const args = process.argv.slice(2);
const unknown = args.filter((a) => a !== '--gpu');
if (unknown.length > 0) {
  console.error(`setup:native: unknown argument ${unknown.join(' ')} (usage: npm run setup:native [-- --gpu])`);
  process.exit(2);
}
try {
  const gpu = args.includes('--gpu');
  setup(gpu ? 'gpu' : 'cpu');
  log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s; the 'auto' backend now ${gpu ? 'tries tensorflow-gpu first' : 'picks tensorflow'}`);
} catch (err) {
  if (!(err instanceof SetupError)) throw err;
  console.error(`setup:native: ${err.message}`);
  process.exit(1);
}
