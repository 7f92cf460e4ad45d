import * as tf from '@tensorflow/tfjs';
import { Rng } from '../core/rng';
import { StrategyError } from '../core/errors';
import type { TensorSnapshot } from '../core/tensor-snapshot';
import { LabelSpace } from './label-space';

/** One dense layer's variables. */
export interface DenseLayer {
  readonly name: string;
  readonly kernel: tf.Variable<tf.Rank.R2>;
  readonly bias: tf.Variable<tf.Rank.R1>;
}

/**
 * An output head: a dense layer plus the labels its units stand for. The layer is replaced, with
 * more units, when the head grows (MultiHeadMlp.growHead); hold the head, not its layer.
 */
export interface Head {
  readonly key: string;
  layer: DenseLayer;
  readonly labels: LabelSpace;
}

export interface MlpShape {
  readonly inputSize: number;
  readonly hiddenLayers: readonly number[];
  /** Units each head starts with (0 = none: it grows with its labels). */
  readonly outputUnits: number;
}

/** A head's layer widened from `from` to `to` units (the new units last); its variables were replaced. */
export interface HeadGrowth {
  /** The layer's name, as in namedVariables() ("head-shared"). */
  readonly layer: string;
  readonly from: number;
  readonly to: number;
}

/** Output units of a head's layer (at least its labels; more in a pre-sized head). */
export function unitsOf(head: Head): number {
  return head.layer.kernel.shape[1];
}

/** Saved head layouts: `units` is absent from checkpoints written before heads grew, whose labels kept it as `capacity`. */
export interface HeadMeta {
  readonly key: string;
  readonly labels: { readonly labels: readonly string[]; readonly capacity?: number };
  readonly units?: number;
}

/** Tensors of one forward pass, for per-sample gradient tricks (strategies/fisher.ts). */
export interface ForwardPass {
  /** Logits over the head's active units (its labels so far): batch x labels.size. */
  readonly logits: tf.Tensor2D;
  /** The input of each layer, trunk layers then the head: batch x fan-in. */
  readonly layerInputs: readonly tf.Tensor2D[];
}

/**
 * A ReLU multilayer perceptron with a shared trunk and any number of heads (one per task for
 * task-incremental learning, one shared head otherwise). Variables are created only when the
 * model is built or a head is added, which the strategies do at task boundaries.
 */
export class MultiHeadMlp {
  readonly trunk: DenseLayer[] = [];
  private readonly heads = new Map<string, Head>();
  private readonly rng: Rng;
  private disposed = false;

  constructor(
    readonly shape: MlpShape,
    /** Seeds the units heads grow (growHead); part of the exported state, so a restored copy grows the same units. */
    private seed: number,
  ) {
    if (shape.hiddenLayers.length === 0) throw new StrategyError('the model needs at least one hidden layer');
    this.rng = new Rng(seed);
    let fanIn = shape.inputSize;
    shape.hiddenLayers.forEach((units, i) => {
      this.trunk.push(this.dense(`hidden-${i + 1}`, fanIn, units));
      fanIn = units;
    });
  }

  /** Width of the last hidden layer (the heads' fan-in). */
  get featureSize(): number {
    return this.shape.hiddenLayers[this.shape.hiddenLayers.length - 1] as number;
  }

  hasHead(key: string): boolean {
    return this.heads.has(key);
  }

  head(key: string): Head {
    const head = this.heads.get(key);
    if (!head) throw new StrategyError(`the model has no head "${key}"`);
    return head;
  }

  headKeys(): string[] {
    return [...this.heads.keys()];
  }

  /** Adds a head (at a task boundary) with `units` output units to start with. */
  addHead(key: string, labels = new LabelSpace(), units = this.shape.outputUnits): Head {
    if (this.heads.has(key)) throw new StrategyError(`head "${key}" exists already`);
    const head: Head = { key, labels, layer: this.dense(`head-${key}`, this.featureSize, units) };
    this.heads.set(key, head);
    return head;
  }

