/**
 * Deep Generative Replay (Shin et al. 2017), with van de Ven & Tolias's (2019) settings: a scholar
 * is a generator plus a solver (the solver is MlpStrategy itself). From the second task on, every
 * solver step also learns inputs x' replayed by the previous task's generator, labelled by the
 * previous task's solver (hard labels, or soft targets at a temperature with `distill`); the
 * generator learns the current inputs mixed with x' from the previous generator. The previous
 * scholar is a frozen copy made at the end of a task and replaced at the end of the next one. No
 * real sample is ever stored.
 *
 * The generators model inputs in [0, 1] (sigmoid outputs, Bernoulli likelihood), as the embedded
 * MNIST streams give them; features outside that range cannot be generated faithfully.
 */
import * as tf from '@tensorflow/tfjs';
import { StrategyError } from '../core/errors';
import type { Label } from '../core/types';
import type { TensorSnapshot } from '../core/tensor-snapshot';
import type { Generator, GeneratorKind, GeneratorShape } from '../models/generator';
import { GENERATOR_KINDS, type Sampler } from '../models/generator';
import { oneHotTargets } from '../models/gradient-step';
import { LabelSpace } from '../models/label-space';
import { MultiHeadMlp, unitsOf, type Head } from '../models/mlp';
import { Vae } from '../models/vae';
import { WganGp } from '../models/wgan-gp';
import { NoRegularizer } from './finetune';
import { MlpStrategy } from './mlp-strategy';
import { readParams, type ParamSpec } from './params';
import { seededRng, type Rehearsal, type RehearsalBatchContext, type RehearsalContext, type RehearsalState, type ReplayBatch, type ReplayGroup } from './rehearsal';
import type { StrategyDiagnostic, StrategyOptions } from './strategy';
import { defineStrategy } from './descriptor';
import { TASK_INFERENCE_PARAMS } from './task-inference';

const NAME = 'dgr';
const STATE_FORMAT = 1;

export const DGR_PARAMS = {
  generator: { type: 'enum', default: 'vae', values: GENERATOR_KINDS, doc: 'The generator: a VAE (van de Ven & Tolias) or a WGAN-GP (Shin et al.).' },
  latent: { type: 'integer', default: 100, min: 1, doc: 'Size of the latent code.' },
  distill: { type: 'boolean', default: false, doc: "Soft targets from the previous solver at `temperature` (DGR+distill) instead of its argmax." },
  temperature: { type: 'number', default: 2, min: 0, exclusiveMin: true, doc: 'Distillation temperature.' },
  generatorSteps: {
    type: 'integer',
    default: { sameAs: 'training.stepsPerBatch' },
    min: 1,
    doc: 'Generator training steps per batch (a WGAN-GP step is 5 critic steps and one generator step).',
  },
  generatorLearningRate: {
    type: 'number',
    default: { sameAs: 'training.learningRate' },
    min: 0,
    exclusiveMin: true,
    doc: "The generator's Adam learning rate; by default the solver's (van de Ven & Tolias).",
  },
  currentWeight: {
    type: 'number',
    default: '1/t',
    min: 0,
    exclusiveMin: true,
    max: 1,
    orOneOf: ['1/t'],
    doc: "Weight of the current batch's loss against the replayed samples'; \"1/t\" for the t-th task (Shin et al.).",
  },
  generatorHidden: { type: 'integers', default: { sameAs: 'model.hiddenLayers' }, min: 1, doc: "Hidden layer sizes of the generator; by default the solver's." },
  ...TASK_INFERENCE_PARAMS,
} as const satisfies Record<string, ParamSpec>;

export interface DgrSettings {
  readonly generator: GeneratorKind;
  readonly latent: number;
  readonly distill: boolean;
  readonly temperature: number;
  /** Weight of the current batch's loss; 'inverse-tasks' = 1/t for the t-th task. */
  readonly currentWeight: number | 'inverse-tasks';
  readonly generatorSteps: number;
  readonly generatorLearningRate: number;
  readonly generatorHidden: readonly number[];
}

