import * as tf from '@tensorflow/tfjs';
import { StrategyError } from '../core/errors';
import { Rng } from '../core/rng';
import type { TensorSnapshot } from '../core/tensor-snapshot';
import { LabelSpace } from './label-space';
import { assignSnapshot, denseLayer, glorotKernel, snapshot, variableFrom, type DenseLayer } from './mlp';

/**
 * How earlier columns feed a new one (Rusu et al. 2016, eq. 1 and 2):
 * - 'linear': U h, the paper's basic lateral connection;
 * - 'mlp': the paper's non-linear adapter U relu(V (alpha h)), where alpha is a learned scalar
 *   (initialised small and random: it adjusts for the different scales of the inputs) and V
 *   projects the earlier columns' activations to a reduced width.
 */
export type AdapterKind = 'linear' | 'mlp';

export interface ColumnsShape {
  readonly inputSize: number;
  readonly hiddenLayers: readonly number[];
  /** Units each column's head starts with (0 = none: it grows with its labels). */
  readonly outputUnits: number;
  readonly adapter: AdapterKind;
  /**
   * Width V projects to in the 'mlp' adapter. 0 = the width of one column's source layer, the
   * paper's choice ("a projection onto an n_i dimensional subspace"): the adapter's hidden layer
   * then does not widen as columns are added, though V itself still grows with their number.
   */
  readonly adapterWidth: number;
}

/** The lateral connections into one layer of a column, from the layer below in every earlier column. */
export interface Lateral {
  /** e.g. "column-2.lateral-hidden-2" or "column-2.lateral-head". */
  readonly name: string;
  /** 'mlp' adapter only: the learned scale alpha of the lateral input. */
  readonly scale?: tf.Variable<tf.Rank.R0>;
  /** 'mlp' adapter only: V, from the concatenated earlier activations to the adapter width. */
  readonly project?: tf.Variable<tf.Rank.R2>;
  /** U, into the layer's units. One matrix over the concatenation of the earlier columns equals the paper's sum over j of U^(k:j) h^(j). */
  readonly kernel: tf.Variable<tf.Rank.R2>;
}

/** One column: an MLP of the pipeline's shape with its own head, labels and laterals. */
export interface Column {
  /** 0-based; named column-(index+1). */
  readonly index: number;
  readonly task: string;
  readonly labels: LabelSpace;
  /** hidden-1 .. hidden-L, then the head; the head is replaced, wider, when it grows (growHead). */
  readonly layers: DenseLayer[];
  /** laterals[i] feeds layers[i]; none into hidden-1 (its input is the shared input) and none in the first column. */
  readonly laterals: (Lateral | undefined)[];
}

/** Output units of a column's head (at least its labels). */
export function headUnitsOf(column: Column): number {
  return (column.layers[column.layers.length - 1] as DenseLayer).kernel.shape[1];
}

/** One column's forward pass: the output of each hidden layer, and the logits over its known labels. */
export interface ColumnPass {
  readonly hidden: readonly tf.Tensor2D[];
  readonly logits: tf.Tensor2D;
}

/**
 * What a column's laterals read: per layer i >= 1, the earlier columns' hidden layer i-1 side by
 * side (batch x sum of widths); null where the layer has no laterals.
 */
export type LateralInputs = readonly (tf.Tensor2D | null)[];

/**
 * The columns of a Progressive Network (Rusu et al. 2016). Column k computes
 * h_i^(k) = relu(W_i^(k) h_{i-1}^(k) + b_i^(k) + sum_{j<k} U_i^(k:j) a(h_{i-1}^(j))) for hidden
 * layers i >= 2 and for its head (without the relu); a is the identity or the non-linear adapter.
 * Columns are only ever appended; which variables train is the strategy's business.
 */
export class ProgressiveColumns {
  readonly columns: Column[] = [];
  private disposed = false;

  constructor(
    readonly shape: ColumnsShape,
    /** Seeds each column's initialisation with its index, so a restored copy grows the same columns. */
    public seed: number,
  ) {
    if (shape.hiddenLayers.length === 0) throw new StrategyError('the model needs at least one hidden layer');
    if (!Number.isInteger(shape.adapterWidth) || shape.adapterWidth < 0) throw new StrategyError(`adapterWidth must be a non-negative integer, got ${shape.adapterWidth}`);
  }

  get last(): Column | undefined {
    return this.columns[this.columns.length - 1];
  }

  columnOf(task: string): Column | undefined {
    return this.columns.find((c) => c.task === task);
  }

  /** Appends the column of a new task (at a task boundary). */
  addColumn(task: string, labels = new LabelSpace(), units = this.shape.outputUnits): Column {
    if (this.columnOf(task)) throw new StrategyError(`task "${task}" has a column already`);
    const index = this.columns.length;
    const rng = new Rng(this.seed + 7919 * (index + 1));
    const prefix = `column-${index + 1}`;
    const widths = [this.shape.inputSize, ...this.shape.hiddenLayers, units];
    const layers: DenseLayer[] = [];
    const laterals: (Lateral | undefined)[] = [];
    for (let i = 0; i + 1 < widths.length; i++) {
      const name = i + 2 < widths.length ? `hidden-${i + 1}` : 'head';
      const fanIn = widths[i] as number;
      const units = widths[i + 1] as number;
      layers.push(denseLayer(`${prefix}.${name}`, fanIn, units, rng));
      laterals.push(i === 0 || index === 0 ? undefined : this.lateral(`${prefix}.lateral-${name}`, rng, index * fanIn, fanIn, units));
    }
    const column: Column = { index, task, labels, layers, laterals };
    this.columns.push(column);
    return column;
  }

