/**
 * The data model shared by sources, the pipeline, strategies and sinks.
 * Everything here is plain data (no tensors) so that it can cross operator boundaries,
 * be marble-tested, and be serialised.
 */

/** The three continual-learning scenarios of van de Ven & Tolias (2019). */
export type Scenario = 'task-incremental' | 'domain-incremental' | 'class-incremental';
export const SCENARIOS: readonly Scenario[] = ['task-incremental', 'domain-incremental', 'class-incremental'];

/** A task is named by a string: an embedded stream's task name or, with Kafka, the topic. */
export type TaskName = string;

/**
 * Labels are strings: any label a user sends (number or string) is kept as its string form and
 * mapped to an output unit in order of first appearance (see models/label-space.ts).
 */
export type Label = string;

/**
 * The task of a task-agnostic prediction request (Kafka's request topic): the model answers over
 * every class it has learned and may infer the task. '*' cannot be a Kafka topic name, so it never
 * collides with a real task.
 */
export const TASK_AGNOSTIC: TaskName = '*';

/** The TaskInfo tagging task-agnostic requests in the pipeline: never begun, never learned. */
export const TASK_AGNOSTIC_INFO: TaskInfo = Object.freeze({ name: TASK_AGNOSTIC, index: -1 });

/** One sample as it arrives from a source. */
export interface Sample {
  readonly task: TaskName;
  /** Features, already validated to the pipeline's input size and finite. */
  readonly x: Float32Array;
  /** Absent for a prediction request. */
  readonly y?: Label;
  /** Caller's id, echoed with the prediction; never used as a metric label. */
  readonly id?: string;
  /** Opaque source context (for example a Kafka offset to commit); the engine passes it through. */
  readonly ref?: unknown;
}

/** What the engine decided to do with a sample. Counted in lifelong_samples_total{kind}. */
export type SampleKind = 'trained' | 'evaluated' | 'predicted' | 'rejected' | 'held-out';

/** One prediction for one sample. */
export interface Prediction {
  /** Null when the model knows no class for this input yet (a task's head before its first batch); `reason` then says why. */
  readonly label: Label | null;
  /** Why `label` is null, for people (e.g. "the task has no learned classes yet"); absent when there is a label. */
  readonly reason?: string;
  /** Probabilities over the labels the answering head knows, in the head's unit order. */
  readonly probabilities: Readonly<Record<Label, number>>;
  /** The task whose head or column answered, where the strategy had to infer it. */
  readonly inferredTask?: TaskName;
  /**
   * How sure the task router is that `inferredTask` is the input's task, in [0, 1]: Expert Gate's
   * softmax over reconstruction errors. Absent where no router chose (a rule over the heads' own
   * softmax, or the task was given).
   */
  readonly confidence?: number;
}

/** A task as the engine knows it. `index` counts from 0 in order of first appearance. */
export interface TaskInfo {
  readonly name: TaskName;
  readonly index: number;
}

/**
 * An explicit end of a task, sent by a source in-band with its samples: 'control' when a user or
 * producer says the task is over, 'idle' when a live source saw no sample of it for too long.
 */
export interface TaskControl {
  readonly kind: 'end-of-task';
  readonly task: TaskName;
  readonly reason: 'control' | 'idle';
}

/** What a source yields: samples, plus end-of-task markers. */
export type SourceItem = Sample | TaskControl;

/** Builds an end-of-task marker. */
export function endOfTask(task: TaskName, reason: TaskControl['reason'] = 'control'): TaskControl {
  return { kind: 'end-of-task', task, reason };
}

/** True for an end-of-task marker (a Sample has no `kind`). */
export function isTaskControl(item: SourceItem): item is TaskControl {
  return (item as Partial<TaskControl>).kind === 'end-of-task';
}
