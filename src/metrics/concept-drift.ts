import type { Label, TaskName } from '../core/types';
import { Adwin, type AdwinOptions } from './adwin';
import type { ChangeDetector, ChangeDetectorName } from './change-detector';
import { LabelDrift } from './label-drift';
import { PageHinkley, type PageHinkleyOptions } from './page-hinkley';
import { InputDrift } from './population-stability';

/** What watches each task (the pipeline file's `drift` section, config/pipeline-config.ts). */
export interface ConceptDriftSettings {
  /** The detector on each task's prequential error stream; 'none' turns concept drift off. */
  readonly detector: ChangeDetectorName | 'none';
  readonly adwin: Required<AdwinOptions>;
  readonly pageHinkley: Required<PageHinkleyOptions>;
  /** The first this-many inputs and labels of a task are its reference (input and label drift). */
  readonly referenceSamples: number;
  /** The recent window compared with the reference. */
  readonly recentSamples: number;
  /** Within one topic, a confirmed drift ends the current task and begins the next (operators/task-free-splits.ts). */
  readonly taskFree: boolean;
}

/** River's defaults, Page-Hinkley watching increases of the error only. */
export const DRIFT_DEFAULTS: ConceptDriftSettings = {
  detector: 'adwin',
  adwin: { delta: 0.002, clock: 32, maxBuckets: 5, minWindowLength: 5, gracePeriod: 10 },
  pageHinkley: { minInstances: 30, delta: 0.005, threshold: 50, alpha: 1 - 0.0001, mode: 'up' },
  referenceSamples: 500,
  recentSamples: 500,
  taskFree: false,
};

/** A confirmed concept drift: the task's error rose. */
export interface DriftConfirmation {
  readonly task: TaskName;
  readonly detector: ChangeDetectorName;
  /** Index (from 0) of the sample at which it was confirmed, in the task's prequential stream. */
  readonly position: number;
  /** The error estimate before that sample, and after the detector dropped the old concept. */
  readonly errorBefore: number;
  readonly errorAfter: number;
}

/** One task's drift numbers now; null where not known yet. */
export interface TaskDriftStatus {
  readonly task: TaskName;
  /** The detector watching the task's error; null with drift.detector 'none'. */
  readonly detector: ChangeDetectorName | null;
  /** The detector's error estimate (null without a detector or before the first prediction). */
  readonly errorEstimate: number | null;
  /** Population stability index of the recent inputs against the reference. */
  readonly inputPsi: number | null;
  /** Total-variation distance of the recent labels from the reference. */
  readonly labelDrift: number | null;
}

interface TaskWatch {
  readonly detector: ChangeDetector | undefined;
  readonly inputs: InputDrift;
  readonly labels: LabelDrift;
  predictions: number;
}

/**
 * Concept, input and label drift per task. Pure: fed by the engine's applyStrategy with each
 * labelled training sample's prequential outcome (predicted before it was learned), its input
 * and its label.
 *
 * Only a rise of the error is confirmed as concept drift: at the start of every task the error
 * falls as the model learns, and ADWIN (two-sided) detects that fall too. Page-Hinkley is asked
 * for rises with mode 'up' (the default here); with 'both' or 'down' its detections are taken
 * as they come.
 */
export class ConceptDriftMonitor {
  private readonly tasks = new Map<TaskName, TaskWatch>();

  constructor(readonly settings: ConceptDriftSettings) {}

  /** One prequential outcome of `task`; the confirmation when it confirms a drift. */
  observePrediction(task: TaskName, wrong: boolean): DriftConfirmation | undefined {
    const watch = this.watch(task);
    const position = watch.predictions;
    watch.predictions += 1;
    const detector = watch.detector;
    if (detector === undefined) return undefined;
    const errorBefore = detector.estimate;
    if (!detector.update(wrong ? 1 : 0)) return undefined;
    const errorAfter = detector.estimate;
    if (detector.name === 'adwin' && !(errorAfter > errorBefore)) return undefined;
    return { task, detector: detector.name, position, errorBefore, errorAfter };
  }

  observeInput(task: TaskName, x: ArrayLike<number>): void {
    this.watch(task).inputs.observe(x);
  }

  observeLabel(task: TaskName, label: Label): void {
    this.watch(task).labels.observe(label);
  }

  status(task: TaskName): TaskDriftStatus {
    const watch = this.tasks.get(task);
    return {
      task,
      detector: this.settings.detector === 'none' ? null : this.settings.detector,
      errorEstimate: watch?.detector !== undefined && watch.predictions > 0 ? watch.detector.estimate : null,
      inputPsi: watch?.inputs.psi() ?? null,
      labelDrift: watch?.labels.distance() ?? null,
    };
  }

  /** Drops a task's windows and detector (it ended: nothing feeds it any more). */
  forget(task: TaskName): void {
    this.tasks.delete(task);
  }

  private watch(task: TaskName): TaskWatch {
    let watch = this.tasks.get(task);
    if (watch === undefined) {
      const { settings } = this;
      const window = { referenceSamples: settings.referenceSamples, recentSamples: settings.recentSamples };
      watch = {
        detector: settings.detector === 'adwin' ? new Adwin(settings.adwin) : settings.detector === 'page-hinkley' ? new PageHinkley(settings.pageHinkley) : undefined,
        inputs: new InputDrift(window),
        labels: new LabelDrift(window),
        predictions: 0,
      };
      this.tasks.set(task, watch);
    }
    return watch;
  }
}
