import * as tf from '@tensorflow/tfjs';
import { StrategyError } from '../core/errors';
import { TASK_AGNOSTIC, type Label, type Prediction, type TaskInfo, type TaskName } from '../core/types';
import type { TensorSnapshot } from '../core/tensor-snapshot';
import { headUnitsOf, ProgressiveColumns, type AdapterKind, type Column, type ColumnsShape, type LateralInputs } from '../models/progressive-columns';
import { assignSnapshot } from '../models/mlp';
import { classificationLoss, gradientStep } from '../models/gradient-step';
import { createOptimizer, exportOptimizer, growOptimizerSlots, importOptimizer } from '../models/optimizer-state';
import { assignUnits, readMatrices, checkStateHeader, refuseBatch, toMatrix, toPrediction, unanswered, NO_CLASSES_YET, NO_TASK_YET, NOTHING_LEARNED_YET } from './learning-helpers';
import { readParams } from './params';
import { createTaskInference, predictWithoutTask, TASK_INFERENCE_PARAMS, type TaskInference } from './task-inference';
import type { ExpertGateState } from './expert-gate';
import type { LabelledBatch, Strategy, StrategyDiagnostic, StrategyOptions, StrategyState, TrainResult } from './strategy';
import { defineStrategy } from './descriptor';

export const PROGRESSIVE_PARAMS = {
  adapter: { type: 'enum', default: 'linear', values: ['linear', 'mlp'], doc: "Lateral connections: 'linear' (U h) or 'mlp' (the paper's non-linear adapter U relu(V alpha h))." },
  adapterWidth: { type: 'integer', default: 0, min: 0, doc: "Width of the 'mlp' adapter's projection V; 0 = the width of the source layer (the paper's choice)." },
  ...TASK_INFERENCE_PARAMS,
} as const;

const STATE_FORMAT = 1;
/** Prefix of the task router's tensors in the strategy's state. */
const ROUTER_PREFIX = 'router';

interface Training {
  readonly column: Column;
  readonly headOnly: boolean;
  readonly optimizer: tf.Optimizer;
}

/**
 * Progressive Neural Networks (Rusu et al. 2016): one column per task, each an MLP of the
 * pipeline's shape with its own head and label space, reading every earlier column's hidden
 * layers through lateral connections (models/progressive-columns.ts).
 *
 * - A column is added only in beginTask, for a task without one, and the optimizer is rebuilt
 *   there over the new column's variables only: earlier columns are in no optimizer's list, so
 *   their predictions are bit-identical whatever is learned later. Forgetting is zero by
 *   construction; parameters grow with every task.
 * - A task begun again after later columns were added trains only its head and the laterals into
 *   it (no other column reads those), so later columns' inputs never change.
 * - predict(task) uses the task's column (unanswered when the task has none yet). With task
 *   undefined (domain- and class-incremental evaluation, task-agnostic requests) the task is
 *   inferred per sample: every column with known labels answers, and the one whose softmax has
 *   the lowest Shannon entropy wins, its task returned as `inferredTask`. Measured against the
 *   other offered rule, 'confidence' (highest top probability): with two labels per column
 *   (split-MNIST) the two rules choose alike (entropy is then a monotone function of the top
 *   probability: 73% right tasks over 3 tasks, 61% over 5); with ten (permuted-MNIST, MLP
 *   [200, 200], 5 tasks of 3000 samples) entropy picked the right task for 88% of the probes in
 *   class-IL and 90% in domain-IL, against 82% and 85% for the top probability.
 * - No predictAndTrain: in the scenarios without task identity at test time the engine must ask
 *   predict(undefined) (task inference), which the training pass of one column cannot give.
 */
export class ProgressiveStrategy implements Strategy {
  readonly name = 'progressive';
  readonly infersTask = true;
  readonly columns: ProgressiveColumns;
  private readonly inference: TaskInference;
  /** The column being trained, whether only its head (a revisited older task), and its optimizer. */
  private training: Training | undefined;
  private disposed = false;

  constructor(private readonly options: StrategyOptions) {
    if (!Number.isInteger(options.stepsPerBatch) || options.stepsPerBatch < 1) throw new StrategyError(`stepsPerBatch must be a positive integer, got ${options.stepsPerBatch}`);
    const p = readParams('progressive', options.params, PROGRESSIVE_PARAMS);
    this.inference = createTaskInference('progressive', options, options.seed + 3);
    this.columns = new ProgressiveColumns(
      { inputSize: options.inputSize, hiddenLayers: [...options.hiddenLayers], outputUnits: options.outputUnits, adapter: p.adapter as AdapterKind, adapterWidth: p.adapterWidth },
      options.seed,
    );
  }

