import * as tf from '@tensorflow/tfjs';
import { StrategyError } from '../core/errors';
import { Rng } from '../core/rng';
import type { TensorSnapshot } from '../core/tensor-snapshot';
import { Matrix, serves, uniform, type HeadData, type LayerData, type NetworkData } from './den-network-data';
import { LabelSpace } from './label-space';
import { snapshot, variableFrom } from './mlp';

/**
 * The growing network of Dynamically Expandable Networks (Yoon et al. 2018): a ReLU MLP whose
 * hidden layers gain units (expansion, split/duplication) and lose them (pruning), with a
 * timestamp interval per unit so that each task keeps computing with the units it was learned with.
 *
 * Structure changes are made on plain JS copies (NetworkData) at task and phase boundaries, then
 * written back as new variables; nothing changes shape while an optimizer is training.
 */

/** A hidden layer's variables plus its per-unit timestamps and connection mask. */
export interface DenLayer {
  readonly name: string;
  readonly kernel: tf.Variable<tf.Rank.R2>;
  readonly bias: tf.Variable<tf.Rank.R1>;
  readonly mask: Matrix;
  readonly added: readonly number[];
  readonly retired: readonly number[];
}

/**
 * An output head. `stage` is the stage its task was learned at (task-incremental: one head per
 * task); undefined for the head shared by every task (domain- and class-incremental).
 */
export interface DenHead {
  readonly key: string;
  readonly labels: LabelSpace;
  stage: number | undefined;
  kernel: tf.Variable<tf.Rank.R2>;
  bias: tf.Variable<tf.Rank.R1>;
}

export interface DenShape {
  readonly inputSize: number;
  readonly hiddenLayers: readonly number[];
  readonly outputUnits: number;
}

export class DenNetwork {
  readonly layers: DenLayer[] = [];
  private readonly heads = new Map<string, DenHead>();
  private hiddenParameters = 0;
  private cachedSparsity: number[] = [];
  private disposed = false;

  constructor(
    readonly shape: DenShape,
    seed: number,
  ) {
    if (shape.hiddenLayers.length === 0) throw new StrategyError('the model needs at least one hidden layer');
    const rng = new Rng(seed);
    let fanIn = shape.inputSize;
    const layers: LayerData[] = shape.hiddenLayers.map((units) => {
      const limit = Math.sqrt(6 / (fanIn + units));
      const kernel = new Matrix(fanIn, units);
      for (let i = 0; i < kernel.data.length; i++) kernel.data[i] = uniform(rng, limit);
      const layer: LayerData = { kernel, bias: new Float32Array(units), mask: new Matrix(fanIn, units, new Float32Array(fanIn * units).fill(1)), added: Array(units).fill(0), retired: Array(units).fill(Infinity) };
      fanIn = units;
      return layer;
    });
    this.write({ layers, heads: new Map() });
  }

  units(layer: number): number {
    return (this.layers[layer] as DenLayer).added.length;
  }

  /** Width of the last hidden layer (the heads' fan-in). */
  get featureSize(): number {
    return this.units(this.layers.length - 1);
  }

  hasHead(key: string): boolean {
    return this.heads.has(key);
  }

  head(key: string): DenHead {
    const head = this.heads.get(key);
    if (!head) throw new StrategyError(`the model has no head "${key}"`);
    return head;
  }

  headList(): DenHead[] {
    return [...this.heads.values()];
  }

  /**
   * Adds a zero-initialised head: DEN's selection phase then trains it with L1, so only the rows
   * of units the task needs leave zero (its breadth-first search starts from those).
   */
  addHead(key: string, stage: number | undefined, labels = new LabelSpace(), units = this.shape.outputUnits): DenHead {
    if (this.heads.has(key)) throw new StrategyError(`head "${key}" exists already`);
    const head: DenHead = {
      key,
      labels,
      stage,
      kernel: variableFrom(tf.zeros([this.featureSize, units])) as tf.Variable<tf.Rank.R2>,
      bias: variableFrom(tf.zeros([units])) as tf.Variable<tf.Rank.R1>,
    };
    this.heads.set(key, head);
    return head;
  }

