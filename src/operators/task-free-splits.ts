import type { TaskName } from '../core/types';

/** `<topic>#<n>`: the n-th task of a topic in task-free mode (the first is the topic itself). */
const SEGMENT = /^(.*)#([1-9][0-9]*)$/;

/**
 * Task-free mode (drift.taskFree): the tasks of each topic, which a confirmed concept drift splits.
 * A topic's first task is named after it, the next ones `<topic>#2`, `<topic>#3`... ('#' cannot be
 * in a Kafka topic name, so the names never collide with a topic's).
 *
 * Shared by the two ends of the engine: applyStrategy, which learns the prequential error and
 * so confirms a drift (split), and detectTaskBoundaries upstream, which routes each sample of a
 * topic to its current task and cuts the boundary at the first sample it routes after a split.
 * Samples already past detectTaskBoundaries (at most two batches, by the credits) stay in the
 * old task.
 */
export class TaskFreeSplits {
  /** Topic -> its current task and how many it has had. */
  private readonly current = new Map<string, { task: TaskName; count: number }>();
  private readonly pending = new Set<string>();

  /** `tasks`: the tasks already begun, in order (a checkpoint's registry): each topic goes on with its last. */
  constructor(tasks: readonly TaskName[] = []) {
    for (const task of tasks) {
      const { topic, ordinal } = parseSegment(task);
      const known = this.current.get(topic);
      if (known === undefined || ordinal > known.count) this.current.set(topic, { task, count: ordinal });
    }
  }

  /** The topic a task belongs to. */
  static topicOf(task: TaskName): string {
    return parseSegment(task).topic;
  }

  /**
   * The task a sample of `topic` belongs to now. After a split of the topic, the first call
   * begins its next task: `split` is then true.
   */
  route(topic: string): { task: TaskName; split: boolean } {
    const known = this.current.get(topic);
    if (known === undefined) {
      this.current.set(topic, { task: topic, count: 1 });
      return { task: topic, split: false };
    }
    if (!this.pending.delete(topic)) return { task: known.task, split: false };
    const count = known.count + 1;
    const task = `${topic}#${count}`;
    this.current.set(topic, { task, count });
    return { task, split: true };
  }

  /** The current task of `topic` (an end-of-task marker of the topic ends it); the topic itself before its first sample. */
  taskOf(topic: string): TaskName {
    return this.current.get(topic)?.task ?? topic;
  }

  /**
   * Asks for `task` to end at its topic's next sample; false (and nothing changes) when it is not
   * its topic's current task any more or a split is already pending.
   */
  split(task: TaskName): boolean {
    const topic = TaskFreeSplits.topicOf(task);
    if (this.current.get(topic)?.task !== task || this.pending.has(topic)) return false;
    this.pending.add(topic);
    return true;
  }

  /** The task the next sample of `task`'s topic will begin once a split is pending, else undefined. */
  nextTaskAfter(task: TaskName): TaskName | undefined {
    const topic = TaskFreeSplits.topicOf(task);
    const known = this.current.get(topic);
    return known !== undefined && this.pending.has(topic) ? `${topic}#${known.count + 1}` : undefined;
  }
}

function parseSegment(task: TaskName): { topic: string; ordinal: number } {
  const match = SEGMENT.exec(task);
  return match ? { topic: match[1] as string, ordinal: Number(match[2]) } : { topic: task, ordinal: 1 };
}