  async beginTask(task: TaskInfo): Promise<void> {
    this.assertLive();
    const column = this.columns.columnOf(task.name) ?? this.columns.addColumn(task.name);
    this.train(column);
  }

  async trainBatch(task: TaskInfo, batch: LabelledBatch): Promise<TrainResult> {
    this.assertLive();
    if (batch.xs.length !== batch.ys.length) throw new StrategyError(`batch has ${batch.xs.length} inputs but ${batch.ys.length} labels`);
    const column = this.columns.columnOf(task.name);
    if (!column) throw new StrategyError(`trainBatch for task "${task.name}" before its beginTask`);
    if (batch.xs.length === 0) return { loss: 0, penalty: 0 };
    // Batches of another task than the one begun last switch the optimizer to its column.
    const { optimizer, headOnly } = this.training?.column === column ? this.training : this.train(column);
    const labelsBefore = column.labels.size;
    const { kept, units, rejected } = assignUnits(column.labels, batch.ys, this.options.maxClasses);
    if (kept.length === 0) return { loss: 0, penalty: 0, rejected };
    if (column.labels.size > headUnitsOf(column)) this.growHead(column, optimizer, headOnly);
    const x = toMatrix(kept.length === batch.xs.length ? batch.xs : kept.map((i) => batch.xs[i] as Float32Array), this.options.inputSize);
    const y = tf.tensor1d(units, 'int32');
    // Earlier columns are frozen: their activations, the laterals' inputs, are computed once per batch.
    const lateral = tf.tidy(() => this.columns.lateralInputs(this.columns.forward(x, column.index - 1)) as tf.Tensor2D[]) as LateralInputs;
    const variables = this.columns.trainableVariables(column, headOnly);
    let loss = 0;
    let refused = false;
    try {
      for (let step = 0; step < this.options.stepsPerBatch && !refused; step++) {
        const { applied, reading } = gradientStep({
          optimizer,
          variables,
          read: step === this.options.stepsPerBatch - 1,
          objective: () => {
            const taskLoss = classificationLoss(this.columns.forwardColumn(x, column, lateral).logits, y);
            return { objective: taskLoss, loss: taskLoss };
          },
        });
        if (reading) loss = reading.loss;
        refused = !applied;
      }
      if (!refused) this.inference.gate?.train(task.name, x);
    } finally {
      tf.dispose([x, y, ...lateral.filter((t): t is tf.Tensor2D => t !== null)]);
    }
    if (refused) return refuseBatch(column.labels, labelsBefore, kept, rejected);
    return rejected.length ? { loss, penalty: 0, rejected } : { loss, penalty: 0 };
  }

  classes(): ReadonlyMap<TaskName, readonly Label[]> {
    return new Map(this.columns.columns.map((c) => [c.task, c.labels.labels]));
  }

  async predict(task: TaskInfo | undefined, xs: readonly Float32Array[]): Promise<Prediction[]> {
    this.assertLive();
    if (xs.length === 0) return [];
    if (task && task.name !== TASK_AGNOSTIC) {
      const column = this.columns.columnOf(task.name);
      if (!column || column.labels.size === 0) return unanswered(xs, column ? NO_CLASSES_YET : NO_TASK_YET);
      const [probs] = this.probabilities(xs, [column]);
      return (probs as number[][]).map((p) => toPrediction(column.labels, p));
    }
    const usable = this.columns.columns.filter((c) => c.labels.size > 0);
    if (usable.length === 0) return unanswered(xs, NOTHING_LEARNED_YET);
    return predictWithoutTask(xs, this.options.inputSize, usable, (x) => this.softmaxes(x, usable), this.inference);
  }

  /** Nothing to consolidate: the column is frozen by the next beginTask, which trains another. */
  async endTask(_task: TaskInfo): Promise<void> {
    this.assertLive();
  }

  parameterCount(): number {
    return this.columns.parameterCount();
  }

  layerWeights(): Map<string, Float32Array> {
    return this.columns.layerWeights();
  }

  diagnostics(): readonly StrategyDiagnostic[] {
    return [
      { name: 'progressive_columns', help: 'Columns of the progressive network (one per task begun).', value: this.columns.columns.length },
      ...this.columns.columns.map((c) => ({
        name: 'progressive_column_parameters',
        help: 'Parameters of each column of the progressive network, its laterals included.',
        labels: { column: String(c.index + 1), task: c.task },
        value: this.columns.columnParameterCount(c),
      })),
      ...(this.inference.gate ? this.inference.gate.diagnostics() : []),
    ];
  }

