/**
 * Speed fix for the tfjs `wasm` backend's Slice and SplitV (tfjs-backend-wasm 4.22,
 * kernels/Slice.js): the shipped slice first reads its WHOLE input out of the wasm heap
 * (backend.readSync, a copy of every byte) and only then copies its part, and SplitV calls it
 * once per output. Splitting a flat buffer of the whole model (FusedAdam's update, flat-layout.ts)
 * into its variables copied the buffer once per variable (docs/BENCHMARKS.md, "Fewer ops per
 * step"). The replacements copy only the part, from a view of the heap; slices that are not one
 * contiguous run, and strings, go to the original kernel.
 *
 * Installed like the matmul fix (wasm-matmul.ts), through tfjs's public kernel registry; the
 * registered config carries the original, so whether it is installed is read back from tfjs.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { BackendError } from '../core/errors';

const WASM = 'wasm';

/** The part of the wasm backend the kernels use; typed locally because tfjs passes `{}`. */
interface WasmHeapBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): tf.TypedArray;
}

interface PatchedKernelConfig extends tf.KernelConfig {
  readonly lifelongPartialSliceFix: true;
  readonly original: tf.KernelConfig;
}

function isPatched(config: tf.KernelConfig | undefined): config is PatchedKernelConfig {
  return config !== undefined && (config as Partial<PatchedKernelConfig>).lifelongPartialSliceFix === true;
}

function originalKernel(kernelName: string): tf.KernelConfig {
  const config = tf.getKernel(kernelName, WASM);
  if (config === undefined) throw new BackendError(`The wasm kernel ${kernelName} is not registered: import '@tensorflow/tfjs-backend-wasm' before installing the slice fix.`);
  return isPatched(config) ? config.original : config;
}

/** A slice copying only its part when it is one contiguous run of a numeric tensor; else the original kernel. */
function partialSlice(original: tf.KernelFunc, x: tf.TensorInfo, begin: number[] | number, size: number[] | number | undefined, backend: object): tf.TensorInfo {
  const [begin_, size_] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size);
  if (x.dtype === 'string' || !tf.slice_util.isSliceContinous(x.shape, begin_, size_)) {
    return original({ inputs: { x }, attrs: { begin, size } as unknown as tf.NamedAttrMap, backend }) as tf.TensorInfo;
  }
  const heap = backend as unknown as WasmHeapBackend;
  const out = heap.makeOutput(size_, x.dtype);
  const offset = tf.slice_util.computeFlatOffset(begin_, tf.util.computeStrides(x.shape));
  heap.typedArrayFromHeap(out).set(heap.typedArrayFromHeap(x).subarray(offset, offset + tf.util.sizeFromShape(size_)));
  return out;
}

function patchedSlice(original: tf.KernelConfig): tf.KernelFunc {
  return ({ inputs, attrs, backend }) => {
    const { begin, size } = attrs as unknown as { begin: number[]; size: number[] };
    return partialSlice(original.kernelFunc, inputs['x'] as tf.TensorInfo, begin, size, backend);
  };
}

/** SplitV as shipped (kernels/SplitV.js), each output taken by the partial slice. */
function patchedSplitV(slice: tf.KernelConfig): tf.KernelFunc {
  return ({ inputs, attrs, backend }) => {
    const x = inputs['x'] as tf.TensorInfo;
    const { numOrSizeSplits, axis } = attrs as unknown as { numOrSizeSplits: number[] | number; axis: number };
    const at = tf.util.parseAxisParam(axis, x.shape)[0] as number;
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, at);
    const begin = new Array<number>(x.shape.length).fill(0);
    return sizes.map((s) => {
      const size = [...x.shape];
      size[at] = s;
      const part = partialSlice(slice.kernelFunc, x, [...begin], size, backend);
      begin[at] = (begin[at] as number) + s;
      return part;
    });
  };
}

/** True when the replacement kernels are registered for the wasm backend. */
export function isWasmSliceFixInstalled(): boolean {
  return [tf.Slice, tf.SplitV].every((name) => isPatched(tf.getKernel(name, WASM)));
}

/** Registers the partial Slice and SplitV for the wasm backend. Idempotent; returns true if it changed anything. */
export function installWasmSliceFix(): boolean {
  if (isWasmSliceFixInstalled()) return false;
  const slice = originalKernel(tf.Slice);
  const replacements: [tf.KernelConfig, tf.KernelFunc][] = [
    [slice, patchedSlice(slice)],
    [originalKernel(tf.SplitV), patchedSplitV(slice)],
  ];
  for (const [original, kernelFunc] of replacements) {
    const patched: PatchedKernelConfig = { ...original, kernelFunc, lifelongPartialSliceFix: true, original };
    tf.unregisterKernel(original.kernelName, WASM);
    tf.registerKernel(patched);
  }
  return true;
}
