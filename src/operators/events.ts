import type { Prediction, Sample, SampleKind, TaskInfo, TaskName } from '../core/types';
import type { DriftConfirmation, TaskDriftStatus } from '../metrics/concept-drift';
import type { StrategyDiagnostic } from '../strategies/strategy';

/** Why a task ended ('drift': a confirmed concept drift split its topic, in task-free mode). */
export type TaskEndReason = 'next-task' | 'end-of-stream' | 'control' | 'idle' | 'drift';

export interface TaskBeginEvent {
  readonly kind: 'task-begin';
  readonly task: TaskInfo;
}
export interface TaskEndEvent {
  readonly kind: 'task-end';
  readonly task: TaskInfo;
  readonly reason: TaskEndReason;
}
/** A sample tagged with the task it belongs to (which may be an earlier, ended task). */
export interface SampleEvent {
  readonly kind: 'sample';
  readonly task: TaskInfo;
  readonly sample: Sample;
}
/**
 * A checkpoint is due ('interval': checkpoint.everySeconds passed; 'shutdown': the stream
 * completed). It flows in order with the samples: the micro-batcher flushes before it, and
 * applyStrategy writes the checkpoint once every earlier step was trained, published and
 * acknowledged (operators/schedule-checkpoints.ts emits it).
 */
export interface CheckpointMarker {
  readonly kind: 'checkpoint';
  readonly reason: 'interval' | 'shutdown';
}
/** Output of detectTaskBoundaries (and of scheduleCheckpoints, which adds markers). */
export type TaskEvent = TaskBeginEvent | SampleEvent | TaskEndEvent | CheckpointMarker;

/** A micro-batch: samples in stream order, never spanning a task boundary. */
export interface BatchEvent {
  readonly kind: 'batch';
  /** The task current when the batch was formed. */
  readonly task: TaskInfo;
  readonly samples: readonly SampleEvent[];
}
/** Output of microBatch. */
export type BatchedEvent = TaskBeginEvent | BatchEvent | TaskEndEvent | CheckpointMarker;

/**
 * A batch with a decision per sample (test-then-train's plan):
 * - 'trained': predict and score first (prequential), then train on it;
 * - 'evaluated': predict and score only (a labelled sample of an ended task);
 * - 'predicted': predict only (no label);
 * - 'held-out': kept aside as the task's evaluation probe, never trained on;
 * - 'rejected': ignored by policy (counted, never silently dropped).
 */
export interface StepEvent {
  readonly kind: 'step';
  readonly task: TaskInfo;
  readonly samples: readonly SampleEvent[];
  readonly plan: readonly SampleKind[];
}
/** Output of testThenTrain. */
export type PlannedEvent = TaskBeginEvent | StepEvent | TaskEndEvent | CheckpointMarker;

/** Why a sample was refused: by the strategy (TrainResult.rejected) or by the ended-task policy (TASK_ENDED). */
export interface SampleRejection {
  /** A short stable slug (a metric label, a dead letter's reason): the strategy's code, else 'strategy-refused'. */
  readonly reason: string;
  /** The strategy's words. */
  readonly detail: string;
}

/** The reason of a strategy's refusal that gave no code. */
export const STRATEGY_REFUSED = 'strategy-refused';
/** The reason of a labelled sample of an ended task refused by policy (evaluation.endedTaskLabelled 'ignore'). */
export const TASK_ENDED = 'task-ended';

/** The drift numbers of one step's tasks (operators/watch-concept-drift.ts). */
export interface StepDrift {
  /** Each task the step's samples fed, as it stands after the step. */
  readonly status: readonly TaskDriftStatus[];
  /** Drifts confirmed during the step; `nextTask`: the task task-free mode begins at the next sample of the topic. */
  readonly confirmed: readonly (DriftConfirmation & { readonly nextTask?: string })[];
}

/** What happened to one step, produced by the one asynchronous operator (applyStrategy). */
export interface StepOutcome {
  readonly kind: 'step-outcome';
  readonly task: TaskInfo;
  readonly samples: readonly SampleEvent[];
  readonly plan: readonly SampleKind[];
  /** One per sample; undefined where the sample was not predicted (held-out, rejected). */
  readonly predictions: readonly (Prediction | undefined)[];
  /**
   * One per sample where some were refused (by the strategy, or by the ended-task policy): why (planned
   * 'rejected'; a Kafka sink dead-letters them before they are acknowledged). Absent when it refused none.
   */
  readonly rejections?: readonly (SampleRejection | undefined)[];
  /** Training loss of the step, if it trained. */
  readonly loss?: number;
  /** Seconds spent in the training step (forward, backward, update). */
  readonly trainSeconds?: number;
  /** Seconds spent predicting the samples answered apart from training, if there were any. */
  readonly predictSeconds?: number;
  /** Monotonic model version after the step. */
  readonly modelVersion: number;
  /** Trainable parameters in use after the step. */
  readonly parameters: number;
  /** Classes each head knows after the step, by task ('*': a shared head), where the strategy has a label registry (Strategy.classes). */
  readonly classes?: ReadonlyMap<TaskName, number>;
  /** Each layer's weights, attached every few steps (for live semantic drift), else undefined. */
  readonly layerWeights?: ReadonlyMap<string, Float32Array>;
  /** The strategy's own numbers (units added, generator loss...), attached with layerWeights. */
  readonly diagnostics?: readonly StrategyDiagnostic[];
  /** Concept, input and label drift, where the engine watches drift. */
  readonly drift?: StepDrift;
}

/** Emitted after a task ended and every probe was evaluated. */
export interface TaskOutcome {
  readonly kind: 'task-outcome';
  readonly task: TaskInfo;
  readonly reason: TaskEndReason;
  /** Accuracy on each known task's probe after learning this task, by task index (null: no probe). */
  readonly probeAccuracy: readonly (number | null)[];
  /**
   * Task inference on each known task's probe, by task index: the share of the probe that the
   * strategy, asked without the task, answers naming that task (`inferredTask`). Null where the
   * probe is empty or no answer names a task; absent when none does (a strategy with one head).
   */
  readonly taskInferenceAccuracy?: readonly (number | null)[];
  readonly modelVersion: number;
  readonly parameters: number;
  /** Each layer's weights at the end of the task (semantic drift is measured from these). */
  readonly layerWeights: ReadonlyMap<string, Float32Array>;
  readonly diagnostics?: readonly StrategyDiagnostic[];
}

export interface TaskStartedOutcome {
  readonly kind: 'task-started';
  readonly task: TaskInfo;
  /**
   * Only before the first task: accuracy of the untrained model on each known task's probe (the
   * forward-transfer baseline b_j), by task index; null where it cannot answer.
   */
  readonly baselineAccuracy?: readonly (number | null)[];
  readonly parameters: number;
}

/** Output of applyStrategy: what the sinks consume. */
export type EngineEvent = TaskStartedOutcome | StepOutcome | TaskOutcome;