/** Validates strategy.params for dgr; errors name strategy.params.KEY. */
export function readDgrParams(options: StrategyOptions): DgrSettings {
  const p = readParams(NAME, options.params, DGR_PARAMS, options);
  return {
    generator: p.generator as GeneratorKind,
    latent: p.latent,
    distill: p.distill,
    temperature: p.temperature,
    currentWeight: p.currentWeight === '1/t' ? 'inverse-tasks' : (p.currentWeight as number),
    generatorSteps: p.generatorSteps,
    generatorLearningRate: p.generatorLearningRate,
    generatorHidden: [...p.generatorHidden],
  };
}

function createGenerator(settings: DgrSettings, options: StrategyOptions, seed: number): Generator {
  const shape: GeneratorShape = { inputSize: options.inputSize, hiddenLayers: settings.generatorHidden, latent: settings.latent };
  return settings.generator === 'vae' ? new Vae(shape, settings.generatorLearningRate, seed) : new WganGp(shape, settings.generatorLearningRate, seed);
}

/** A frozen copy of a solver: same layers, heads and label spaces; never trained. */
function freezeSolver(model: MultiHeadMlp): MultiHeadMlp {
  const copy = new MultiHeadMlp(model.shape, 0);
  for (const key of model.headKeys()) copy.addHead(key, LabelSpace.fromJSON(model.head(key).labels.toJSON()), unitsOf(model.head(key)));
  const source = model.namedVariables();
  for (const [name, v] of copy.namedVariables()) v.assign(source.get(name) as tf.Variable);
  return copy;
}

/** The previous task's scholar: what replay comes from. */
interface Scholar {
  readonly generator: Sampler;
  readonly solver: MultiHeadMlp;
}

/**
 * DGR as a rehearsal plugin of MlpStrategy. Random draws (latent codes, noise) come from
 * seededRng(seed, draws), so a restored copy continues with the same draws.
 */
export class GenerativeReplay implements Rehearsal {
  private readonly generator: Generator;
  private previous: Scholar | undefined;
  private draws = 0;
  private seed: number;
  private generatorLoss: number | undefined;
  /** Replayed inputs learned with the batch in progress, and with the last finished batch. */
  private replayedInBatch = 0;
  private replayedLastBatch = 0;
  /** Entropy (bits) of the labels the previous solver gave the last replayed batch; undefined before any replay. */
  private replayLabelEntropy: number | undefined;
  /** The generator's optimizer slots, read by prepareExport (async) for the synchronous exportState. */
  private pendingGeneratorState: { draws: number; state: Awaited<ReturnType<Generator['exportState']>> } | undefined;
  private disposed = false;

  constructor(
    readonly settings: DgrSettings,
    options: StrategyOptions,
  ) {
    this.seed = options.seed;
    this.generator = createGenerator(settings, options, options.seed + 2);
  }

  /** Weight of the current batch for the t-th task (t counts from 1). */
  currentWeight(t: number): number {
    return this.settings.currentWeight === 'inverse-tasks' ? 1 / t : this.settings.currentWeight;
  }

  replay(context: RehearsalContext, batchSize: number): ReplayBatch | undefined {
    this.assertLive();
    const previous = this.previous;
    if (!previous || batchSize < 1) return undefined;
    const solverHeads = previous.solver.headKeys().map((k) => previous.solver.head(k)).filter((h) => h.labels.size > 0 && context.model.hasHead(h.key));
    if (solverHeads.length === 0) return undefined;
    const x = previous.generator.sample(batchSize, seededRng(this.seed, this.draws++));
    const groups: ReplayGroup[] = [];
    try {
      for (const head of solverHeads) {
        const targets = this.targetsFor(previous.solver, head, x, context.model.head(head.key).labels.size);
        groups.push({ head: head.key, x: x.clone(), targets, ...(this.settings.distill ? { temperature: this.settings.temperature } : {}) });
      }
      this.replayLabelEntropy = labelEntropyBits(groups);
    } catch (error) {
      for (const g of groups) tf.dispose([g.x, g.targets]);
      throw error;
    } finally {
      x.dispose();
    }
    this.replayedInBatch += batchSize;
    return { groups, currentWeight: this.currentWeight(context.tasks.length) };
  }