  /**
   * Widens a head to `units` (between gradient steps) with zero units, as addHead initialises a
   * head; the old units keep their weights. Its kernel and bias are replaced: the strategy widens
   * the optimizer's moments and the head's train mask with them.
   */
  growHead(key: string, units: number): void {
    const head = this.head(key);
    const from = head.kernel.shape[1];
    if (!Number.isInteger(units) || units <= from) throw new StrategyError(`head "${key}" has ${from} units; it can only grow, not to ${units}`);
    const { kernel, bias } = head;
    head.kernel = tf.tidy(() => tf.pad(kernel, [[0, 0], [0, units - from]]).variable(true)) as tf.Variable<tf.Rank.R2>;
    head.bias = tf.tidy(() => tf.pad(bias, [[0, units - from]]).variable(true)) as tf.Variable<tf.Rank.R1>;
    kernel.dispose();
    bias.dispose();
  }

  /** Per hidden layer, 1 for the units serving `stage` and 0 for the others (1 x units). Caller disposes. */
  unitMasks(stage: number): tf.Tensor2D[] {
    return this.layers.map((layer) => tf.tensor2d(Float32Array.from(layer.added, (_, j) => (serves(layer, j, stage) ? 1 : 0)), [1, layer.added.length]));
  }

  /** Logits over the head's known labels, computed with the units of `unitMasks` only. */
  forward(x: tf.Tensor2D, head: DenHead, unitMasks: readonly tf.Tensor2D[]): tf.Tensor2D {
    let a = x;
    this.layers.forEach((layer, i) => {
      a = tf.mul(tf.relu(tf.add(tf.matMul(a, layer.kernel), layer.bias)), unitMasks[i] as tf.Tensor2D) as tf.Tensor2D;
    });
    const n = Math.max(1, head.labels.size);
    const width = head.kernel.shape[1];
    const kernel = n === width ? head.kernel : tf.slice(head.kernel, [0, 0], [-1, n]);
    const bias = n === width ? head.bias : tf.slice(head.bias, [0], [n]);
    return tf.add(tf.matMul(a, kernel), bias) as tf.Tensor2D;
  }

  /** Hidden kernels and biases, then heads, by a stable name ("hidden-1.kernel", "head-t1.bias"). */
  namedVariables(): Map<string, tf.Variable> {
    const named = new Map<string, tf.Variable>();
    for (const layer of this.layers) {
      named.set(`${layer.name}.kernel`, layer.kernel);
      named.set(`${layer.name}.bias`, layer.bias);
    }
    for (const head of this.heads.values()) {
      named.set(`head-${head.key}.kernel`, head.kernel);
      named.set(`head-${head.key}.bias`, head.bias);
    }
    return named;
  }

  /**
   * Parameters in use: live connections (mask 1) and biases of the hidden layers, plus each head's
   * known labels over the units that serve its stage. The hidden part is cached at structural writes.
   */
  parameterCount(): number {
    const last = this.layers[this.layers.length - 1] as DenLayer;
    let heads = 0;
    // Heads gain labels between structural writes, so their part is counted live (no download).
    for (const head of this.heads.values()) {
      const stage = head.stage;
      const rows = stage === undefined ? last.added.length : last.added.filter((_, j) => serves(last, j, stage)).length;
      heads += head.labels.size * (rows + 1);
    }
    return this.hiddenParameters + heads;
  }

  /** Per hidden layer, the fraction of kernel entries that are zero, as of the last structural write. */
  sparsity(): readonly number[] {
    return this.cachedSparsity;
  }

