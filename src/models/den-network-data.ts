/**
 * The DEN network as plain JS data (see den-network.ts): structure changes are made on these
 * copies at task and phase boundaries, then written back as new variables. The edits live in
 * den-selection, den-expansion, den-split and den-pruning; each keeps every stage's function
 * except where it says not.
 */
import * as tf from '@tensorflow/tfjs';
import { StrategyError } from '../core/errors';
import type { Rng } from '../core/rng';

/** A row-major float matrix on the JS side, for structural edits. */
export class Matrix {
  constructor(
    readonly rows: number,
    readonly cols: number,
    readonly data: Float32Array = new Float32Array(rows * cols),
  ) {
    if (data.length !== rows * cols) throw new StrategyError(`matrix data has ${data.length} values, expected ${rows}x${cols}`);
  }

  get(i: number, j: number): number {
    return this.data[i * this.cols + j] as number;
  }

  set(i: number, j: number, v: number): void {
    this.data[i * this.cols + j] = v;
  }

  /** This matrix with `n` columns appended, filled with fill(row, newColumn). */
  withColumns(n: number, fill: (i: number, c: number) => number): Matrix {
    const out = new Matrix(this.rows, this.cols + n);
    for (let i = 0; i < this.rows; i++) {
      out.data.set(this.data.subarray(i * this.cols, (i + 1) * this.cols), i * out.cols);
      for (let c = 0; c < n; c++) out.data[i * out.cols + this.cols + c] = fill(i, c);
    }
    return out;
  }

  /** This matrix with `n` rows appended, filled with fill(newRow, column). */
  withRows(n: number, fill: (r: number, j: number) => number): Matrix {
    const out = new Matrix(this.rows + n, this.cols);
    out.data.set(this.data);
    for (let r = 0; r < n; r++) for (let j = 0; j < this.cols; j++) out.data[(this.rows + r) * this.cols + j] = fill(r, j);
    return out;
  }

  withoutColumns(drop: ReadonlySet<number>): Matrix {
    if (drop.size === 0) return this;
    const keep = range(this.cols).filter((j) => !drop.has(j));
    const out = new Matrix(this.rows, keep.length);
    for (let i = 0; i < this.rows; i++) keep.forEach((j, c) => (out.data[i * out.cols + c] = this.get(i, j)));
    return out;
  }

  withoutRows(drop: ReadonlySet<number>): Matrix {
    if (drop.size === 0) return this;
    const keep = range(this.rows).filter((i) => !drop.has(i));
    const out = new Matrix(keep.length, this.cols);
    keep.forEach((i, r) => out.data.set(this.data.subarray(i * this.cols, (i + 1) * this.cols), r * this.cols));
    return out;
  }
}

/** One hidden layer as plain data. Unit j serves stages added[j] <= s < retired[j]. */
export interface LayerData {
  kernel: Matrix;
  bias: Float32Array;
  /** 1 where the connection exists, 0 where it was dropped or joins units that never serve a stage together. */
  mask: Matrix;
  added: number[];
  /** Infinity while the unit serves every later stage; a stage index once a split copy replaced it. */
  retired: number[];
}

export interface HeadData {
  kernel: Matrix;
  bias: Float32Array;
}

/** The whole network as plain data, for structural edits. */
export interface NetworkData {
  readonly layers: LayerData[];
  readonly heads: Map<string, HeadData>;
}

/** Per-unit timestamps of a layer. */
export interface UnitTimes {
  readonly added: readonly number[];
  readonly retired: readonly number[];
}

/** Whether a unit serves a stage: added no later, not yet replaced by a split copy. */
export function serves(layer: UnitTimes, unit: number, stage: number): boolean {
  return (layer.added[unit] as number) <= stage && stage < (layer.retired[unit] as number);
}

/** Whether two units (of adjacent layers) ever serve one stage together. */
export function coServe(below: UnitTimes, i: number, above: UnitTimes, j: number): boolean {
  return Math.max(below.added[i] as number, above.added[j] as number) < Math.min(below.retired[i] as number, above.retired[j] as number);
}

/** A layer's weights when the current task began, for drift and the pull towards them. */
export interface LayerSnapshot {
  readonly kernel: Matrix;
  readonly bias: Float32Array;
}

/** A snapshot as a matrix (2-D) or vector (1-D). */
export function matrixOf(t: tf.Tensor): Matrix {
  if (t.shape.length !== 2) throw new StrategyError(`expected a matrix, got shape [${t.shape}]`);
  return new Matrix(t.shape[0] as number, t.shape[1] as number, Float32Array.from(t.dataSync() as Float32Array));
}

/** A draw from U(-limit, limit), the Glorot-uniform initialisation. */
export function uniform(rng: Rng, limit: number): number {
  return (rng.next() * 2 - 1) * limit;
}

export function concat(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

export function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