  /** The generator learns the batch, mixed (1/t real) with inputs replayed by the previous generator. */
  afterBatch(context: RehearsalBatchContext): void {
    this.assertLive();
    this.replayedLastBatch = this.replayedInBatch;
    this.replayedInBatch = 0;
    const n = context.x.shape[0];
    if (n === 0) return;
    const weight = this.previous ? this.currentWeight(context.tasks.length) : 1;
    for (let step = 0; step < this.settings.generatorSteps; step++) {
      const rng = seededRng(this.seed, this.draws++);
      const replayed = this.previous && weight < 1 ? this.previous.generator.sample(n, rng) : undefined;
      try {
        const parts = replayed ? [{ x: context.x, weight }, { x: replayed, weight: 1 - weight }] : [{ x: context.x, weight: 1 }];
        const loss = this.generator.train(parts, rng, step === this.settings.generatorSteps - 1);
        if (loss !== undefined) this.generatorLoss = loss;
      } finally {
        replayed?.dispose();
      }
    }
  }

  /** The scholar of the finished task becomes the previous scholar; the one before it is freed. */
  endTask(context: RehearsalContext): void {
    this.assertLive();
    const next: Scholar = { generator: this.generator.freeze(), solver: freezeSolver(context.model) };
    this.disposePrevious();
    this.previous = next;
  }

  diagnostics(): readonly StrategyDiagnostic[] {
    const out: StrategyDiagnostic[] = [
      { name: 'dgr_replayed_samples_per_batch', help: 'Replayed (generated) inputs the solver learned with the last batch, over all its gradient steps.', value: this.replayedLastBatch },
    ];
    if (this.replayLabelEntropy !== undefined) {
      // Replay collapse (the previous solver labels nearly every generated input alike) shows as
      // this falling towards 0 while forgetting has not shown yet: the alert LifelongReplayCollapse.
      out.push({
        name: 'replay_label_entropy',
        help: 'Entropy (bits) of the labels the previous solver assigned to the last replayed batch (argmax of its targets); near 0 when replay collapsed onto one class.',
        value: this.replayLabelEntropy,
      });
    }
    if (this.generatorLoss !== undefined) {
      out.push({
        name: 'dgr_generator_loss',
        help: "Generator's training loss on the last batch (VAE: reconstruction + KL per input feature; WGAN-GP: the critic's loss).",
        labels: { generator: this.settings.generator },
        value: this.generatorLoss,
      });
    }
    return out;
  }

  /** n inputs from the current generator (everything learned so far); the caller owns the tensor. */
  generate(n: number, seed: number, draw = 0): tf.Tensor2D {
    this.assertLive();
    return this.generator.sample(n, seededRng(seed, draw));
  }

  /**
   * Reads the generator's state, optimizer slots included (tfjs gives those only asynchronously);
   * the synchronous exportState of the Rehearsal contract then uses it. DgrStrategy.exportState
   * calls this first.
   */
  async prepareExport(): Promise<void> {
    this.assertLive();
    this.pendingGeneratorState = { draws: this.draws, state: await this.generator.exportState('generator') };
  }

  exportState(): RehearsalState {
    this.assertLive();
    const pending = this.pendingGeneratorState;
    this.pendingGeneratorState = undefined;
    if (!pending || pending.draws !== this.draws) throw new StrategyError('dgr: exportState needs prepareExport first (call DgrStrategy.exportState)');
    const tensors: Record<string, TensorSnapshot> = { ...pending.state.tensors };
    let previousMeta: Record<string, unknown> | undefined;
    if (this.previous) {
      this.previous.generator.network.exportTo('previous-generator', tensors);
      const solver = this.previous.solver.exportState();
      for (const [key, t] of Object.entries(solver.tensors)) tensors[`previous-solver.${key}`] = t;
      previousMeta = { solver: solver.meta };
    }
    return {
      meta: { format: STATE_FORMAT, settings: this.settings, seed: this.seed, draws: this.draws, generator: pending.state.meta, previous: previousMeta ?? null, generatorLoss: this.generatorLoss ?? null, replayedLastBatch: this.replayedLastBatch },
      tensors,
    };
  }