  /**
   * The forward pass of columns 0..upTo (inclusive); each reads the earlier ones' hidden layers.
   * Column k's pass depends on columns 0..k only, so it is the same however many columns follow.
   */
  forward(x: tf.Tensor2D, upTo: number): ColumnPass[] {
    const passes: ColumnPass[] = [];
    for (let k = 0; k <= upTo; k++) passes.push(this.forwardColumn(x, this.column(k), this.lateralInputs(passes)));
    return passes;
  }

  /** The inputs of the laterals of the column after `earlier` (the passes of every column before it). */
  lateralInputs(earlier: readonly ColumnPass[]): LateralInputs {
    if (earlier.length === 0) return [];
    const inputs: (tf.Tensor2D | null)[] = [null];
    this.shape.hiddenLayers.forEach((_, i) => {
      const sources = earlier.map((p) => p.hidden[i] as tf.Tensor2D);
      inputs.push(sources.length === 1 ? (sources[0] as tf.Tensor2D) : tf.concat(sources, 1));
    });
    return inputs;
  }

  /** One column's pass, given its lateral inputs (see lateralInputs). Logits cover its known labels (at least 1 unit). */
  forwardColumn(x: tf.Tensor2D, column: Column, lateral: LateralInputs): ColumnPass {
    const hidden: tf.Tensor2D[] = [];
    let a = x;
    let logits: tf.Tensor2D | undefined;
    column.layers.forEach((layer, i) => {
      // matMul then add, not a fused matMul+bias: the wasm fused kernel is wrong (docs/BENCHMARKS.md).
      let z = tf.add(tf.matMul(a, layer.kernel), layer.bias) as tf.Tensor2D;
      const lat = column.laterals[i];
      const input = lateral[i];
      if (lat) {
        if (!input) throw new StrategyError(`${lat.name} has no input`);
        z = tf.add(z, adapt(lat, input));
      }
      if (i + 1 < column.layers.length) {
        a = tf.relu(z);
        hidden.push(a);
      } else {
        logits = z;
      }
    });
    const n = Math.max(1, column.labels.size);
    const all = logits as tf.Tensor2D;
    return { hidden, logits: n === headUnitsOf(column) ? all : tf.slice(all, [0, 0], [-1, n]) };
  }

  /**
   * Widens a column's head to `units` (between gradient steps): the head layer and the lateral
   * into it (U; the adapter's alpha and V do not depend on the head's width) get new output
   * units, initialised as addColumn does (Glorot-uniform for the new width, zero bias) from a
   * seed of the column and its width, so a restored copy grows the same units. The old units
   * keep their weights. The variables are replaced: the caller widens the optimizer's moments
   * at their positions.
   */
  growHead(column: Column, units: number): void {
    const at = column.layers.length - 1;
    const head = column.layers[at] as DenseLayer;
    const from = head.kernel.shape[1];
    if (!Number.isInteger(units) || units <= from) throw new StrategyError(`column ${column.index + 1} has ${from} head units; it can only grow, not to ${units}`);
    const rng = new Rng(this.seed + 7919 * (column.index + 1) + 104729 * from);
    const widen = (kernel: tf.Variable<tf.Rank.R2>): tf.Variable<tf.Rank.R2> => {
      const [fanIn] = kernel.shape;
      const limit = Math.sqrt(6 / (fanIn + units));
      const wider = tf.tidy(() => tf.concat([kernel, tf.randomUniform([fanIn, units - from], -limit, limit, 'float32', rng.seed())], 1).variable(true)) as tf.Variable<tf.Rank.R2>;
      kernel.dispose();
      return wider;
    };
    const bias = tf.tidy(() => tf.concat([head.bias, tf.zeros([units - from])]).variable(true)) as tf.Variable<tf.Rank.R1>;
    head.bias.dispose();
    column.layers[at] = { name: head.name, kernel: widen(head.kernel), bias };
    const lat = column.laterals[at];
    if (lat) column.laterals[at] = { ...lat, kernel: widen(lat.kernel) };
  }

  /**
   * The variables trained for `column`: all of its own (layers and laterals), or with `headOnly`
   * only its head and the laterals into it, which no other column reads.
   */
  trainableVariables(column: Column, headOnly = false): tf.Variable[] {
    const from = headOnly ? column.layers.length - 1 : 0;
    const out: tf.Variable[] = [];
    for (let i = from; i < column.layers.length; i++) {
      const layer = column.layers[i] as DenseLayer;
      out.push(layer.kernel, layer.bias, ...lateralVariables(column.laterals[i]));
    }
    return out;
  }

