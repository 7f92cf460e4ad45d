import { InvariantError } from '../core/errors';
import type { TaskName } from '../core/types';

/** The task label under which counters count the tasks beyond the cap. */
export const OTHER_TASKS = '_other';

/**
 * Which tasks have series of their own on /metrics: the newest `max` by first appearance.
 * Every per-task series costs the scraper memory, and a long-lived daemon learns task after task
 * (the accuracy matrix alone has a series per pair), so the number of tasks exported is capped.
 * When a new task pushes the oldest one out, that task's gauges are removed (an accuracy of
 * "the other tasks" would mean nothing) and its counts move to task="_other" (a count summed over
 * tasks stays exact, so sum() over the counter stays right).
 */
export class ExportedTasks {
  /** Exported tasks, oldest first. */
  private readonly order: TaskName[] = [];
  private readonly seen = new Set<TaskName>();
  /** Tasks pushed out (names only: no series). */
  private readonly retired = new Set<TaskName>();

  constructor(readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new InvariantError(`ExportedTasks: the cap must be an integer >= 1, got ${max}`);
  }

  /** Notes a task; returns the task it pushed out of the exported ones, if any. '' (unknown) and "_other" take no place. */
  note(task: TaskName): TaskName | undefined {
    if (task === '' || task === OTHER_TASKS || this.seen.has(task)) return undefined;
    this.seen.add(task);
    this.order.push(task);
    if (this.order.length <= this.max) return undefined;
    const oldest = this.order.shift() as TaskName;
    this.retired.add(oldest);
    return oldest;
  }

  /** False for a task pushed out by newer ones. */
  exported(task: TaskName): boolean {
    return !this.retired.has(task);
  }

  /** The task label a counter counts `task` under. */
  counterLabel(task: TaskName): TaskName {
    return this.exported(task) ? task : OTHER_TASKS;
  }
}
