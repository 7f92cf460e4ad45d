/**
 * Chooses the tensor backend of the process: TensorFlow native (GPU, then CPU), then WebAssembly,
 * then plain JavaScript. Everything in lifelong uses the single `@tensorflow/tfjs` instance
 * imported here; the native packages register their 'tensorflow' backend into that same engine
 * when required.
 */
import * as path from 'node:path';
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { BackendError } from '../core/errors';
import { installWasmMatMulFix, uninstallWasmMatMulFix } from './wasm-matmul';
import { installWasmSliceFix } from './wasm-slice';
import { installNativeStepFix } from './native-step';
import { assertGpuDriver, assertNativeAddonBuilt, NATIVE_ADDON_MISSING, NO_GPU_DRIVER } from './native-addon';

export type BackendName = 'auto' | 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';
/** A backend that can actually be running (every name but 'auto'). */
export type ConcreteBackendName = Exclude<BackendName, 'auto'>;

export const BACKEND_NAMES: readonly BackendName[] = ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];
/** The order in which 'auto' tries backends: fastest first. */
export const AUTO_ORDER: readonly ConcreteBackendName[] = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];

export interface SkippedBackend {
  readonly name: ConcreteBackendName;
  readonly reason: string;
}

export interface BackendSelection {
  readonly name: ConcreteBackendName;
  /** tf.getBackend() after selection: 'tensorflow', 'wasm' or 'cpu'. */
  readonly tfBackend: string;
  /** Backends 'auto' tried before this one, with the reason each was passed over. */
  readonly skipped: readonly SkippedBackend[];
}

export interface SelectBackendOptions {
  /**
   * Route wasm's transposed matmuls to XNNPACK (see wasm-matmul.ts). Default true; false also
   * removes a fix installed earlier in the process (the benchmark measures both).
   */
  readonly wasmMatMulFix?: boolean;
  /** Loads an optional native package; defaults to `require`. Tests substitute failures. */
  readonly loadModule?: (id: string) => unknown;
}

const NATIVE_PACKAGE: Record<'tensorflow-gpu' | 'tensorflow', string> = {
  'tensorflow-gpu': '@tensorflow/tfjs-node-gpu',
  tensorflow: '@tensorflow/tfjs-node',
};
/** Both native packages register their backend under this tfjs name. */
const NATIVE_TF_BACKEND = 'tensorflow';

type Attempt = { readonly ok: true } | { readonly ok: false; readonly reason: string; readonly cause?: unknown };

/** The fields tfjs-node's backend exposes about its device (not in tfjs-core's typings). */
interface NativeBackendDevice {
  readonly isGPUPackage?: boolean;
  readonly isUsingGpuDevice?: boolean;
}

function firstLine(message: string): string {
  return message.split('\n', 1)[0]?.trim() ?? '';
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** True when `err` says that `pkg` itself (not one of its dependencies) cannot be found. */
function isPackageMissing(err: unknown, pkg: string): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'MODULE_NOT_FOUND' && firstLine(errorMessage(err)).includes(`'${pkg}'`);
}

/**
 * TensorFlow's thread pools unless the environment sets them: one intra-op and one inter-op
 * thread. A training step is ~180 small ops; on 2 cores a second intra-op thread costs more in
 * hand-offs than it gains (docs/BENCHMARKS.md, "Native threads"), and the daemon's own work
 * (Kafka, metrics, the event loop) needs the other core.
 */
export const NATIVE_THREAD_DEFAULTS: Readonly<Record<string, string>> = {
  TF_NUM_INTRAOP_THREADS: '1',
  TF_NUM_INTEROP_THREADS: '1',
};

/** The variables of NATIVE_THREAD_DEFAULTS that `env` leaves unset (an explicit setting wins). */
export function nativeThreadSettings(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(Object.entries(NATIVE_THREAD_DEFAULTS).filter(([key]) => env[key] === undefined || env[key] === ''));
}

function defaultLoadModule(id: string): unknown {
  assertNativeAddonBuilt(id);
  if (id === NATIVE_PACKAGE['tensorflow-gpu']) assertGpuDriver();
  // TensorFlow reads its thread settings from the environment when the library creates its context.
  Object.assign(process.env, nativeThreadSettings(process.env));
  restoreUtilIsNullOrUndefined();
  // A plain require: the native packages are optional dependencies and may be absent.
  return require(id);
}

/**
 * tfjs-node 4.22 (the last release) calls `util.isNullOrUndefined` on every kernel with attributes
 * (matMul among them); Node 23 removed that long-deprecated function, so on Node 24 every such op
 * throws "isNullOrUndefined is not a function". Puts back the function, with Node's own
 * definition, where it is missing: tfjs-node reads it from the module object at each call.
 */
function restoreUtilIsNullOrUndefined(): void {
  const util = require('node:util') as { isNullOrUndefined?: (value: unknown) => boolean };
  util.isNullOrUndefined ??= (value: unknown): boolean => value === null || value === undefined;
}

/** Why requiring a native package failed, in the words the log and BackendError use. */
function loadFailureReason(err: unknown, pkg: string): string {
  if (isPackageMissing(err, pkg)) {
    return `${pkg} is not installed (optional dependency: 'npm ci --ignore-scripts' then 'npm run setup:native' installs it offline)`;
  }
  switch ((err as { code?: unknown } | null)?.code) {
    case NATIVE_ADDON_MISSING:
      return `${pkg} is installed without its native addon (npm run setup:native builds it)`;
    case NO_GPU_DRIVER:
      return `${pkg} not loaded: ${errorMessage(err)}`;
    default:
      return `${pkg} failed to load its native library: ${firstLine(errorMessage(err))}`;
  }
}

