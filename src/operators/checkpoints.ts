import type { Sample, TaskName } from '../core/types';
import type { PlanState } from './test-then-train';

/**
 * Where a source stands, covering every item it has handed on: opaque to the engine and
 * JSON-safe. Kafka: "topic/partition" -> the next offset to read.
 */
export type SourcePositions = Readonly<Record<string, number>>;

/** The tasks as the engine knew them at a checkpoint. */
export interface TaskRegistryState {
  /** Every task begun, in index order. */
  readonly tasks: readonly TaskName[];
  /** The one still being learned (not ended), if any: it is the last of `tasks`. */
  readonly current?: TaskName;
}

/**
 * The operators' part of a checkpoint, taken by applyStrategy between two events: everything
 * before it in the stream was trained, published and acknowledged, nothing after it was.
 */
export interface EngineSnapshot extends TaskRegistryState {
  readonly modelVersion: number;
  /** Test-then-train's holdout counters per task. */
  readonly holdout: PlanState['holdout'];
  /** Held-out probe samples per task (the stream's own; a source's test split is not kept). */
  readonly probes: Readonly<Record<TaskName, readonly Sample[]>>;
  /** What the source had handed on up to the last event processed. */
  readonly positions: SourcePositions;
}

export type CheckpointReason = 'samples' | 'interval' | 'task-end' | 'shutdown';

/** Makes a snapshot durable together with the strategy and the metrics (engine/run-pipeline.ts). */
export interface CheckpointWriter {
  /** Resolves once the checkpoint is on disk; the source may then commit its positions. */
  write(snapshot: EngineSnapshot, reason: CheckpointReason): Promise<void>;
}
