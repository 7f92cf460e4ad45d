import * as tf from '@tensorflow/tfjs';
import { StrategyError } from '../core/errors';
import { Rng } from '../core/rng';
import type { TensorSnapshot } from '../core/tensor-snapshot';
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
function coServe(below: UnitTimes, i: number, above: UnitTimes, j: number): boolean {
  return Math.max(below.added[i] as number, above.added[j] as number) < Math.min(below.retired[i] as number, above.retired[j] as number);
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
  addHead(key: string, stage: number | undefined, labels = new LabelSpace(this.shape.outputUnits)): DenHead {
    if (this.heads.has(key)) throw new StrategyError(`head "${key}" exists already`);
    const head: DenHead = {
      key,
      labels,
      stage,
      kernel: variableFrom(tf.zeros([this.featureSize, labels.capacity])) as tf.Variable<tf.Rank.R2>,
      bias: variableFrom(tf.zeros([labels.capacity])) as tf.Variable<tf.Rank.R1>,
    };
    this.heads.set(key, head);
    return head;
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
    const kernel = n === head.labels.capacity ? head.kernel : tf.slice(head.kernel, [0, 0], [-1, n]);
    const bias = n === head.labels.capacity ? head.bias : tf.slice(head.bias, [0], [n]);
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
      if (h.kernel.rows !== fanIn || h.kernel.cols !== head.labels.capacity) throw new StrategyError(`head ${key}: kernel ${h.kernel.rows}x${h.kernel.cols}, expected ${fanIn}x${head.labels.capacity}`);
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

// ---------------------------------------------------------------------------------------------
// Structural edits on plain data. Each keeps every stage's function except where it says not.

/** Drops (zeroes and masks) hidden weights with |w| below `threshold`; returns how many per layer. */
export function dropSmallWeights(data: NetworkData, threshold: number): number[] {
  return data.layers.map((l) => {
    let dropped = 0;
    for (let i = 0; i < l.kernel.data.length; i++) {
      if (l.mask.data[i] === 1 && Math.abs(l.kernel.data[i] as number) < threshold) {
        l.kernel.data[i] = 0;
        l.mask.data[i] = 0;
        dropped++;
      }
    }
    return dropped;
  });
}

/**
 * The subnetwork a new task retrains (DEN's selective retraining): the last hidden layer's units
 * with a non-zero weight in the (zero-initialised, L1-trained) head, then, layer by layer downwards,
 * every unit with a live non-zero connection into a selected unit. Only units serving `stage`
 * count. Returns a selection flag per unit per layer.
 */
export function selectSubnetwork(data: NetworkData, head: HeadData, knownLabels: number, stage: number): boolean[][] {
  const L = data.layers.length;
  const selected: boolean[][] = data.layers.map((l) => l.added.map(() => false));
  const last = data.layers[L - 1] as LayerData;
  const top = selected[L - 1] as boolean[];
  for (let j = 0; j < last.added.length; j++) {
    if (!serves(last, j, stage)) continue;
    for (let c = 0; c < knownLabels; c++) {
      if (head.kernel.get(j, c) !== 0) {
        top[j] = true;
        break;
      }
    }
  }
  for (let l = L - 1; l >= 1; l--) {
    const layer = data.layers[l] as LayerData;
    const below = data.layers[l - 1] as LayerData;
    const above = selected[l] as boolean[];
    const out = selected[l - 1] as boolean[];
    for (let i = 0; i < below.added.length; i++) {
      if (!serves(below, i, stage)) continue;
      for (let j = 0; j < above.length; j++) {
        if (above[j] && layer.mask.get(i, j) === 1 && layer.kernel.get(i, j) !== 0) {
          out[i] = true;
          break;
        }
      }
    }
  }
  return selected;
}

/**
 * Dynamic expansion: `k` new units in every hidden layer, added at `stage`. Their incoming and
 * outgoing weights are Glorot-uniform (as tf.get_variable's default in the paper's code) where
 * they connect units serving `stage`; the training head's rows for them are too, other task
 * heads get zero rows (they never see the new units). Returns the new units' indexes per layer.
 */
export function expandLayers(data: NetworkData, k: number, stage: number, trainingHead: string, rng: Rng): number[][] {
  const L = data.layers.length;
  const added: number[][] = [];
  for (let l = 0; l < L; l++) {
    const layer = data.layers[l] as LayerData;
    const below = l > 0 ? (data.layers[l - 1] as LayerData) : undefined;
    const fanIn = layer.kernel.rows;
    const n = layer.kernel.cols;
    const rowServes = (i: number) => !below || serves(below, i, stage);
    const limit = Math.sqrt(6 / (fanIn + n + k));
    layer.kernel = layer.kernel.withColumns(k, (i) => (rowServes(i) ? uniform(rng, limit) : 0));
    layer.mask = layer.mask.withColumns(k, (i) => (rowServes(i) ? 1 : 0));
    layer.bias = concat(layer.bias, new Float32Array(k));
    for (let c = 0; c < k; c++) {
      layer.added.push(stage);
      layer.retired.push(Infinity);
    }
    added.push(range(k).map((c) => n + c));
    if (l < L - 1) {
      const next = data.layers[l + 1] as LayerData;
      const nextLimit = Math.sqrt(6 / (next.kernel.rows + k + next.kernel.cols));
      next.kernel = next.kernel.withRows(k, (_, j) => (serves(next, j, stage) ? uniform(rng, nextLimit) : 0));
      next.mask = next.mask.withRows(k, (_, j) => (serves(next, j, stage) ? 1 : 0));
    } else {
      for (const [key, head] of data.heads) {
        const headLimit = Math.sqrt(6 / (head.kernel.rows + k + head.kernel.cols));
        head.kernel = head.kernel.withRows(k, () => (key === trainingHead ? uniform(rng, headLimit) : 0));
      }
    }
  }
  return added;
}

/**
 * Deletes the given units (per layer) with their incoming and outgoing weights. Used for expansion
 * units whose incoming weights group sparsity drove to zero; such a unit outputs a constant
 * relu(bias), which its deletion drops, as the paper's code does.
 */
export function removeUnits(data: NetworkData, units: readonly (readonly number[])[]): void {
  const L = data.layers.length;
  for (let l = 0; l < L; l++) {
    const drop = new Set(units[l] ?? []);
    if (drop.size === 0) continue;
    const layer = data.layers[l] as LayerData;
    layer.kernel = layer.kernel.withoutColumns(drop);
    layer.mask = layer.mask.withoutColumns(drop);
    layer.bias = Float32Array.from([...layer.bias].filter((_, j) => !drop.has(j)));
    layer.added = layer.added.filter((_, j) => !drop.has(j));
    layer.retired = layer.retired.filter((_, j) => !drop.has(j));
    if (l < L - 1) {
      const next = data.layers[l + 1] as LayerData;
      next.kernel = next.kernel.withoutRows(drop);
      next.mask = next.mask.withoutRows(drop);
    } else {
      for (const head of data.heads.values()) head.kernel = head.kernel.withoutRows(drop);
    }
  }
}

/** Units among `candidates` (per layer) whose incoming weights are all zero. */
export function deadUnits(data: NetworkData, candidates: readonly (readonly number[])[]): number[][] {
  return data.layers.map((layer, l) =>
    (candidates[l] ?? []).filter((j) => {
      for (let i = 0; i < layer.kernel.rows; i++) if (layer.kernel.get(i, j) !== 0) return false;
      return true;
    }),
  );
}

/** A layer's weights when the current task began, for drift and the pull towards them. */
export interface LayerSnapshot {
  readonly kernel: Matrix;
  readonly bias: Float32Array;
}

/**
 * Split/duplication at the end of `stage`. A unit that existed when the stage began and serves it
 * has drifted by ||(W[:, j], b_j) - (W_prev[:, j], b_prev_j)||_2 (over the incoming connections it
 * had then, bias included). Above `sigma` (the `maxSplits` most drifted per layer), it is
 * duplicated: the copy takes the current weights and serves `stage` onwards, the original gets
 * its previous weights back and is retired at `stage`, so earlier stages compute with the old unit
 * and `stage` computes exactly what it learned. Outgoing weights are copied to the copy's row, in
 * the next layer and in the heads that serve `stage` (the training head, a shared head).
 * Returns the split units' indexes (of the originals) per layer.
 */
export function splitDrifted(data: NetworkData, previous: readonly LayerSnapshot[], stage: number, sigma: number, maxSplits: number, headsServingStage: ReadonlySet<string>): number[][] {
  const L = data.layers.length;
  const split: number[][] = [];
  for (let l = 0; l < L; l++) {
    const layer = data.layers[l] as LayerData;
    const prev = previous[l] as LayerSnapshot;
    const drifts: { j: number; d: number }[] = [];
    for (let j = 0; j < prev.kernel.cols; j++) {
      if (!serves(layer, j, stage)) continue;
      let sq = ((layer.bias[j] as number) - (prev.bias[j] as number)) ** 2;
      for (let i = 0; i < prev.kernel.rows; i++) sq += (layer.kernel.get(i, j) - prev.kernel.get(i, j)) ** 2;
      const d = Math.sqrt(sq);
      if (d > sigma) drifts.push({ j, d });
    }
    // The code caps splits at ex_k per layer; it keeps the most drifted, which harm old tasks most.
    const chosen = drifts
      .sort((a, b) => b.d - a.d || a.j - b.j)
      .slice(0, maxSplits)
      .map((e) => e.j)
      .sort((a, b) => a - b);
    split.push(chosen);
    if (chosen.length === 0) continue;
    const kernel = layer.kernel;
    const mask = layer.mask;
    layer.kernel = kernel.withColumns(chosen.length, (i, c) => kernel.get(i, chosen[c] as number));
    layer.mask = mask.withColumns(chosen.length, (i, c) => mask.get(i, chosen[c] as number));
    layer.bias = concat(layer.bias, Float32Array.from(chosen, (j) => layer.bias[j] as number));
    for (const j of chosen) {
      layer.added.push(stage);
      layer.retired.push(Infinity);
      for (let i = 0; i < layer.kernel.rows; i++) {
        if (i < prev.kernel.rows) {
          layer.kernel.set(i, j, prev.kernel.get(i, j));
        } else {
          layer.kernel.set(i, j, 0);
          layer.mask.set(i, j, 0);
        }
      }
      layer.bias[j] = prev.bias[j] as number;
      layer.retired[j] = stage;
    }
    if (l < L - 1) {
      const next = data.layers[l + 1] as LayerData;
      const nk = next.kernel;
      const nm = next.mask;
      next.kernel = nk.withRows(chosen.length, (r, j) => nk.get(chosen[r] as number, j));
      next.mask = nm.withRows(chosen.length, (r, j) => nm.get(chosen[r] as number, j));
    } else {
      for (const [key, head] of data.heads) {
        const hk = head.kernel;
        head.kernel = hk.withRows(chosen.length, (r, c) => (headsServingStage.has(key) ? hk.get(chosen[r] as number, c) : 0));
      }
    }
  }
  return split;
}

/**
 * Zeroes and masks every connection between units that never serve a stage together, and the rows
 * of a task head for units that do not serve its stage: weights no computation can use.
 */
export function clearUnusedConnections(data: NetworkData, headStages: ReadonlyMap<string, number | undefined>): void {
  for (let l = 1; l < data.layers.length; l++) {
    const below = data.layers[l - 1] as LayerData;
    const layer = data.layers[l] as LayerData;
    for (let i = 0; i < layer.kernel.rows; i++) {
      for (let j = 0; j < layer.kernel.cols; j++) {
        if (!coServe(below, i, layer, j)) {
          layer.kernel.set(i, j, 0);
          layer.mask.set(i, j, 0);
        }
      }
    }
  }
  const last = data.layers[data.layers.length - 1] as LayerData;
  for (const [key, head] of data.heads) {
    const stage = headStages.get(key);
    if (stage === undefined) continue;
    for (let j = 0; j < head.kernel.rows; j++) {
      if (serves(last, j, stage)) continue;
      for (let c = 0; c < head.kernel.cols; c++) head.kernel.set(j, c, 0);
    }
  }
}

/** A snapshot as a matrix (2-D) or vector (1-D). */
export function matrixOf(t: tf.Tensor): Matrix {
  if (t.shape.length !== 2) throw new StrategyError(`expected a matrix, got shape [${t.shape}]`);
  return new Matrix(t.shape[0] as number, t.shape[1] as number, Float32Array.from(t.dataSync() as Float32Array));
}

function uniform(rng: Rng, limit: number): number {
  return (rng.next() * 2 - 1) * limit;
}

function concat(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
