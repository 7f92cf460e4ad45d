import { Observable, type OperatorFunction } from 'rxjs';
import { ConfigError } from '../core/errors';
import { isTaskControl, TASK_AGNOSTIC, TASK_AGNOSTIC_INFO, type SourceItem, type TaskInfo, type TaskName } from '../core/types';
import type { TaskEndReason, TaskEvent } from './events';
import type { TaskFreeSplits } from './task-free-splits';

export interface DetectTaskBoundariesOptions {
  /**
   * Tasks already learned, in index order (e.g. restored from a checkpoint). They count as
   * ended: their samples are tagged with their TaskInfo and never begin them again, and the
   * first new task gets index `initialTasks.length`.
   */
  readonly initialTasks?: readonly TaskName[];
  /**
   * The one of `initialTasks` still being learned when the checkpoint was taken: it continues
   * (current, no task-begin again) instead of counting as ended.
   */
  readonly currentTask?: TaskName;
  /**
   * Aborted when the daemon is shutting down: the completion that follows is not an end of the
   * current task (it is not over, a restart continues it), so no task-end is emitted.
   */
  readonly shutdown?: AbortSignal;
  /**
   * Task-free mode: a sample's task is its topic's current task (`<topic>`, `<topic>#2`...), and
   * the first sample routed after a split ends the current task with reason 'drift'.
   */
  readonly taskFree?: TaskFreeSplits;
}

/**
 * Turns a stream of samples into task events. Tasks are numbered in order of first appearance
 * and learned once:
 * - a sample of a task never seen ends the current task (reason 'next-task', unless it already
 *   ended), begins the new one, then is emitted as a sample event;
 * - a sample of the current task, or of an earlier, ended task, is emitted as a sample event
 *   tagged with its own task (the current task stays current);
 * - a task-agnostic request (task TASK_AGNOSTIC) is tagged TASK_AGNOSTIC_INFO and changes nothing;
 * - an end-of-task marker for the current task ends it with the marker's reason; markers for an
 *   ended or unknown task change nothing (a source may repeat them, e.g. idle timers);
 * - completion ends the current task with reason 'end-of-stream' (not after a shutdown), then
 *   completes;
 * - an error passes through without a task-end (the task did not finish streaming);
 * - in task-free mode, samples and markers name a topic, and `taskFree` says which of the topic's
 *   tasks they belong to.
 */
export function detectTaskBoundaries(
  options: DetectTaskBoundariesOptions = {},
): OperatorFunction<SourceItem, TaskEvent> {
  const initialTasks = options.initialTasks ?? [];
  if (new Set(initialTasks).size !== initialTasks.length) {
    throw new ConfigError(`detectTaskBoundaries: initialTasks contains a task twice: [${initialTasks.join(', ')}]`);
  }
  if (options.currentTask !== undefined && !initialTasks.includes(options.currentTask)) {
    throw new ConfigError(`detectTaskBoundaries: currentTask ${options.currentTask} is not one of initialTasks [${initialTasks.join(', ')}]`);
  }

  return (source) =>
    new Observable<TaskEvent>((subscriber) => {
      // Per subscription, so that a resubscribed pipeline starts from the same known tasks.
      const known = new Map<TaskName, TaskInfo>(
        initialTasks.map((name, index) => [name, Object.freeze({ name, index })]),
      );
      // The task being learned; undefined before the first new task and after an explicit end.
      let current: TaskInfo | undefined = options.currentTask === undefined ? undefined : known.get(options.currentTask);

      const endCurrent = (reason: TaskEndReason): void => {
        if (current === undefined) return;
        const task = current;
        current = undefined;
        subscriber.next({ kind: 'task-end', task, reason });
      };

      const subscription = source.subscribe({
        next: (item) => {
          if (isTaskControl(item)) {
            const name = options.taskFree ? options.taskFree.taskOf(item.task) : item.task;
            if (current !== undefined && current.name === name) endCurrent(item.reason);
            return;
          }
          if (item.task === TASK_AGNOSTIC) {
            subscriber.next({ kind: 'sample', task: TASK_AGNOSTIC_INFO, sample: item });
            return;
          }
          const routed = options.taskFree ? options.taskFree.route(item.task) : { task: item.task, split: false };
          let task = known.get(routed.task);
          if (task === undefined) {
            endCurrent(routed.split ? 'drift' : 'next-task');
            task = Object.freeze({ name: routed.task, index: known.size });
            known.set(routed.task, task);
            current = task;
            subscriber.next({ kind: 'task-begin', task });
          }
          subscriber.next({ kind: 'sample', task, sample: item });
        },
        error: (error: unknown) => subscriber.error(error),
        complete: () => {
          if (options.shutdown?.aborted !== true) endCurrent('end-of-stream');
          subscriber.complete();
        },
      });

      return () => {
        subscription.unsubscribe();
        known.clear();
      };
    });
}
