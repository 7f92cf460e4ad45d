import type { Sample, TaskInfo } from '../core/types';
import type { Source } from './source';

/**
 * The held-out evaluation probe of each task: from the source's test split where it has one
 * (embedded MNIST), else the labelled samples test-then-train held out of the stream. These small
 * probes are the only samples the daemon keeps after a task ends.
 */
export class ProbeStore {
  private readonly heldOut = new Map<string, Sample[]>();
  private readonly tasks: TaskInfo[] = [];

  constructor(
    private readonly source: Pick<Source, 'probe' | 'knownTasks'>,
    private readonly size: number,
  ) {
    (source.knownTasks?.() ?? []).forEach((name, index) => this.tasks.push({ name, index }));
  }

  /** Tasks with a probe or expected to have one, by index. */
  known(): readonly TaskInfo[] {
    return this.tasks;
  }

  noteTask(task: TaskInfo): void {
    if (!this.tasks.some((t) => t.name === task.name)) this.tasks[task.index] = task;
  }

  hold(task: TaskInfo, sample: Sample): void {
    this.noteTask(task);
    const list = this.heldOut.get(task.name) ?? [];
    if (list.length < this.size) list.push(sample);
    this.heldOut.set(task.name, list);
  }

  /** The samples held out of the stream, per task (what a checkpoint keeps). */
  heldOutSamples(): Record<string, readonly Sample[]> {
    return Object.fromEntries(this.heldOut);
  }

  /** Restores a checkpoint's tasks and held-out samples. */
  restore(tasks: readonly TaskInfo[], heldOut: Readonly<Record<string, readonly Sample[]>>): void {
    tasks.forEach((task) => this.noteTask(task));
    for (const [task, samples] of Object.entries(heldOut)) this.heldOut.set(task, samples.slice(0, this.size));
  }

  probe(task: TaskInfo): readonly Sample[] {
    return this.source.probe?.(task.name, this.size) ?? this.heldOut.get(task.name) ?? [];
  }
}