  /** Each layer's weights (kernel then bias, flattened), for semantic drift. */
  layerWeights(): Map<string, Float32Array> {
    const weights = new Map<string, Float32Array>();
    const add = (name: string, kernel: tf.Tensor, bias: tf.Tensor) => {
      const k = kernel.dataSync() as Float32Array;
      const b = bias.dataSync() as Float32Array;
      const both = new Float32Array(k.length + b.length);
      both.set(k);
      both.set(b, k.length);
      weights.set(name, both);
    };
    for (const layer of this.layers) add(layer.name, layer.kernel, layer.bias);
    for (const head of this.heads.values()) add(`head-${head.key}`, head.kernel, head.bias);
    return weights;
  }

  /** A plain copy of every weight, mask and timestamp (downloads the variables). */
  read(): NetworkData {
    return {
      layers: this.layers.map((l) => ({
        kernel: new Matrix(l.kernel.shape[0], l.kernel.shape[1], Float32Array.from(l.kernel.dataSync() as Float32Array)),
        bias: Float32Array.from(l.bias.dataSync() as Float32Array),
        mask: new Matrix(l.mask.rows, l.mask.cols, Float32Array.from(l.mask.data)),
        added: [...l.added],
        retired: [...l.retired],
      })),
      heads: new Map(
        [...this.heads.values()].map((h) => [h.key, { kernel: new Matrix(h.kernel.shape[0], h.kernel.shape[1], Float32Array.from(h.kernel.dataSync() as Float32Array)), bias: Float32Array.from(h.bias.dataSync() as Float32Array) }]),
      ),
    };
  }

  /** Replaces every variable with `data` (new shapes allowed) and frees the old ones. */
  write(data: NetworkData): void {
    this.assertLive();
    let fanIn = this.shape.inputSize;
    data.layers.forEach((l, i) => {
      const units = l.added.length;
      if (l.kernel.rows !== fanIn || l.kernel.cols !== units || l.bias.length !== units || l.retired.length !== units || l.mask.rows !== fanIn || l.mask.cols !== units) {
        throw new StrategyError(`hidden-${i + 1}: inconsistent shapes (kernel ${l.kernel.rows}x${l.kernel.cols}, ${units} units, fan-in ${fanIn})`);
      }
      fanIn = units;
    });
    if (data.layers.length !== this.shape.hiddenLayers.length) throw new StrategyError(`expected ${this.shape.hiddenLayers.length} hidden layers, got ${data.layers.length}`);
    for (const [key, h] of data.heads) {
      const head = this.head(key);
      if (h.kernel.rows !== fanIn || h.kernel.cols < head.labels.size || h.bias.length !== h.kernel.cols) {
        throw new StrategyError(`head ${key}: kernel ${h.kernel.rows}x${h.kernel.cols} and ${h.bias.length} biases, expected ${fanIn} rows and a unit per label (${head.labels.size})`);
      }
    }
    for (const key of this.heads.keys()) if (!data.heads.has(key)) throw new StrategyError(`network data lacks head "${key}"`);
    const old: tf.Variable[] = [...this.namedVariables().values()];
    this.layers.splice(
      0,
      this.layers.length,
      ...data.layers.map((l, i) => ({
        name: `hidden-${i + 1}`,
        kernel: variableFrom(tf.tensor2d(l.kernel.data, [l.kernel.rows, l.kernel.cols])) as tf.Variable<tf.Rank.R2>,
        bias: variableFrom(tf.tensor1d(l.bias)) as tf.Variable<tf.Rank.R1>,
        mask: new Matrix(l.mask.rows, l.mask.cols, Float32Array.from(l.mask.data)),
        added: [...l.added],
        retired: [...l.retired],
      })),
    );
    for (const [key, h] of data.heads) {
      const head = this.head(key);
      head.kernel = variableFrom(tf.tensor2d(h.kernel.data, [h.kernel.rows, h.kernel.cols])) as tf.Variable<tf.Rank.R2>;
      head.bias = variableFrom(tf.tensor1d(h.bias)) as tf.Variable<tf.Rank.R1>;
    }
    for (const v of old) v.dispose();
    this.refreshCaches(data);
  }

