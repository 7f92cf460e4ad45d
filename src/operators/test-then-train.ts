import { defer, map, type OperatorFunction } from 'rxjs';
import { ConfigError } from '../core/errors';
import type { SampleKind, TaskInfo, TaskName } from '../core/types';
import type { BatchedEvent, BatchEvent, PlannedEvent, SampleEvent, StepEvent } from './events';

export interface TestThenTrainPolicy {
  /** A labelled sample of an ended task: score it ('evaluate') or count it as 'rejected'. */
  readonly endedTaskLabelled: 'evaluate' | 'ignore';
  /**
   * Keep labelled samples of the current task aside as its evaluation probe (for sources with no
   * test split): every `every`-th labelled sample of a task, at most `maxPerTask` per task.
   */
  readonly holdout?: { readonly every: number; readonly maxPerTask: number };
}

/** Where planning stood at a checkpoint: the task being learned and the holdout counters per task. */
export interface PlanState {
  readonly current?: TaskInfo;
  /** Labelled samples of the task planned so far, and how many of them were held out. */
  readonly holdout: Readonly<Record<TaskName, { readonly seen: number; readonly kept: number }>>;
}

/**
 * Decides, per sample, what the engine does with each micro-batch (prequential evaluation:
 * every training sample is predicted and scored before it is trained on):
 * - labelled, current task: 'trained', or 'held-out' when the holdout policy picks it;
 * - unlabelled (any task): 'predicted';
 * - labelled, ended task (or no task current): 'evaluated', or 'rejected' with 'ignore'.
 * task-begin, task-end and checkpoint markers pass through. Deterministic: the holdout uses
 * per-task counters, which `resumed` restores from a checkpoint.
 */
export function testThenTrain(policy: TestThenTrainPolicy, resumed?: PlanState): OperatorFunction<BatchedEvent, PlannedEvent> {
  validatePolicy(policy);
  const endedKind: SampleKind = policy.endedTaskLabelled === 'evaluate' ? 'evaluated' : 'rejected';
  const holdout = policy.holdout;

  return (source) =>
    defer(() => {
      // Per subscription; bounded by the number of tasks.
      const counters = Object.entries(resumed?.holdout ?? {});
      const labelledSeen = new Map<TaskName, number>(counters.map(([task, c]) => [task, c.seen]));
      const heldOut = new Map<TaskName, number>(counters.map(([task, c]) => [task, c.kept]));
      let current: TaskInfo | undefined = resumed?.current;

      const decide = (event: SampleEvent): SampleKind => {
        if (event.sample.y === undefined) return 'predicted';
        if (current === undefined || event.task.name !== current.name) return endedKind;
        if (holdout === undefined) return 'trained';
        const name = current.name;
        const seen = (labelledSeen.get(name) ?? 0) + 1;
        labelledSeen.set(name, seen);
        const kept = heldOut.get(name) ?? 0;
        if (seen % holdout.every === 0 && kept < holdout.maxPerTask) {
          heldOut.set(name, kept + 1);
          return 'held-out';
        }
        return 'trained';
      };

      const plan = (batch: BatchEvent): StepEvent => ({
        kind: 'step',
        task: batch.task,
        samples: batch.samples,
        plan: batch.samples.map(decide),
      });

      return source.pipe(
        map((event): PlannedEvent => {
          switch (event.kind) {
            case 'batch':
              return plan(event);
            case 'task-begin':
              current = event.task;
              return event;
            case 'checkpoint':
              return event;
            case 'task-end':
              if (current !== undefined && current.name === event.task.name) current = undefined;
              return event;
          }
        }),
      );
    });
}

function validatePolicy(policy: TestThenTrainPolicy): void {
  if (policy.endedTaskLabelled !== 'evaluate' && policy.endedTaskLabelled !== 'ignore') {
    throw new ConfigError(
      `testThenTrain: endedTaskLabelled must be 'evaluate' or 'ignore', got ${JSON.stringify(policy.endedTaskLabelled)}`,
    );
  }
  const holdout = policy.holdout;
  if (holdout === undefined) return;
  if (!Number.isInteger(holdout.every) || holdout.every < 1) {
    throw new ConfigError(`testThenTrain: holdout.every must be an integer >= 1, got ${holdout.every}`);
  }
  if (!Number.isInteger(holdout.maxPerTask) || holdout.maxPerTask < 0) {
    throw new ConfigError(`testThenTrain: holdout.maxPerTask must be an integer >= 0, got ${holdout.maxPerTask}`);
  }
}