  async importState(state: { readonly meta: Record<string, unknown>; readonly tensors: Readonly<Record<string, TensorSnapshot>> }): Promise<void> {
    this.assertLive();
    const meta = state.meta as {
      format?: number;
      settings?: DgrSettings;
      seed?: number;
      draws?: number;
      generator?: Record<string, unknown>;
      previous?: { solver: ReturnType<MultiHeadMlp['exportState']>['meta'] } | null;
      generatorLoss?: number | null;
      replayedLastBatch?: number;
    };
    if (meta.format !== STATE_FORMAT) throw new StrategyError(`dgr state format ${String(meta.format)} is not supported (expected ${STATE_FORMAT})`);
    if (meta.settings?.generator !== this.settings.generator || meta.settings.latent !== this.settings.latent || JSON.stringify(meta.settings.generatorHidden) !== JSON.stringify(this.settings.generatorHidden)) {
      throw new StrategyError(`checkpoint's dgr generator (${JSON.stringify(meta.settings)}) does not match the strategy's (${JSON.stringify(this.settings)}): check strategy.params`);
    }
    await this.generator.importState('generator', { meta: meta.generator ?? {}, tensors: state.tensors as Record<string, TensorSnapshot> });
    let previous: Scholar | undefined;
    if (meta.previous) {
      const solverTensors: Record<string, TensorSnapshot> = {};
      for (const [key, t] of Object.entries(state.tensors)) if (key.startsWith('previous-solver.')) solverTensors[key.slice('previous-solver.'.length)] = t;
      const solver = new MultiHeadMlp(meta.previous.solver.shape, 0);
      // A copy of the current generator's sampling network has the layer names to import into.
      const generator = this.generator.freeze();
      try {
        solver.importState({ meta: meta.previous.solver, tensors: solverTensors });
        generator.network.importFrom('previous-generator', state.tensors);
      } catch (error) {
        solver.dispose();
        generator.dispose();
        throw error;
      }
      previous = { generator, solver };
    }
    this.disposePrevious();
    this.previous = previous;
    this.seed = meta.seed ?? this.seed;
    this.draws = meta.draws ?? 0;
    this.generatorLoss = meta.generatorLoss ?? undefined;
    this.replayedLastBatch = meta.replayedLastBatch ?? 0;
    this.replayedInBatch = 0;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.generator.dispose();
    this.disposePrevious();
  }

  /**
   * The previous solver's answer for replayed inputs as targets over `units` active units of the
   * current model's head (zero-padded: classes the previous solver did not know get 0): its argmax
   * one-hot, or with distill softmax(logits / T).
   */
  private targetsFor(solver: MultiHeadMlp, head: Head, x: tf.Tensor2D, units: number): tf.Tensor2D {
    return tf.tidy(() => {
      const { logits } = solver.forward(x, head);
      const known = logits.shape[1];
      if (units < known) throw new StrategyError(`dgr: head "${head.key}" has ${units} active units, fewer than the ${known} the previous solver knew`);
      if (!this.settings.distill) return tf.cast(oneHotTargets(tf.argMax(logits, 1) as tf.Tensor1D, units), 'float32') as tf.Tensor2D;
      const soft = tf.softmax(tf.div(logits, this.settings.temperature)) as tf.Tensor2D;
      return units === known ? soft : (tf.pad(soft, [[0, 0], [0, units - known]]) as tf.Tensor2D);
    });
  }

  private disposePrevious(): void {
    this.previous?.generator.dispose();
    this.previous?.solver.dispose();
    this.previous = undefined;
  }

  private assertLive(): void {
    if (this.disposed) throw new StrategyError('the dgr rehearsal has been disposed');
  }
}

/** Samples of one class in a replay grid. */
export interface ReplayGridRow {
  /** The label, prefixed with its task ("task/label") when each task has its own head. */
  readonly label: string;
  readonly samples: readonly Float32Array[];
}