async function switchTo(tfName: string): Promise<Attempt> {
  let ok: boolean;
  try {
    ok = await tf.setBackend(tfName);
    if (ok) await tf.ready();
  } catch (err) {
    return { ok: false, reason: `tf.setBackend('${tfName}') threw: ${firstLine(errorMessage(err))}`, cause: err };
  }
  if (!ok) return { ok: false, reason: `tf.setBackend('${tfName}') could not initialise it (tfjs logged the cause)` };
  return { ok: true };
}

async function attemptNative(name: 'tensorflow-gpu' | 'tensorflow', loadModule: (id: string) => unknown): Promise<Attempt> {
  const pkg = NATIVE_PACKAGE[name];
  // Requiring a second native package would load a second TensorFlow library into the process:
  // reuse the 'tensorflow' backend once either package has registered it.
  if (tf.findBackendFactory(NATIVE_TF_BACKEND) == null) {
    try {
      loadModule(pkg);
    } catch (err) {
      return { ok: false, reason: loadFailureReason(err, pkg), cause: err };
    }
    if (tf.findBackendFactory(NATIVE_TF_BACKEND) == null) {
      return {
        ok: false,
        reason: `${pkg} loaded but registered no '${NATIVE_TF_BACKEND}' backend with this @tensorflow/tfjs (version mismatch or a second tfjs-core copy?)`,
      };
    }
  }
  const switched = await switchTo(NATIVE_TF_BACKEND);
  if (!switched.ok) return switched;
  if (name === 'tensorflow-gpu') {
    const device = tf.backend() as unknown as NativeBackendDevice;
    if (device.isGPUPackage === false) {
      return { ok: false, reason: `the loaded '${NATIVE_TF_BACKEND}' backend is the CPU build (${NATIVE_PACKAGE.tensorflow})` };
    }
    if (device.isUsingGpuDevice !== true) {
      return { ok: false, reason: `${pkg} loaded but TensorFlow found no usable GPU (setup:native --gpu's build uses the CUDA 12 libraries from PyPI; npm's prebuilt addon needs CUDA 11.2 and cuDNN 8.1)` };
    }
  }
  // Every ReLU's gradient calls Step, which tfjs-node builds from uploads and five ops.
  installNativeStepFix();
  return { ok: true };
}

/**
 * Points the wasm backend at the .wasm binaries in its own package folder. Under plain Node the
 * default (the folder of the loaded script) is the same place; naming it explicitly keeps the
 * binaries found if the script is ever loaded from elsewhere. Only possible before the wasm
 * backend is first initialised.
 */
function pointWasmAtItsBinaries(): void {
  if (tf.engine().registry['wasm'] != null) return;
  try {
    const dist = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
    if (fs.existsSync(path.join(dist, 'tfjs-backend-wasm.wasm'))) setWasmPaths(dist + path.sep);
  } catch {
    // A failed earlier initialisation makes setWasmPaths throw; setBackend will report the failure.
  }
}

async function attemptWasm(options: SelectBackendOptions): Promise<Attempt> {
  pointWasmAtItsBinaries();
  const switched = await switchTo('wasm');
  if (!switched.ok) return switched;
  if (options.wasmMatMulFix === false) uninstallWasmMatMulFix();
  else installWasmMatMulFix();
  // The optimizer splits one flat update per step (models/flat-layout.ts); as shipped, each piece copied the whole buffer.
  installWasmSliceFix();
  return { ok: true };
}

function attempt(name: ConcreteBackendName, options: SelectBackendOptions): Promise<Attempt> {
  switch (name) {
    case 'tensorflow-gpu':
    case 'tensorflow':
      return attemptNative(name, options.loadModule ?? defaultLoadModule);
    case 'wasm':
      return attemptWasm(options);
    case 'cpu':
      return switchTo('cpu');
  }
}

/**
 * Makes `name` the active tfjs backend ('auto': the first of AUTO_ORDER that loads) and reports
 * what it did through `log`. An explicit name that cannot be used throws a BackendError carrying
 * the underlying error as `cause`. Safe to call repeatedly in one process.
 */
export async function selectBackend(
  name: BackendName,
  log: (msg: string) => void,
  options: SelectBackendOptions = {},
): Promise<BackendSelection> {
  if (!BACKEND_NAMES.includes(name)) {
    throw new BackendError(`Unknown backend '${String(name)}'; expected one of ${BACKEND_NAMES.join(', ')}.`);
  }
  const candidates = name === 'auto' ? AUTO_ORDER : [name];
  const skipped: SkippedBackend[] = [];
  for (const candidate of candidates) {
    const result = await attempt(candidate, options);
    if (result.ok) {
      const selection: BackendSelection = { name: candidate, tfBackend: tf.getBackend(), skipped };
      log(`backend: using ${candidate} (tfjs backend '${selection.tfBackend}')`);
      return selection;
    }
    if (name !== 'auto') {
      throw new BackendError(`Backend '${candidate}' cannot be used: ${result.reason}.`, { cause: result.cause });
    }
    skipped.push({ name: candidate, reason: result.reason });
    log(`backend: skipped ${candidate}: ${result.reason}`);
  }
  throw new BackendError(
    `No backend could be loaded: ${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}.`,
  );
}
