/**
 * Speed fix for the tfjs `wasm` backend's matrix multiplication.
 *
 * The wasm BatchMatMul and _FusedMatMul kernels (tfjs-backend-wasm 4.22, batch_mat_mul_impl.cc)
 * run XNNPACK only when neither input is transposed and both batch sizes are 1; everything else
 * falls to a blocked scalar loop, 8-25 times slower at MLP shapes. Every backward pass of a dense layer
 * multiplies by a transposed matrix (dX = dY·Wᵀ, dW = Xᵀ·dY), so training was dominated by that
 * loop. The replacement kernels below transpose the flagged inputs explicitly with the wasm
 * Transpose kernel (cheap: O(size) against O(m·k·n)) and call the original kernel untransposed,
 * which then takes the XNNPACK path.
 *
 * That loop is also wrong for _FusedMatMul: it adds the bias and clamps relu/relu6 once per
 * 48-wide block of the inner dimension. Unbatched transposed products now avoid it; batched fused
 * products (see xnnpackReachable) still reach it (docs/BENCHMARKS.md).
 *
 * The replacement is installed through tfjs's public kernel registry (getKernel /
 * unregisterKernel / registerKernel). That registry is tfjs's own process-wide state; this module
 * keeps none: whether the fix is installed is read back from the registered kernel config, which
 * also carries the original config so the fix can be removed again.
 */
import * as tf from '@tensorflow/tfjs';
// Registers the wasm backend and its kernels (the ones replaced here) with this tfjs instance.
import '@tensorflow/tfjs-backend-wasm';
import { BackendError } from '../core/errors';

const WASM = 'wasm';

/** The kernels replaced, by tfjs kernel name. */
const PATCHED_KERNELS: readonly string[] = [tf.BatchMatMul, tf._FusedMatMul];

/** A registered replacement: the usual config plus the original it wraps. */
interface PatchedKernelConfig extends tf.KernelConfig {
  readonly lifelongTransposedMatMulFix: true;
  readonly original: tf.KernelConfig;
}

/** The part of the wasm backend the kernel needs; typed locally because tfjs passes `{}`. */
interface DisposingBackend {
  disposeData(dataId: object, force?: boolean): boolean;
}

function isPatched(config: tf.KernelConfig | undefined): config is PatchedKernelConfig {
  return config !== undefined && (config as Partial<PatchedKernelConfig>).lifelongTransposedMatMulFix === true;
}

function registeredWasmKernel(kernelName: string): tf.KernelConfig {
  const config = tf.getKernel(kernelName, WASM);
  if (config === undefined) {
    throw new BackendError(
      `The wasm kernel ${kernelName} is not registered: import '@tensorflow/tfjs-backend-wasm' before installing the matmul fix.`,
    );
  }
  return config;
}

/** Permutation that swaps the two innermost axes of a tensor of the given rank. */
function swapInnerAxes(rank: number): number[] {
  const perm = Array.from({ length: rank }, (_, i) => i);
  perm[rank - 2] = rank - 1;
  perm[rank - 1] = rank - 2;
  return perm;
}

function batchSize(shape: readonly number[]): number {
  return tf.util.sizeFromShape(shape.slice(0, -2));
}

/**
 * Whether multiplying untransposed would reach XNNPACK. Batched products (batch > 1) take the
 * scalar loop whatever the flags, so transposing them first would only add work.
 */
function xnnpackReachable(inputs: tf.NamedTensorInfoMap, transposeB: boolean): boolean {
  const a = inputs['a'] as tf.TensorInfo;
  const b = inputs['b'] as tf.TensorInfo;
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return false; // the original kernel reports it
  if (batchSize(a.shape) !== 1 || batchSize(b.shape) !== 1) return false;
  // XNNPACK's fully-connected operator reads one bias value per output column; any other bias
  // shape goes to the original kernel unchanged.
  const bias = inputs['bias'] as tf.TensorInfo | undefined;
  const columns = b.shape[b.shape.length - (transposeB ? 2 : 1)];
  return bias == null || tf.util.sizeFromShape(bias.shape) === columns;
}

function makeKernelFunc(original: tf.KernelConfig): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const transposeA = attrs?.['transposeA'] === true;
    const transposeB = attrs?.['transposeB'] === true;
    if ((!transposeA && !transposeB) || !xnnpackReachable(inputs, transposeB)) {
      return original.kernelFunc({ inputs, backend, attrs });
    }

    // Looked up per call (a map lookup) rather than cached, so a re-registered Transpose is honoured.
    const transpose = registeredWasmKernel(tf.Transpose).kernelFunc;
    const intermediates: tf.TensorInfo[] = [];
    const explicitlyTransposed = (name: 'a' | 'b'): tf.TensorInfo => {
      const x = inputs[name] as tf.TensorInfo;
      const out = transpose({ inputs: { x }, backend, attrs: { perm: swapInnerAxes(x.shape.length) } }) as tf.TensorInfo;
      intermediates.push(out);
      return out;
    };
    try {
      const newInputs: tf.NamedTensorInfoMap = { ...inputs };
      if (transposeA) newInputs['a'] = explicitlyTransposed('a');
      if (transposeB) newInputs['b'] = explicitlyTransposed('b');
      return original.kernelFunc({
        inputs: newInputs,
        backend,
        attrs: { ...attrs, transposeA: false, transposeB: false },
      });
    } finally {
      // Kernel-internal buffers are not engine tensors: free them on the backend directly.
      for (const t of intermediates) (backend as DisposingBackend).disposeData(t.dataId);
    }
  };
}

/** True when the replacement kernels are registered for the wasm backend. */
export function isWasmMatMulFixInstalled(): boolean {
  return PATCHED_KERNELS.every((name) => isPatched(tf.getKernel(name, WASM)));
}

/**
 * Replaces the wasm BatchMatMul and _FusedMatMul kernels with versions that route transposed
 * products to XNNPACK. Idempotent; works before or after the wasm backend is initialised (the
 * original setup functions are kept, so a later tf.setBackend('wasm') still sets them up).
 * Requires '@tensorflow/tfjs-backend-wasm' to have been imported. Returns true if it changed
 * anything.
 */
export function installWasmMatMulFix(): boolean {
  let changed = false;
  for (const kernelName of PATCHED_KERNELS) {
    const current = registeredWasmKernel(kernelName);
    if (isPatched(current)) continue;
    const patched: PatchedKernelConfig = {
      kernelName,
      backendName: WASM,
      kernelFunc: makeKernelFunc(current),
      ...(current.setupFunc ? { setupFunc: current.setupFunc } : {}),
      ...(current.disposeFunc ? { disposeFunc: current.disposeFunc } : {}),
      lifelongTransposedMatMulFix: true,
      original: current,
    };
    tf.unregisterKernel(kernelName, WASM);
    tf.registerKernel(patched);
    changed = true;
  }
  return changed;
}

/** Restores the wasm kernels as shipped (used by the benchmark to measure both). Returns true if it changed anything. */
export function uninstallWasmMatMulFix(): boolean {
  let changed = false;
  for (const kernelName of PATCHED_KERNELS) {
    const current = tf.getKernel(kernelName, WASM);
    if (!isPatched(current)) continue;
    tf.unregisterKernel(kernelName, WASM);
    tf.registerKernel(current.original);
    changed = true;
  }
  return changed;
}