  /**
   * Widens a head's layer to `units` (between gradient steps): the old units keep their weights,
   * so the logits of the classes known so far do not change; the new ones are initialised as the
   * layer's init does (Glorot-uniform for the layer's new width, zero bias), seeded by the layer
   * and its width so that a copy restored from a checkpoint grows the same units. The layer's
   * variables are replaced: whatever is kept per variable (optimizer moments, importances,
   * anchors) must be widened too, which the strategy does with the growth returned.
   */
  growHead(key: string, units: number): HeadGrowth {
    const head = this.head(key);
    const from = unitsOf(head);
    if (!Number.isInteger(units) || units <= from) throw new StrategyError(`head "${key}" has ${from} units; it can only grow, not to ${units}`);
    const old = head.layer;
    const fanIn = this.featureSize;
    const rng = new Rng(growthSeed(this.seed, old.name, from));
    const limit = Math.sqrt(6 / (fanIn + units));
    head.layer = tf.tidy(() => ({
      name: old.name,
      kernel: tf.variable(tf.concat([old.kernel, tf.randomUniform([fanIn, units - from], -limit, limit, 'float32', rng.seed())], 1), true) as tf.Variable<tf.Rank.R2>,
      bias: tf.variable(tf.concat([old.bias, tf.zeros([units - from])]), true) as tf.Variable<tf.Rank.R1>,
    }));
    disposeLayer(old);
    return { layer: old.name, from, to: units };
  }

  /**
   * Forward pass through the trunk and one head. `taps`, when given, are added to each layer's
   * pre-activation (trunk layers, then the head); passing zeros and differentiating with respect
   * to them yields per-sample gradients of every pre-activation.
   */
  forward(x: tf.Tensor2D, head: Head, taps?: readonly tf.Tensor2D[]): ForwardPass {
    const layerInputs: tf.Tensor2D[] = [];
    let a = x;
    this.trunk.forEach((layer, i) => {
      layerInputs.push(a);
      let z = tf.add(tf.matMul(a, layer.kernel), layer.bias) as tf.Tensor2D;
      const tap = taps?.[i];
      if (tap) z = tf.add(z, tap);
      a = tf.relu(z);
    });
    layerInputs.push(a);
    const { kernel, bias } = this.activeHead(head);
    let logits = tf.add(tf.matMul(a, kernel), bias) as tf.Tensor2D;
    const tap = taps?.[this.trunk.length];
    if (tap) logits = tf.add(logits, tap);
    return { logits, layerInputs };
  }

  /** The head's kernel and bias restricted to its active units. */
  activeHead(head: Head): { kernel: tf.Tensor2D; bias: tf.Tensor1D } {
    const n = Math.max(1, head.labels.size);
    const { kernel, bias } = head.layer;
    if (n === unitsOf(head)) return { kernel, bias };
    return { kernel: tf.slice(kernel, [0, 0], [-1, n]), bias: tf.slice(bias, [0], [n]) };
  }

  /** Variables trained for a head: the trunk and that head. */
  trainableVariables(head: Head): tf.Variable[] {
    return [...this.trunk, head.layer].flatMap((l) => [l.kernel, l.bias]);
  }

  /** Every variable by a stable name ("hidden-1.kernel", "head-task.bias"). */
  namedVariables(): Map<string, tf.Variable> {
    const named = new Map<string, tf.Variable>();
    for (const layer of this.layers()) {
      named.set(`${layer.name}.kernel`, layer.kernel);
      named.set(`${layer.name}.bias`, layer.bias);
    }
    return named;
  }

  layers(): DenseLayer[] {
    return [...this.trunk, ...[...this.heads.values()].map((h) => h.layer)];
  }

  /** Parameters in use: the trunk plus each head's active units. */
  parameterCount(): number {
    const trunk = this.trunk.reduce((n, l) => n + l.kernel.size + l.bias.size, 0);
    let heads = 0;
    for (const head of this.heads.values()) heads += head.labels.size * (this.featureSize + 1);
    return trunk + heads;
  }

  /** Each layer's weights (kernel then bias, flattened), for semantic drift. */
  layerWeights(): Map<string, Float32Array> {
    const weights = new Map<string, Float32Array>();
    for (const layer of this.layers()) {
      const k = layer.kernel.dataSync() as Float32Array;
      const b = layer.bias.dataSync() as Float32Array;
      const both = new Float32Array(k.length + b.length);
      both.set(k);
      both.set(b, k.length);
      weights.set(layer.name, both);
    }
    return weights;
  }

