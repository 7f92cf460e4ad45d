import { TASK_AGNOSTIC, type Prediction, type SampleKind } from '../core/types';
import { ConceptDriftMonitor, type ConceptDriftSettings, type DriftConfirmation, type TaskDriftStatus } from '../metrics/concept-drift';
import type { SampleEvent, StepDrift } from './events';
import type { TaskFreeSplits } from './task-free-splits';

/**
 * Concept, input and label drift of each step, for applyStrategy: it calls observe() once a
 * step's predictions are known (made before the step learned), before the step is published and
 * its credits go back to the source, so that in task-free mode a split is asked for before the
 * next samples are routed.
 */
export class ConceptDriftWatch {
  private readonly monitor: ConceptDriftMonitor;

  constructor(
    settings: ConceptDriftSettings,
    private readonly splits?: TaskFreeSplits,
  ) {
    this.monitor = new ConceptDriftMonitor(settings);
  }

  /**
   * Feeds the step's labelled training samples (planned 'trained' and learned) and unlabelled
   * inputs to the monitor; the drift of each task they belong to.
   */
  observe(samples: readonly SampleEvent[], plan: readonly SampleKind[], predictions: readonly (Prediction | undefined)[]): StepDrift | undefined {
    const confirmed: (DriftConfirmation & { nextTask?: string })[] = [];
    const tasks = new Set<string>();
    plan.forEach((kind, i) => {
      const event = samples[i] as SampleEvent;
      const task = event.task.name;
      // A task-agnostic request belongs to no task.
      if (task === TASK_AGNOSTIC) return;
      if (kind === 'predicted') {
        this.monitor.observeInput(task, event.sample.x);
        tasks.add(task);
      }
      if (kind !== 'trained' || event.sample.y === undefined) return;
      tasks.add(task);
      this.monitor.observeInput(task, event.sample.x);
      this.monitor.observeLabel(task, event.sample.y);
      const drift = this.monitor.observePrediction(task, predictions[i]?.label !== event.sample.y);
      if (drift === undefined) return;
      const nextTask = this.splits?.split(task) ? this.splits.nextTaskAfter(task) : undefined;
      confirmed.push(nextTask === undefined ? drift : { ...drift, nextTask });
    });
    if (tasks.size === 0) return undefined;
    const status: TaskDriftStatus[] = [...tasks].map((task) => this.monitor.status(task));
    return { status, confirmed };
  }

  /** The task ended: only its training samples fed it, so its windows are freed (task-free mode may end many). */
  taskEnded(task: string): void {
    this.monitor.forget(task);
  }
}
