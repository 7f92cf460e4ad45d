import type { SampleKind, TaskInfo, TaskName } from '../core/types';
import { AccuracyMatrix, type MaybeAccuracy } from '../metrics/continual';
import { DriftTracker, type DriftResult } from '../metrics/drift';
import { PrequentialAccuracy, type TaskTally } from '../metrics/prequential';
import type { EngineEvent } from '../operators/events';

/** Per-task counts of what happened to samples. */
export type SampleCounts = Record<SampleKind, number>;

/**
 * What a checkpoint keeps of a run's record, so that the report and the gauges carry on after a
 * restart. Drift snapshots are not kept (they are whole weight sets): after a restart, drift is
 * measured from the task ends that follow it.
 */
export interface RecorderState {
  readonly tasks: readonly (TaskInfo | null)[];
  readonly current: TaskInfo | null;
  readonly rows: readonly MaybeAccuracy[][];
  readonly baseline: readonly MaybeAccuracy[];
  readonly prequential: Readonly<Record<TaskName, TaskTally>>;
  readonly counts: Readonly<Record<TaskName, SampleCounts>>;
  readonly parametersAfterTask: readonly (number | null)[];
  readonly parameters: number;
  readonly modelVersion: number;
  readonly lastLoss: number | null;
  readonly trainSeconds: number;
  readonly tasksLearned: number;
}

const zeroCounts = (): SampleCounts => ({ trained: 0, evaluated: 0, predicted: 0, rejected: 0, 'held-out': 0 });

/**
 * Everything the run's metrics are computed from, updated from engine events only (pure: no
 * tensors, no I/O). The Prometheus sink, the progress display and the JSON report all read it.
 */
export class RunRecorder {
  readonly matrix = new AccuracyMatrix();
  readonly prequential = new PrequentialAccuracy();
  readonly drift = new DriftTracker();
  readonly tasks: TaskInfo[] = [];
  readonly counts = new Map<TaskName, SampleCounts>();
  /** Parameter count after each task, by task index. */
  readonly parametersAfterTask: number[] = [];
  current: TaskInfo | undefined;
  parameters = 0;
  modelVersion = 0;
  lastLoss: number | undefined;
  trainSeconds = 0;
  latestDrift: DriftResult = [];
  tasksLearned = 0;

  /** `knownTasks`: task names known before the stream starts (embedded sources). */
  constructor(knownTasks: readonly TaskName[] = []) {
    knownTasks.forEach((name, index) => (this.tasks[index] = { name, index }));
  }

  /** Counts a sample the source rejected before it became a Sample. */
  reject(task: TaskName | undefined, n = 1): void {
    this.countsOf(task ?? 'unknown').rejected += n;
  }

  observe(event: EngineEvent): void {
    switch (event.kind) {
      case 'task-started':
        this.current = event.task;
        this.tasks[event.task.index] = event.task;
        this.parameters = event.parameters;
        event.baselineAccuracy?.forEach((acc, j) => this.matrix.setBaseline(j, acc));
        break;
      case 'step-outcome': {
        event.plan.forEach((kind, i) => {
          const s = event.samples[i];
          if (!s) return;
          // Task-agnostic requests (index -1) are counted under '*' but are no task of the matrix.
          if (s.task.index >= 0 && !this.tasks[s.task.index]) this.tasks[s.task.index] = s.task;
          this.countsOf(s.task.name)[kind] += 1;
          const p = event.predictions[i];
          if ((kind === 'trained' || kind === 'evaluated') && p && s.sample.y !== undefined) {
            this.prequential.record(s.task.name, p.label === s.sample.y);
          }
        });
        if (event.loss !== undefined) this.lastLoss = event.loss;
        if (event.trainSeconds !== undefined) this.trainSeconds += event.trainSeconds;
        this.parameters = event.parameters;
        this.modelVersion = event.modelVersion;
        if (event.layerWeights) this.latestDrift = this.drift.drift(event.layerWeights);
        break;
      }
      case 'task-outcome':
        this.matrix.setRow(event.task.index, event.probeAccuracy);
        this.parametersAfterTask[event.task.index] = event.parameters;
        this.parameters = event.parameters;
        this.modelVersion = event.modelVersion;
        this.tasksLearned += 1;
        // Drift is measured against the ends of earlier tasks, then this task's end is kept.
        this.latestDrift = this.drift.drift(event.layerWeights);
        this.drift.snapshot(event.task.index, event.layerWeights);
        break;
    }
  }

  exportState(): RecorderState {
    const { rows, baseline } = this.matrix.toJSON();
    return {
      tasks: Array.from(this.tasks, (t) => t ?? null),
      current: this.current ?? null,
      rows,
      baseline,
      prequential: this.prequential.exportState(),
      counts: Object.fromEntries([...this.counts].map(([task, c]) => [task, { ...c }])),
      parametersAfterTask: Array.from(this.parametersAfterTask, (p) => p ?? null),
      parameters: this.parameters,
      modelVersion: this.modelVersion,
      lastLoss: this.lastLoss ?? null,
      trainSeconds: this.trainSeconds,
      tasksLearned: this.tasksLearned,
    };
  }

  /** Carries on from a checkpoint's record (see RecorderState for what is not kept). */
  importState(state: RecorderState): void {
    state.tasks.forEach((t, i) => t && (this.tasks[i] = t));
    this.current = state.current ?? undefined;
    state.rows.forEach((row, i) => row.length > 0 && this.matrix.setRow(i, row));
    state.baseline.forEach((b, j) => this.matrix.setBaseline(j, b));
    this.prequential.importState(state.prequential);
    this.counts.clear();
    for (const [task, c] of Object.entries(state.counts)) this.counts.set(task, { ...zeroCounts(), ...c });
    state.parametersAfterTask.forEach((p, i) => p !== null && (this.parametersAfterTask[i] = p));
    this.parameters = state.parameters;
    this.modelVersion = state.modelVersion;
    this.lastLoss = state.lastLoss ?? undefined;
    this.trainSeconds = state.trainSeconds;
    this.tasksLearned = state.tasksLearned;
  }

  countsOf(task: TaskName): SampleCounts {
    let c = this.counts.get(task);
    if (!c) {
      c = zeroCounts();
      this.counts.set(task, c);
    }
    return c;
  }

  total(kind: SampleKind): number {
    let n = 0;
    for (const c of this.counts.values()) n += c[kind];
    return n;
  }

  taskNames(): TaskName[] {
    return this.tasks.map((t, i) => t?.name ?? `task-${i}`);
  }
}