  exportState(): { meta: { shape: MlpShape; heads: HeadMeta[]; growthSeed?: number }; tensors: Record<string, TensorSnapshot> } {
    const tensors: Record<string, TensorSnapshot> = {};
    for (const [name, v] of this.namedVariables()) tensors[`model.${name}`] = snapshot(v);
    return {
      meta: {
        shape: { ...this.shape, hiddenLayers: [...this.shape.hiddenLayers] },
        heads: [...this.heads.values()].map((h) => ({ key: h.key, labels: h.labels.toJSON(), units: unitsOf(h) })),
        growthSeed: this.seed,
      },
      tensors,
    };
  }

  /** Rebuilds heads and overwrites every variable from an exported state. */
  importState(state: ReturnType<MultiHeadMlp['exportState']>): void {
    const { meta, tensors } = state;
    if (JSON.stringify(meta.shape) !== JSON.stringify({ ...this.shape, hiddenLayers: [...this.shape.hiddenLayers] })) {
      throw new StrategyError(`checkpoint model shape ${JSON.stringify(meta.shape)} does not match the pipeline's ${JSON.stringify(this.shape)}`);
    }
    for (const head of this.heads.values()) disposeLayer(head.layer);
    this.heads.clear();
    if (meta.growthSeed !== undefined) this.seed = meta.growthSeed;
    for (const h of meta.heads) this.addHead(h.key, LabelSpace.fromJSON(h.labels), h.units ?? h.labels.capacity ?? this.shape.outputUnits);
    for (const [name, v] of this.namedVariables()) {
      const t = tensors[`model.${name}`];
      if (!t) throw new StrategyError(`checkpoint lacks tensor model.${name}`);
      assignSnapshot(v, t, `model.${name}`);
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const layer of this.layers()) disposeLayer(layer);
    this.heads.clear();
  }

  private dense(name: string, fanIn: number, units: number): DenseLayer {
    return denseLayer(name, fanIn, units, this.rng);
  }
}

/** The seed of the units a layer grows from `from` units: the same in a restored copy, whatever ran before. */
function growthSeed(seed: number, layer: string, from: number): number {
  let h = (seed | 0) ^ 0x5bd1e995;
  for (const c of `${layer}#${from}`) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193);
  return h | 0;
}

/** A Glorot-uniform kernel (the Keras default), seeded for reproducibility. */
export function glorotKernel(rng: Rng, fanIn: number, units: number): tf.Variable<tf.Rank.R2> {
  const limit = Math.sqrt(6 / (fanIn + units));
  return variableFrom(tf.randomUniform([fanIn, units], -limit, limit, 'float32', rng.seed())) as tf.Variable<tf.Rank.R2>;
}

/** A dense layer: Glorot-uniform kernel, zero bias. */
export function denseLayer(name: string, fanIn: number, units: number, rng: Rng): DenseLayer {
  return { name, kernel: glorotKernel(rng, fanIn, units), bias: variableFrom(tf.zeros([units])) as tf.Variable<tf.Rank.R1> };
}

/** A trainable variable holding `initial`, which is freed (the variable keeps its own reference). */
export function variableFrom(initial: tf.Tensor): tf.Variable {
  const v = tf.variable(initial, true);
  initial.dispose();
  return v;
}

function disposeLayer(layer: DenseLayer): void {
  layer.kernel.dispose();
  layer.bias.dispose();
}

export function snapshot(t: tf.Tensor): TensorSnapshot {
  return { shape: [...t.shape], data: Float32Array.from(t.dataSync() as Float32Array) };
}

export function fromSnapshot(s: TensorSnapshot): tf.Tensor {
  return tf.tensor(s.data, [...s.shape], 'float32');
}

export function assignSnapshot(v: tf.Variable, s: TensorSnapshot, name: string): void {
  if (s.shape.length !== v.shape.length || s.shape.some((d, i) => d !== v.shape[i])) {
    throw new StrategyError(`checkpoint tensor ${name} has shape [${s.shape}] but the model expects [${v.shape}]`);
  }
  tf.tidy(() => v.assign(fromSnapshot(s)));
}