  async exportState(): Promise<StrategyState> {
    this.assertLive();
    const model = this.columns.exportState();
    const tensors: Record<string, TensorSnapshot> = { ...model.tensors };
    const optimizerSlots = await exportOptimizer(this.training?.optimizer, 'optimizer', tensors);
    const router = await this.inference.gate?.exportState(ROUTER_PREFIX);
    if (router) Object.assign(tensors, router.tensors);
    return {
      strategy: this.name,
      format: STATE_FORMAT,
      meta: {
        shape: this.columns.shape,
        model: model.meta,
        training: this.training ? { column: this.training.column.index, headOnly: this.training.headOnly } : null,
        optimizerSlots,
        ...(router ? { router: router.meta } : {}),
      },
      tensors,
    };
  }

  async importState(state: StrategyState): Promise<void> {
    this.assertLive();
    checkStateHeader(state, this.name, STATE_FORMAT);
    const meta = state.meta as {
      shape: ColumnsShape;
      model: ReturnType<ProgressiveColumns['exportState']>['meta'];
      training: { column: number; headOnly: boolean } | null;
      optimizerSlots: number;
      router?: ExpertGateState['meta'];
    };
    if (JSON.stringify(meta.shape) !== JSON.stringify(this.columns.shape)) {
      throw new StrategyError(`checkpoint columns ${JSON.stringify(meta.shape)} do not match the pipeline's ${JSON.stringify(this.columns.shape)}`);
    }
    this.stopTraining();
    this.columns.importState({ meta: meta.model, tensors: state.tensors as Record<string, TensorSnapshot> });
    if (meta.training) {
      const column = this.columns.columns[meta.training.column];
      if (!column) throw new StrategyError(`state trains column ${meta.training.column + 1}, which it does not hold`);
      const { optimizer } = this.train(column, meta.training.headOnly);
      await importOptimizer(optimizer, 'optimizer', meta.optimizerSlots, state.tensors);
    }
    await this.inference.gate?.importState(ROUTER_PREFIX, meta.router ?? { tasks: [], experts: [] }, state.tensors);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.stopTraining();
    this.columns.dispose();
    this.inference.gate?.dispose();
  }

  /** Overwrites one named variable ("column-1.hidden-1.kernel"); used by tests and importers. */
  assignVariable(name: string, value: TensorSnapshot): void {
    const v = this.columns.namedVariables().get(name);
    if (!v) throw new StrategyError(`no variable ${name}`);
    assignSnapshot(v, value, name);
  }

  /** Widens the column's head to one unit per label it knows, and the optimizer's moments of the variables replaced. */
  private growHead(column: Column, optimizer: tf.Optimizer, headOnly: boolean): void {
    const before = this.columns.trainableVariables(column, headOnly);
    this.columns.growHead(column, column.labels.size);
    this.columns.trainableVariables(column, headOnly).forEach((v, i) => {
      if (v !== before[i]) growOptimizerSlots(optimizer, i, v);
    });
  }

  /** Trains `column` from now on (all of it if it is the newest, else its head only), with a fresh optimizer. */
  private train(column: Column, headOnly = column !== this.columns.last): Training {
    this.stopTraining();
    this.training = { column, headOnly, optimizer: createOptimizer(this.options) };
    return this.training;
  }

  private stopTraining(): void {
    this.training?.optimizer.dispose();
    this.training = undefined;
  }

  /** Softmax over each column's known labels, per column then per sample; one pass through the columns needed. */
  private probabilities(xs: readonly Float32Array[], columns: readonly Column[]): number[][][] {
    return readMatrices(xs, this.options.inputSize, (x) => this.softmaxes(x, columns));
  }

  /** Each column's softmax over its known labels (inside tidy). */
  private softmaxes(x: tf.Tensor2D, columns: readonly Column[]): tf.Tensor2D[] {
    const passes = this.columns.forward(x, Math.max(...columns.map((c) => c.index)));
    return columns.map((c) => tf.softmax((passes[c.index] as { logits: tf.Tensor2D }).logits));
  }

  private assertLive(): void {
    if (this.disposed) throw new StrategyError(`strategy "${this.name}" has been disposed`);
  }
}

export function createProgressive(options: StrategyOptions): Strategy {
  return new ProgressiveStrategy(options);
}

export const PROGRESSIVE_STRATEGY = defineStrategy({
  name: 'progressive',
  family: 'structure',
  summary: 'Progressive Networks (Rusu et al. 2016): a new column per task, earlier columns frozen, lateral connections.',
  create: createProgressive,
  params: PROGRESSIVE_PARAMS,
  capabilities: { needsTaskIdentity: true },
});