  /** Every variable by a stable name ("column-1.hidden-1.kernel", "column-2.lateral-head.project"). */
  namedVariables(): Map<string, tf.Variable> {
    const named = new Map<string, tf.Variable>();
    for (const column of this.columns) {
      column.layers.forEach((layer, i) => {
        named.set(`${layer.name}.kernel`, layer.kernel);
        named.set(`${layer.name}.bias`, layer.bias);
        const lat = column.laterals[i];
        if (lat?.scale) named.set(`${lat.name}.scale`, lat.scale);
        if (lat?.project) named.set(`${lat.name}.project`, lat.project);
        if (lat) named.set(`${lat.name}.kernel`, lat.kernel);
      });
    }
    return named;
  }

  /** Parameters a column uses: every hidden layer and lateral, and the head's units for known labels. */
  columnParameterCount(column: Column): number {
    const n = column.labels.size;
    const head = column.layers.length - 1;
    let count = 0;
    column.layers.forEach((layer, i) => {
      const fanIn = layer.kernel.shape[0];
      count += i === head ? n * (fanIn + 1) : layer.kernel.size + layer.bias.size;
      const lat = column.laterals[i];
      if (lat) count += (lat.scale?.size ?? 0) + (lat.project?.size ?? 0) + (i === head ? lat.kernel.shape[0] * n : lat.kernel.size);
    });
    return count;
  }

  parameterCount(): number {
    return this.columns.reduce((sum, c) => sum + this.columnParameterCount(c), 0);
  }

  /** Each layer's and lateral's weights, flattened (kernel then bias; scale, V, U), for drift. */
  layerWeights(): Map<string, Float32Array> {
    const weights = new Map<string, Float32Array>();
    for (const column of this.columns) {
      column.layers.forEach((layer, i) => {
        weights.set(layer.name, flatten([layer.kernel, layer.bias]));
        const lat = column.laterals[i];
        if (lat) weights.set(lat.name, flatten(lateralVariables(lat)));
      });
    }
    return weights;
  }

  exportState(): { meta: { seed: number; columns: ColumnMeta[] }; tensors: Record<string, TensorSnapshot> } {
    const tensors: Record<string, TensorSnapshot> = {};
    for (const [name, v] of this.namedVariables()) tensors[`model.${name}`] = snapshot(v);
    return { meta: { seed: this.seed, columns: this.columns.map((c) => ({ task: c.task, labels: c.labels.toJSON(), units: headUnitsOf(c) })) }, tensors };
  }

  /** Replaces every column with those of an exported state (same shape). */
  importState(state: ReturnType<ProgressiveColumns['exportState']>): void {
    this.disposeColumns();
    this.seed = state.meta.seed;
    for (const c of state.meta.columns) this.addColumn(c.task, LabelSpace.fromJSON(c.labels), c.units ?? c.labels.capacity ?? this.shape.outputUnits);
    for (const [name, v] of this.namedVariables()) {
      const t = state.tensors[`model.${name}`];
      if (!t) throw new StrategyError(`checkpoint lacks tensor model.${name}`);
      assignSnapshot(v, t, `model.${name}`);
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.disposeColumns();
  }

  private column(k: number): Column {
    const column = this.columns[k];
    if (!column) throw new StrategyError(`there is no column ${k + 1} (${this.columns.length} columns)`);
    return column;
  }

  private disposeColumns(): void {
    for (const v of this.namedVariables().values()) v.dispose();
    this.columns.splice(0);
  }

  private lateral(name: string, rng: Rng, inputs: number, sourceWidth: number, units: number): Lateral {
    if (this.shape.adapter === 'linear') return { name, kernel: glorotKernel(rng, inputs, units) };
    const width = this.shape.adapterWidth > 0 ? this.shape.adapterWidth : sourceWidth;
    return {
      name,
      scale: variableFrom(tf.scalar(0.01 + 0.09 * rng.next())) as tf.Variable<tf.Rank.R0>,
      project: glorotKernel(rng, inputs, width),
      kernel: glorotKernel(rng, width, units),
    };
  }
}

/** A saved column: `units` is absent from checkpoints written before heads grew, whose labels kept it as `capacity`. */
export interface ColumnMeta {
  readonly task: string;
  readonly labels: { readonly labels: readonly string[]; readonly capacity?: number };
  readonly units?: number;
}

/** a(h): the lateral's contribution to its layer's pre-activation. */
function adapt(lat: Lateral, input: tf.Tensor2D): tf.Tensor2D {
  if (!lat.scale || !lat.project) return tf.matMul(input, lat.kernel);
  return tf.matMul(tf.relu(tf.matMul(tf.mul(input, lat.scale), lat.project)), lat.kernel);
}

function lateralVariables(lat: Lateral | undefined): tf.Variable[] {
  if (!lat) return [];
  return [...(lat.scale ? [lat.scale] : []), ...(lat.project ? [lat.project] : []), lat.kernel];
}

function flatten(variables: readonly tf.Variable[]): Float32Array {
  const parts = variables.map((v) => v.dataSync() as Float32Array);
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
