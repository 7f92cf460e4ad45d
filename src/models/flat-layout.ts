/**
 * Where each tensor of a variable list sits in one flat buffer (FusedAdam's moments, the step's
 * flat gradient): in list order, each segment padded to a multiple of 16 floats. On native
 * TensorFlow a 1-D slice that starts at such an offset returns a buffer aliasing its input
 * (tensorflow/core/kernels/slice_op.cc, IsDim0SliceAligned: 64-byte alignment), and a reshape
 * aliases too, so reading a variable's part of a flat update back costs an op dispatch, not a
 * copy. The padding stays zero.
 */
import * as tf from '@tensorflow/tfjs';

/** Floats per alignment unit: Eigen's 64-byte alignment (EIGEN_MAX_ALIGN_BYTES) for float32. */
export const FLAT_ALIGNMENT = 16;

/** One tensor's place in the flat buffer. */
export interface FlatSegment {
  readonly shape: readonly number[];
  readonly size: number;
  readonly offset: number;
  /** Size with its padding: the next segment starts at offset + padded. */
  readonly padded: number;
}

export class FlatLayout {
  readonly segments: readonly FlatSegment[];
  /** Floats in the flat buffer, padding included. */
  readonly size: number;

  constructor(shapes: readonly (readonly number[])[]) {
    let offset = 0;
    this.segments = shapes.map((shape) => {
      const size = tf.util.sizeFromShape([...shape]);
      const segment = { shape: [...shape], size, offset, padded: Math.ceil(size / FLAT_ALIGNMENT) * FLAT_ALIGNMENT };
      offset += segment.padded;
      return segment;
    });
    this.size = offset;
  }

  static of(tensors: readonly { readonly shape: readonly number[] }[]): FlatLayout {
    return new FlatLayout(tensors.map((t) => t.shape));
  }

  /** This layout with segment `index` given a new shape (a grown head) and the segments after it moved. */
  withShape(index: number, shape: readonly number[]): FlatLayout {
    return new FlatLayout(this.segments.map((s, i) => (i === index ? shape : s.shape)));
  }

  /** This layout with `shapes` appended. */
  extended(shapes: readonly (readonly number[])[]): FlatLayout {
    return new FlatLayout([...this.segments.map((s) => s.shape), ...shapes]);
  }

  /**
   * One concat of the tensors, flattened, in segment order: zeros for the padding, for undefined
   * tensors and for segments beyond the list. Call inside tf.tidy.
   */
  flatten(tensors: readonly (tf.Tensor | undefined)[]): tf.Tensor1D {
    const pieces: tf.Tensor[] = [];
    let zeros = 0;
    this.segments.forEach((s, i) => {
      const t = tensors[i];
      if (t === undefined) {
        zeros += s.padded;
        return;
      }
      if (zeros > 0) pieces.push(tf.zeros([zeros]));
      pieces.push(tf.reshape(t, [-1]));
      zeros = s.padded - s.size;
    });
    if (zeros > 0) pieces.push(tf.zeros([zeros]));
    return (pieces.length === 1 ? pieces[0] : tf.concat(pieces)) as tf.Tensor1D;
  }

  /**
   * Every segment of a flat buffer in its shape: one split at the padded offsets, then a slice
   * off the padding and a reshape (on native all three alias the buffer, since every piece starts
   * aligned: split_op.cc, slice_op.cc). Call inside tf.tidy.
   */
  pieces(flat: tf.Tensor1D): tf.Tensor[] {
    const parts = this.segments.length === 1 ? [flat] : tf.split(flat, this.segments.map((s) => s.padded));
    return this.segments.map((s, i) => {
      const part = parts[i] as tf.Tensor1D;
      return tf.reshape(s.padded > s.size ? tf.slice(part, 0, s.size) : part, [...s.shape]);
    });
  }
}
