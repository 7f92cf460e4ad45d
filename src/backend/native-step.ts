/**
 * Speed fix for tfjs-node's Step kernel (4.22, kernels/Step.js), which the gradient of every ReLU
 * calls (dy * step(x)): it builds a tensor of ones of x's shape in JavaScript and uploads it, fills
 * another with alpha, and runs five TensorFlow ops, on every backward pass, for every hidden layer.
 * For alpha 0 on float32 the replacement runs four ops and uploads nothing:
 * Select(IsNan(x), x, Sign(Relu(x))), the same values (1 where x > 0, 0 where x <= 0, NaN kept).
 * Other cases go to the original kernel.
 *
 * Installed like the wasm fixes (wasm-matmul.ts), through tfjs's public kernel registry; the
 * registered config carries the original.
 */
import * as tf from '@tensorflow/tfjs';

const NATIVE = 'tensorflow';

/** The part of tfjs-node's backend the kernel uses; typed locally because tfjs passes `{}`. */
interface NativeOpBackend {
  readonly binding: { readonly TF_ATTR_TYPE: number; readonly TF_FLOAT: number };
  executeSingleOutput(name: string, attrs: readonly object[], inputs: readonly (tf.Tensor | tf.TensorInfo)[]): tf.Tensor;
}

interface PatchedKernelConfig extends tf.KernelConfig {
  readonly lifelongStepFix: true;
  readonly original: tf.KernelConfig;
}

function isPatched(config: tf.KernelConfig | undefined): config is PatchedKernelConfig {
  return config !== undefined && (config as Partial<PatchedKernelConfig>).lifelongStepFix === true;
}

function uploadFreeStep(original: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const x = args.inputs['x'] as tf.TensorInfo;
    if ((args.attrs?.['alpha'] ?? 0) !== 0 || x.dtype !== 'float32') return original.kernelFunc(args);
    const backend = args.backend as NativeOpBackend;
    const attrs = [{ name: 'T', type: backend.binding.TF_ATTR_TYPE, value: backend.binding.TF_FLOAT }];
    return tf.tidy(() => {
      const sign = backend.executeSingleOutput('Sign', attrs, [backend.executeSingleOutput('Relu', attrs, [x])]);
      return backend.executeSingleOutput('Select', attrs, [backend.executeSingleOutput('IsNan', attrs, [x]), x, sign]);
    });
  };
}

/** True when the replacement Step is registered for the native backend. */
export function isNativeStepFixInstalled(): boolean {
  return isPatched(tf.getKernel(tf.Step, NATIVE));
}

/** Registers the replacement Step for the native backend (once it is registered). Idempotent; returns true if it changed anything. */
export function installNativeStepFix(): boolean {
  const original = tf.getKernel(tf.Step, NATIVE);
  if (original === undefined || isPatched(original)) return false;
  const patched: PatchedKernelConfig = { ...original, kernelFunc: uploadFreeStep(original), lifelongStepFix: true, original };
  tf.unregisterKernel(tf.Step, NATIVE);
  tf.registerKernel(patched);
  return true;
}
