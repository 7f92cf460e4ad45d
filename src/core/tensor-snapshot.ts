/**
 * A serialisable tensor: shape plus row-major float32 data. Plain data, so that models, strategies
 * and checkpoints share it without importing one another.
 */
export interface TensorSnapshot {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}