  exportState(): { meta: DenNetworkMeta; tensors: Record<string, TensorSnapshot> } {
    const tensors: Record<string, TensorSnapshot> = {};
    for (const [name, v] of this.namedVariables()) tensors[`model.${name}`] = snapshot(v);
    for (const layer of this.layers) tensors[`model.${layer.name}.mask`] = { shape: [layer.mask.rows, layer.mask.cols], data: Float32Array.from(layer.mask.data) };
    return {
      meta: {
        layers: this.layers.map((l) => ({ added: [...l.added], retired: l.retired.map((r) => (r === Infinity ? null : r)) })),
        heads: [...this.heads.values()].map((h) => ({ key: h.key, labels: h.labels.toJSON(), stage: h.stage ?? null })),
      },
      tensors,
    };
  }

  /** Rebuilds layers and heads, grown structure included, from an exported state. */
  importState(meta: DenNetworkMeta, tensors: Readonly<Record<string, TensorSnapshot>>): void {
    this.assertLive();
    const tensor = (name: string): TensorSnapshot => {
      const t = tensors[`model.${name}`];
      if (!t) throw new StrategyError(`checkpoint lacks tensor model.${name}`);
      return t;
    };
    const matrix = (name: string): Matrix => {
      const t = tensor(name);
      if (t.shape.length !== 2) throw new StrategyError(`checkpoint tensor model.${name} has shape [${t.shape}], expected a matrix`);
      return new Matrix(t.shape[0] as number, t.shape[1] as number, Float32Array.from(t.data));
    };
    if (meta.layers.length !== this.shape.hiddenLayers.length) throw new StrategyError(`checkpoint has ${meta.layers.length} hidden layers, the pipeline ${this.shape.hiddenLayers.length}`);
    const layers: LayerData[] = meta.layers.map((l, i) => ({
      kernel: matrix(`hidden-${i + 1}.kernel`),
      bias: Float32Array.from(tensor(`hidden-${i + 1}.bias`).data),
      mask: matrix(`hidden-${i + 1}.mask`),
      added: [...l.added],
      retired: l.retired.map((r) => (r === null ? Infinity : r)),
    }));
    for (const head of this.heads.values()) {
      head.kernel.dispose();
      head.bias.dispose();
    }
    this.heads.clear();
    const heads = new Map<string, HeadData>();
    for (const h of meta.heads) {
      const labels = LabelSpace.fromJSON(h.labels);
      // Placeholder variables, replaced by write() below.
      this.heads.set(h.key, { key: h.key, labels, stage: h.stage ?? undefined, kernel: variableFrom(tf.zeros([1, 1])) as tf.Variable<tf.Rank.R2>, bias: variableFrom(tf.zeros([1])) as tf.Variable<tf.Rank.R1> });
      heads.set(h.key, { kernel: matrix(`head-${h.key}.kernel`), bias: Float32Array.from(tensor(`head-${h.key}.bias`).data) });
    }
    this.write({ layers, heads });
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const v of this.namedVariables().values()) v.dispose();
    this.heads.clear();
    this.layers.length = 0;
  }

  private refreshCaches(data: NetworkData): void {
    let parameters = 0;
    this.cachedSparsity = data.layers.map((l) => {
      let live = 0;
      let zeros = 0;
      for (let i = 0; i < l.mask.data.length; i++) {
        live += l.mask.data[i] as number;
        if (l.kernel.data[i] === 0) zeros++;
      }
      parameters += live + l.bias.length;
      return l.kernel.data.length === 0 ? 0 : zeros / l.kernel.data.length;
    });
    this.hiddenParameters = parameters;
  }

  private assertLive(): void {
    if (this.disposed) throw new StrategyError('the DEN network has been disposed');
  }
}

export interface DenNetworkMeta {
  readonly layers: readonly { readonly added: readonly number[]; readonly retired: readonly (number | null)[] }[];
  readonly heads: readonly { readonly key: string; readonly labels: ReturnType<LabelSpace['toJSON']>; readonly stage: number | null }[];
}
