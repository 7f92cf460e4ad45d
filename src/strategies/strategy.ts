import type { TensorSnapshot } from '../core/tensor-snapshot';
import type { Label, Prediction, Scenario, TaskInfo, TaskName } from '../core/types';

// Re-exported: strategies written against this module before the type moved to core keep compiling.
export type { TensorSnapshot } from '../core/tensor-snapshot';

/**
 * A strategy's complete state, enough to rebuild it in another process (checkpoints, prediction
 * replicas). `format` is bumped whenever the layout changes so that old checkpoints are refused
 * with a clear error instead of being misread.
 */
export interface StrategyState {
  readonly strategy: string;
  readonly format: number;
  /** JSON-safe metadata: label spaces, task list, hyperparameters, counters. */
  readonly meta: Readonly<Record<string, unknown>>;
  /** Named tensors: weights, anchors, Fisher diagonals, optimizer moments. */
  readonly tensors: Readonly<Record<string, TensorSnapshot>>;
}

/** Model shape and training settings a strategy is built with (from the pipeline file). */
export interface StrategyOptions {
  readonly scenario: Scenario;
  readonly inputSize: number;
  /** Hidden layer sizes of the MLP trunk, e.g. [400, 400]. */
  readonly hiddenLayers: readonly number[];
  /**
   * Output units each head (task-incremental) or the shared head starts with; 0 = none. A head
   * grows by one unit per new label beyond them, so this is an initial capacity, not a limit.
   */
  readonly outputUnits: number;
  /** Hard cap on the classes of one head (model.maxClasses); a label beyond it is refused ('label-capacity'). Absent or 0 = none. */
  readonly maxClasses?: number;
  readonly optimizer: 'adam' | 'sgd';
  readonly learningRate: number;
  /** Gradient steps taken on each micro-batch. */
  readonly stepsPerBatch: number;
  readonly seed: number;
  /** Strategy-specific hyperparameters (lambda, gamma...), validated by the strategy. */
  readonly params: Readonly<Record<string, unknown>>;
}

/** A labelled micro-batch of one task. xs[i] has inputSize features. */
export interface LabelledBatch {
  readonly xs: readonly Float32Array[];
  readonly ys: readonly Label[];
  /** Sample ids where the source gives them; a redelivered or revisited sample keeps its id, so memories store it once. */
  readonly ids?: readonly (string | undefined)[];
}

/**
 * One strategy-specific number for Prometheus (DEN's units added per layer, DGR's generator loss,
 * a replay buffer's fill...). Published as gauge `lifelong_strategy_<name>` with the given labels;
 * the engine reads diagnostics every few steps (with the layer weights) and at every task end.
 */
export interface StrategyDiagnostic {
  /** snake_case, unique per strategy, e.g. "den_units" or "generator_loss". */
  readonly name: string;
  readonly help: string;
  /** Label values (names must be the same set for every entry with this name), e.g. {layer:"hidden-1", event:"added", task:"t1"}. */
  readonly labels?: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface PredictAndTrainOptions {
  /**
   * False outside task-incremental learning: the predictions must then be those of
   * predict(undefined, xs), made without the task identity, as at test time. Default true.
   */
  readonly taskGiven?: boolean;
}

/** A sample of a batch the strategy refused to learn. */
export interface TrainRejection {
  /** Index in the batch. */
  readonly index: number;
  /** Why, for people (logs, the dead letter's detail). */
  readonly reason: string;
  /**
   * Why, as a short stable slug (a metric label and the dead letter's reason), e.g.
   * 'label-capacity' or 'non-finite-update'. Absent: 'strategy-refused'.
   */
  readonly code?: string;
}

export interface TrainResult {
  /** Mean task loss over the batch (last gradient step), without the penalty. */
  readonly loss: number;
  /** The regularisation penalty added to the loss, 0 where there is none. */
  readonly penalty: number;
  /**
   * Samples of the batch the strategy could not learn (e.g. a label beyond model.maxClasses),
   * by index in the batch, with the reason; the others were trained on. The engine counts these
   * as rejected, and a Kafka source's sink dead-letters them.
   */
  readonly rejected?: readonly TrainRejection[];
}

/**
 * The contract every continual-learning method implements (River's tiny learn/predict contract
 * plus Avalanche's task lifecycle). Methods are asynchronous so that a strategy may await tensor
 * downloads; the engine calls them from one operator only (operators/apply-strategy.ts), in order,
 * never concurrently.
 *
 * Lifecycle: beginTask(t) -> trainBatch(t, ...)* -> endTask(t) -> beginTask(t+1) ...
 * predict may be called at any time, for any known task or with no task.
 */
export interface Strategy {
  readonly name: string;
  /**
   * True when predict(undefined) picks one of several heads or columns and names it
   * (`inferredTask`): the engine then scores task inference on the probes at each task end.
   */
  readonly infersTask?: boolean;
  /** A task boundary: the model may grow here and the optimizer is rebuilt here. */
  beginTask(task: TaskInfo): Promise<void>;
  /** Learn one micro-batch of the current task. Never keeps the samples. */
  trainBatch(task: TaskInfo, batch: LabelledBatch): Promise<TrainResult>;
  /**
   * Optional: test-then-train in one pass. Returns the predictions the model made for the batch
   * *before* learning it (over the labels it knew before the batch), then learns the batch, as
   * predict() followed by trainBatch() would, but sharing the forward pass. The engine uses it
   * where present; it must not change what is learned.
   */
  predictAndTrain?(task: TaskInfo, batch: LabelledBatch, options?: PredictAndTrainOptions): Promise<{ readonly predictions: Prediction[]; readonly result: TrainResult }>;
  /**
   * Predict for inputs of a known task (task-incremental heads need it), or with task undefined
   * (task-agnostic: the strategy answers over every class it knows and may infer the task).
   */
  predict(task: TaskInfo | undefined, xs: readonly Float32Array[]): Promise<Prediction[]>;
  /** The task's data has streamed by: compute importances, anchors, snapshots. */
  endTask(task: TaskInfo): Promise<void>;
  /** Trainable parameters in use now (grows with heads and columns). */
  parameterCount(): number;
  /** Current weights of each layer of the shared trunk and heads, by layer name, for drift. */
  layerWeights(): Map<string, Float32Array>;
  /** Optional strategy-specific numbers for dashboards; cheap (no tensor downloads). */
  diagnostics?(): readonly StrategyDiagnostic[];
  /**
   * Optional: the label registry. The labels each head (or column) knows, in the order of its
   * units (the order of first sight), by the task it answers for; TASK_AGNOSTIC ('*') for a head
   * shared by every task. Cheap (no tensor downloads); published as lifelong_classes{task}.
   */
  classes?(): ReadonlyMap<TaskName, readonly Label[]>;
  exportState(): Promise<StrategyState>;
  importState(state: StrategyState): Promise<void>;
  /** Frees every tensor the strategy owns. Safe to call twice. */
  dispose(): void;
}

/** Builds a strategy; registered by name (strategies/registry.ts) or exported by a user module. */
export type StrategyFactory = (options: StrategyOptions) => Strategy;