/** DGR: MlpStrategy with the generative-replay rehearsal, plus access to its generator. */
export class DgrStrategy extends MlpStrategy {
  private readonly headPerTask: boolean;

  constructor(
    options: StrategyOptions,
    private readonly generativeReplay: GenerativeReplay,
  ) {
    super(NAME, options, new NoRegularizer(), generativeReplay);
    this.headPerTask = options.scenario === 'task-incremental';
  }

  override async exportState(): ReturnType<MlpStrategy['exportState']> {
    await this.generativeReplay.prepareExport();
    return super.exportState();
  }

  /** n inputs generated by the current generator; `seed` and `draw` choose the latent codes. */
  generate(n: number, seed = 0, draw = 0): Float32Array[] {
    const x = this.generativeReplay.generate(n, seed, draw);
    const flat = x.dataSync() as Float32Array;
    const size = x.shape[1];
    x.dispose();
    return Array.from({ length: n }, (_, i) => flat.slice(i * size, (i + 1) * size));
  }

  /**
   * What the model remembers: generated inputs sorted by the class the solver gives them, up to
   * `perClass` per class, one row per known class (heads in order, labels sorted), drawing at most
   * `maxDraws` samples in all. A class the generator does not produce keeps a short row.
   */
  async replayGrid(perClass: number, seed = 0, maxDraws = Math.max(1000, 50 * perClass)): Promise<ReplayGridRow[]> {
    if (!Number.isInteger(perClass) || perClass < 1) throw new StrategyError(`replay grid needs a positive number of samples per class, got ${perClass}`);
    const rows = new Map<string, Float32Array[]>();
    for (const key of this.model.headKeys()) {
      // Labels in natural order ("2" before "10"), not the order the stream brought them in.
      const labels = [...this.model.head(key).labels.labels].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
      for (const label of labels) rows.set(this.headPerTask ? `${key}/${label}` : label, []);
    }
    const full = () => [...rows.values()].every((r) => r.length >= perClass);
    const chunk = 256;
    // With one usable head a prediction names no task: it is that head's.
    const usableHeads = this.model.headKeys().filter((k) => this.model.head(k).labels.size > 0);
    for (let drawn = 0, round = 0; drawn < maxDraws && rows.size > 0 && !full(); drawn += chunk, round++) {
      const xs = this.generate(chunk, seed, round);
      const predictions = await this.predict(undefined, xs);
      predictions.forEach((p, i) => {
        if (p.label === null) return;
        const key: Label = this.headPerTask ? `${p.inferredTask ?? usableHeads[0]}/${p.label}` : p.label;
        const row = rows.get(key);
        if (row && row.length < perClass) row.push(xs[i] as Float32Array);
      });
    }
    return [...rows].map(([label, samples]) => ({ label, samples }));
  }
}

export function createDgr(options: StrategyOptions): DgrStrategy {
  const settings = readDgrParams(options);
  return new DgrStrategy(options, new GenerativeReplay(settings, options));
}

export const DGR_STRATEGY = defineStrategy({
  name: 'dgr',
  family: 'memory',
  summary: 'Deep Generative Replay (Shin et al. 2017): a generator replays past inputs, the previous solver labels them; `distill` for soft targets.',
  create: createDgr,
  params: DGR_PARAMS,
});

/**
 * Entropy in bits of the replayed labels: each row's argmax target, counted per head (a label of
 * one head is not the same class as the same index of another).
 */
export function labelEntropyBits(groups: readonly ReplayGroup[]): number {
  const counts = new Map<string, number>();
  let total = 0;
  for (const group of groups) {
    const argMax = tf.argMax(group.targets, 1);
    let labels: ArrayLike<number>;
    try {
      labels = argMax.dataSync();
    } finally {
      argMax.dispose();
    }
    for (let i = 0; i < labels.length; i++) {
      const key = `${group.head}/${labels[i]}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
      total += 1;
    }
  }
  let entropy = 0;
  for (const n of counts.values()) entropy -= (n / total) * Math.log2(n / total);
  return entropy;
}
