import * as tf from '@tensorflow/tfjs';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { InvariantError } from '../core/errors';
import { TASK_AGNOSTIC, type SampleKind, type TaskName } from '../core/types';
import type { AccuracyMatrix } from './continual';
import type { DriftResult } from './drift';
import type { ChangeDetectorName } from './change-detector';
import type { TaskDriftStatus } from './concept-drift';
import type { StrategyDiagnostic } from '../strategies/strategy';
import { ExportedTasks, OTHER_TASKS } from './exported-tasks';

/** Every kind lifelong_samples_total counts (core/types.ts SampleKind). */
export const SAMPLE_KINDS: readonly SampleKind[] = ['trained', 'evaluated', 'predicted', 'rejected', 'held-out'];

/** Training steps take about 1 ms (tiny MLP, fast backend) to 10 s (large batch on `cpu`). */
export const TRAINING_STEP_BUCKETS_SECONDS: readonly number[] = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

export interface LifelongMetricsOptions {
  /**
   * Also collect prom-client's default process metrics (lifelong_process_*, lifelong_nodejs_*)
   * on this registry. Default true. Each instance that collects them keeps a GC observer and an
   * event-loop delay monitor for the life of the process (prom-client offers no way to stop
   * them), so short-lived instances (tests) may turn this off.
   */
  readonly defaultMetrics?: boolean;
  /**
   * Label every series with strategy="<name>": several runs (`lifelong run --compare`) then
   * publish side by side instead of over each other. Absent: no strategy label.
   */
  readonly strategy?: string;
  /**
   * Label every series with pipeline="<name>": the pipelines one daemon runs (`lifelong run
   * --pipelines DIR`) publish side by side. Absent: no pipeline label.
   */
  readonly pipeline?: string;
  /** Tasks with series of their own, the newest first seen (see ExportedTasks). Default DEFAULT_MAX_TASKS. */
  readonly maxTasks?: number;
}

/** Default cap on the tasks exported per metric (the daemon config's metrics.maxTasks). */
export const DEFAULT_MAX_TASKS = 100;

/**
 * prom-client's process metrics (lifelong_process_*, lifelong_nodejs_*) on `registry`. The GC
 * observer and event-loop monitor this starts live as long as the process (prom-client offers no
 * way to stop them).
 */
export function collectProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry, prefix: 'lifelong_' });
  // Read at each scrape: a count that climbs while the daemon runs is a tensor leak.
  new Gauge({
    name: 'lifelong_tensors',
    help: 'Tensors the tensor backend holds now (tf.memory().numTensors); flat while the daemon runs, unless tensors leak.',
    registers: [registry],
    collect() {
      this.set(tf.memory().numTensors);
    },
  });
}

type G = Gauge<string>;

/**
 * The daemon's Prometheus metrics, on a Registry of its own (never prom-client's global one), so
 * that several instances coexist in one process. Names are prefixed `lifelong_`, in base units
 * (seconds, ratios 0..1). Labels are bounded: task and layer names, never sample ids.
 *
 * Values that are unknown (a transfer metric before the second task, say) are absent from the
 * exposition rather than exported as 0.
 */
export class LifelongMetrics {
  readonly registry: Registry;

  private readonly samples: Counter<'task' | 'kind'>;
  private readonly rejections: Counter<'reason'>;
  private readonly tasks: ExportedTasks;
  /** Counts of the exported tasks, moved to task="_other" when a task is pushed out. */
  private readonly sampleCounts = new Map<TaskName, Map<SampleKind, number>>();
  private readonly taskAccuracy: Gauge<'task'>;
  private readonly taskInferenceAccuracy: Gauge<'task'>;
  private readonly accuracyMatrix: Gauge<'learned_task' | 'evaluated_task'>;
  private readonly forgetting: Gauge<'task'>;
  private readonly averageForgetting: G;
  private readonly averageAccuracy: G;
  private readonly backwardTransfer: G;
  private readonly forwardTransfer: G;
  private readonly prequential: Gauge<'task'>;
  private readonly prequentialFading: Gauge<'task'>;
  private readonly drift: Gauge<'layer' | 'since_task'>;
  private readonly relativeDrift: Gauge<'layer' | 'since_task'>;
  private readonly parameters: G;
  private readonly trainingStep: Histogram<string>;
  private readonly trainingLoss: Gauge<'task'>;
  private readonly currentTaskInfo: Gauge<'task'>;
  private readonly currentTaskIndex: G;
  private readonly tasksLearned: G;
  private readonly backendInfo: Gauge<'backend'>;
  private readonly modelVersion: G;
  private readonly parametersAfterTask: Gauge<'task'>;
  private readonly classes: Gauge<'task'>;
  private readonly partitionResets: Counter<'topic'>;
  private readonly predictionDuration: Histogram<string>;
  private readonly consumerLag: Gauge<'topic'>;
  private readonly checkpointLastSuccess: G;
  private readonly conceptDrifts: Counter<'task' | 'detector'>;
  private readonly inputDriftPsi: Gauge<'task'>;
  private readonly labelDrift: Gauge<'task'>;
  private readonly errorEstimate: Gauge<'task'>;
  /** Strategy-specific gauges (lifelong_strategy_*), created on first sight: their names come from the strategy. */
  private readonly strategyGauges = new Map<string, { gauge: Gauge<string>; labelNames: readonly string[] }>();
  private readonly registers: Registry[];

  constructor(options: LifelongMetricsOptions = {}) {
    const registry = new Registry();
    this.registry = registry;
    const registers = [registry];
    this.registers = registers;
    const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[] = []): Gauge<L> =>
      new Gauge<L>({ name: `lifelong_${name}`, help, labelNames, registers });

    this.samples = new Counter({
      name: 'lifelong_samples_total',
      help: 'Samples by task and by what the engine did with them (trained, evaluated, predicted, rejected, held-out).',
      labelNames: ['task', 'kind'] as const,
      registers,
    });
    this.rejections = new Counter({
      name: 'lifelong_rejections_total',
      help: "Samples rejected, by reason: the source's validation (bad-json, feature-out-of-range, task-not-allowed...) and the strategy's refusals (label-capacity, non-finite-update). A Kafka source dead-letters each with this reason.",
      labelNames: ['reason'] as const,
      registers,
    });
    this.tasks = new ExportedTasks(options.maxTasks ?? DEFAULT_MAX_TASKS);
    this.taskAccuracy = gauge('task_accuracy_ratio', 'Latest accuracy on the task\'s held-out probe.', ['task']);
    this.taskInferenceAccuracy = gauge(
      'task_inference_accuracy_ratio',
      "Share of the task's held-out probe that the strategy, asked without the task, routes to the task (its task router or rule; strategies with a head or column per task).",
      ['task'],
    );
    this.accuracyMatrix = gauge(
      'accuracy_matrix_ratio',
      'R[i][j]: accuracy on evaluated_task\'s probe after learning learned_task.',
      ['learned_task', 'evaluated_task'],
    );
    this.forgetting = gauge(
      'forgetting_ratio',
      'Forgetting of the task (Chaudhry et al. 2018): best earlier probe accuracy minus current, after the last task learned.',
      ['task'],
    );
    this.averageForgetting = gauge('average_forgetting_ratio', 'Mean forgetting over the earlier tasks.');
    this.averageAccuracy = gauge('average_accuracy_ratio', 'Mean probe accuracy over the tasks learned so far (ACC).');
    this.backwardTransfer = gauge(
      'backward_transfer_ratio',
      'Backward transfer (Lopez-Paz & Ranzato 2017); negative means forgetting.',
    );
    this.forwardTransfer = gauge(
      'forward_transfer_ratio',
      'Forward transfer (Lopez-Paz & Ranzato 2017): accuracy on a task before training on it, above a fresh model.',
    );
    this.prequential = gauge(
      'prequential_accuracy_ratio',
      'Cumulative test-then-train accuracy of the task (each sample predicted before training on it).',
      ['task'],
    );
    this.prequentialFading = gauge(
      'prequential_fading_accuracy_ratio',
      'Fading-factor test-then-train accuracy of the task (Gama et al. 2013).',
      ['task'],
    );
    this.drift = gauge(
      'semantic_drift',
      'L2 distance between the layer\'s weights now and at the end of since_task.',
      ['layer', 'since_task'],
    );
    this.relativeDrift = gauge(
      'semantic_drift_relative',
      'Semantic drift divided by the L2 norm of the layer\'s weights at the end of since_task.',
      ['layer', 'since_task'],
    );
    this.parameters = gauge('parameters', 'Trainable parameters in use (grows with heads and columns).');
    this.trainingStep = new Histogram({
      name: 'lifelong_training_step_duration_seconds',
      help: 'Duration of one training step (forward, backward, update).',
      buckets: [...TRAINING_STEP_BUCKETS_SECONDS],
      registers,
    });
    this.trainingLoss = gauge('training_loss', 'Loss of the last training step of the task (without penalty).', ['task']);
    this.currentTaskInfo = gauge('current_task_info', 'The task being learned now (value 1).', ['task']);
    this.currentTaskIndex = gauge('current_task_index', 'Index (from 0) of the task being learned now.');
    this.tasksLearned = gauge('tasks_learned', 'Tasks whose stream has ended and been learned.');
    this.backendInfo = gauge('backend_info', 'The tensor backend in use (value 1).', ['backend']);
    this.modelVersion = gauge('model_version', 'Monotonic model version, bumped by every training step.');
    this.parametersAfterTask = gauge('parameters_after_task', 'Trainable parameters when each task ended (growth of structural strategies).', ['task'] as const);
    this.classes = gauge('classes', 'Classes each head knows (its label registry, units in order of first sight), by task; task="*" for a head shared by every task.', ['task'] as const);
    this.partitionResets = new Counter({
      name: 'lifelong_kafka_partition_resets_total',
      help: 'Kafka partitions read again from their start because their log started over (a recreated topic or broker).',
      labelNames: ['topic'] as const,
      registers,
    });

    this.predictionDuration = new Histogram({
      name: 'lifelong_prediction_duration_seconds',
      help: "Time to answer one prediction batch (the step's samples predicted apart from training: evaluated, unlabelled, and trained ones where the strategy cannot predict and train in one pass).",
      // Same range as a training step: a prediction is one forward pass of the same model.
      buckets: [...TRAINING_STEP_BUCKETS_SECONDS],
      registers,
    });
    this.consumerLag = gauge('kafka_consumer_lag', 'Messages behind the log end, per topic being read: log end minus the lowest offset not yet processed, summed over its partitions (measured at each topic discovery poll).', ['topic']);
    this.checkpointLastSuccess = gauge('checkpoint_last_success_timestamp_seconds', 'Unix time of the last durable checkpoint written (or resumed from); checkpoint age = time() minus this.');
    this.conceptDrifts = new Counter({
      name: 'lifelong_concept_drift_total',
      help: "Concept drifts confirmed on the task's prequential error stream (its error rose), by detector (adwin, page-hinkley).",
      labelNames: ['task', 'detector'] as const,
      registers,
    });
    this.inputDriftPsi = gauge('input_drift_psi', "Population stability index of the task's recent inputs (feature mean and spread) against its first ones; above 0.25 is a large shift.", ['task']);
    this.labelDrift = gauge('label_drift_ratio', "Total-variation distance of the task's recent label distribution from its first one (0 same, 1 disjoint).", ['task']);
    this.errorEstimate = gauge('prequential_error_estimate', "The drift detector's current estimate of the task's prequential error rate.", ['task']);

    // Unlabelled gauges start at 0 in prom-client; hide the ones where 0 would be a false value.
    for (const unknownYet of [
      this.checkpointLastSuccess,
      this.averageForgetting,
      this.averageAccuracy,
      this.backwardTransfer,
      this.forwardTransfer,
      this.parameters,
      this.currentTaskIndex,
    ]) {
      unknownYet.remove();
    }

    if (options.strategy !== undefined || options.pipeline !== undefined) {
      registry.setDefaultLabels({ ...(options.strategy !== undefined ? { strategy: options.strategy } : {}), ...(options.pipeline !== undefined ? { pipeline: options.pipeline } : {}) });
    }
    if (options.defaultMetrics ?? true) collectProcessMetrics(registry);
  }

  /** Content-Type header of metrics(). */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text of every metric on this registry. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  /**
   * Counts n samples (default 1). n = 0 creates the series at 0, so that rate() works from the
   * first real sample. A rejected message whose task is unknown is counted with task="".
   */
  countSamples(task: TaskName | undefined, kind: SampleKind, n = 1): void {
    if (!SAMPLE_KINDS.includes(kind)) {
      throw new InvariantError(`LifelongMetrics: unknown sample kind "${kind}" (expected one of ${SAMPLE_KINDS.join(', ')})`);
    }
    if (!Number.isInteger(n) || n < 0) {
      throw new InvariantError(`LifelongMetrics: sample count must be a non-negative integer, got ${n}`);
    }
    const label = this.noteTask(task ?? '');
    this.samples.inc({ task: label, kind }, n);
    if (label === OTHER_TASKS) return;
    const byKind = this.sampleCounts.get(label) ?? new Map<SampleKind, number>();
    byKind.set(kind, (byKind.get(kind) ?? 0) + n);
    this.sampleCounts.set(label, byKind);
  }

  /** Counts n samples rejected for `reason` (a stable slug: bounded). */
  countRejection(reason: string, n = 1): void {
    this.rejections.inc({ reason }, n);
  }

  observeTrainingStep(seconds: number): void {
    if (!Number.isFinite(seconds) || seconds < 0) {
      throw new InvariantError(`LifelongMetrics: training step duration must be finite and >= 0 seconds, got ${seconds}`);
    }
    this.trainingStep.observe(seconds);
  }

  /** Seconds to predict one batch apart from training (see lifelong_prediction_duration_seconds). */
  observePrediction(seconds: number): void {
    if (!Number.isFinite(seconds) || seconds < 0) {
      throw new InvariantError(`LifelongMetrics: prediction duration must be finite and >= 0 seconds, got ${seconds}`);
    }
    this.predictionDuration.observe(seconds);
  }

  /** Messages of `topic` not yet processed behind its log end (all partitions). */
  setConsumerLag(topic: string, messages: number): void {
    this.consumerLag.set({ topic }, messages);
  }

  /** A durable checkpoint was written (or resumed from) at `unixSeconds`. */
  setCheckpointSuccess(unixSeconds: number): void {
    this.checkpointLastSuccess.set(unixSeconds);
  }

  /** Latest probe accuracy of one task (also set from the matrix's last row by setAccuracyMatrix). */
  setTaskAccuracy(task: TaskName, accuracy: number | null): void {
    if (!this.isExported(task)) return;
    setOrRemove(this.taskAccuracy, { task }, accuracy);
  }

  /**
   * Publishes the whole accuracy matrix and what it implies: R[i][j], the last row as each
   * task's latest accuracy, forgetting per task, average forgetting, ACC, BWT and FWT.
   * taskNames[i] names task index i and must cover every row and column in use.
   */
  setAccuracyMatrix(taskNames: readonly TaskName[], matrix: AccuracyMatrix): void {
    const rows = matrix.rows();
    const nameOf = (index: number): TaskName => {
      const name = taskNames[index];
      if (name === undefined) {
        throw new InvariantError(
          `LifelongMetrics: no task name for task index ${index} (got ${taskNames.length} names for a ${rows.length}-row matrix)`,
        );
      }
      return name;
    };
    // Validate every name before touching a gauge, so a bad call leaves the metrics as they were.
    rows.forEach((row, i) => {
      if (row.length > 0) nameOf(i);
      row.forEach((_, j) => nameOf(j));
    });

    const exported = (index: number) => this.isExported(nameOf(index));
    this.accuracyMatrix.reset();
    rows.forEach((row, i) =>
      row.forEach((r, j) => {
        if (r !== null && exported(i) && exported(j)) this.accuracyMatrix.set({ learned_task: nameOf(i), evaluated_task: nameOf(j) }, r);
      }),
    );
    const last = rows[rows.length - 1] ?? [];
    last.forEach((r, j) => {
      if (r !== null && exported(j)) this.taskAccuracy.set({ task: nameOf(j) }, r);
    });

    this.forgetting.reset();
    matrix.forgetting().forEach((f, j) => {
      if (f !== null && exported(j)) this.forgetting.set({ task: nameOf(j) }, f);
    });
    setOrRemove(this.averageForgetting, {}, matrix.averageForgetting());
    setOrRemove(this.averageAccuracy, {}, matrix.averageAccuracy());
    setOrRemove(this.backwardTransfer, {}, matrix.backwardTransfer());
    setOrRemove(this.forwardTransfer, {}, matrix.forwardTransfer());
  }

  /**
   * Task inference accuracy per task (TaskOutcome.taskInferenceAccuracy), by task index;
   * taskNames[i] names task index i. Null entries are not exported.
   */
  setTaskInferenceAccuracy(taskNames: readonly TaskName[], accuracy: readonly (number | null)[]): void {
    accuracy.forEach((a, i) => {
      const task = taskNames[i];
      if (task === undefined) throw new InvariantError(`LifelongMetrics: no task name for task index ${i} (got ${taskNames.length} names)`);
      if (this.isExported(task)) setOrRemove(this.taskInferenceAccuracy, { task }, a);
    });
  }

  /** Prequential accuracy of a task: cumulative and, optionally, the fading-factor estimate. */
  setPrequential(task: TaskName, accuracy: number | null, fading?: number | null): void {
    if (!this.isExported(task)) return;
    setOrRemove(this.prequential, { task }, accuracy);
    if (fading !== undefined) setOrRemove(this.prequentialFading, { task }, fading);
  }

  /**
   * Replaces the drift gauges with this result. since_task is the task's name from taskNames
   * when given, else its index. Entries with null drift (layer size changed) are not exported.
   */
  setDrift(result: DriftResult, taskNames: readonly TaskName[] = []): void {
    this.drift.reset();
    this.relativeDrift.reset();
    for (const entry of result) {
      const name = taskNames[entry.sinceTask];
      if (name !== undefined && !this.tasks.exported(name)) continue;
      const labels = { layer: entry.layer, since_task: name ?? String(entry.sinceTask) };
      if (entry.l2 !== null) this.drift.set(labels, entry.l2);
      if (entry.relative !== null) this.relativeDrift.set(labels, entry.relative);
    }
  }

  setParameters(count: number): void {
    this.parameters.set(count);
  }

  /** Trainable parameters when `task` ended: the growth of structural strategies over tasks. */
  setParametersAfterTask(task: TaskName, count: number): void {
    if (!this.isExported(task)) return;
    this.parametersAfterTask.set({ task }, count);
  }

  /** Classes known per head, by task (TASK_AGNOSTIC "*": the shared head, which takes no place in the task cap). */
  setClasses(counts: ReadonlyMap<TaskName, number>): void {
    for (const [task, n] of counts) {
      if (task === TASK_AGNOSTIC || this.isExported(task)) this.classes.set({ task }, n);
    }
  }

  /**
   * A strategy's own numbers (see Strategy.diagnostics) as gauges `lifelong_strategy_<name>`.
   * Each call carries the strategy's full current state: a name's series are replaced, so series
   * that disappeared (a pruned layer) do not linger. Label names are fixed by a name's first use;
   * labels outside that set are dropped, missing ones are empty.
   */
  setStrategyDiagnostics(diagnostics: readonly StrategyDiagnostic[]): void {
    const byName = new Map<string, StrategyDiagnostic[]>();
    for (const d of diagnostics) {
      if (!/^[a-z_][a-z0-9_]*$/.test(d.name)) continue; // not a valid metric name: the strategy's bug, not the daemon's
      if (d.labels?.task !== undefined && !this.tasks.exported(d.labels.task)) continue;
      byName.set(d.name, [...(byName.get(d.name) ?? []), d]);
    }
    for (const [name, entries] of byName) {
      let entry = this.strategyGauges.get(name);
      if (!entry) {
        const labelNames = Object.keys(entries[0]?.labels ?? {}).sort();
        entry = { gauge: new Gauge<string>({ name: `lifelong_strategy_${name}`, help: entries[0]?.help ?? name, labelNames, registers: this.registers }), labelNames };
        this.strategyGauges.set(name, entry);
      }
      entry.gauge.reset();
      for (const d of entries) {
        const labels: Record<string, string> = {};
        for (const l of entry.labelNames) labels[l] = d.labels?.[l] ?? '';
        entry.gauge.set(labels, d.value);
      }
    }
  }

  /** Marks `task` as the one being learned: its info series is 1, earlier tasks' are removed. */
  setCurrentTask(task: TaskName, index: number): void {
    this.noteTask(task);
    this.currentTaskInfo.reset();
    this.currentTaskInfo.set({ task }, 1);
    this.currentTaskIndex.set(index);
  }

  setTasksLearned(count: number): void {
    this.tasksLearned.set(count);
  }

  setBackend(name: string): void {
    this.backendInfo.reset();
    this.backendInfo.set({ backend: name }, 1);
  }

  setModelVersion(version: number): void {
    this.modelVersion.set(version);
  }

  /**
   * Notes a task for the cap; a task it pushes out loses its gauges, and its counts move to
   * task="_other". Returns the label to count `task` under.
   */
  private noteTask(task: TaskName): TaskName {
    const retired = this.tasks.note(task);
    if (retired !== undefined) this.retire(retired);
    return this.tasks.counterLabel(task);
  }

  /** Notes a task; false once newer ones pushed it out. */
  private isExported(task: TaskName): boolean {
    this.noteTask(task);
    return this.tasks.exported(task);
  }

  private retire(task: TaskName): void {
    const gauges: TaskGauge[] = [this.taskAccuracy, this.taskInferenceAccuracy, this.forgetting, this.prequential, this.prequentialFading, this.trainingLoss, this.currentTaskInfo, this.parametersAfterTask, this.classes, this.inputDriftPsi, this.labelDrift, this.errorEstimate];
    for (const g of gauges) g.remove({ task });
    this.conceptDrifts.remove({ task, detector: 'adwin' });
    this.conceptDrifts.remove({ task, detector: 'page-hinkley' });
    for (const [kind, n] of this.sampleCounts.get(task) ?? []) {
      this.samples.remove({ task, kind });
      this.samples.inc({ task: OTHER_TASKS, kind }, n);
    }
    this.sampleCounts.delete(task);
    // The matrix, drift and the strategy's per-task gauges are rebuilt whole at their next update.
  }

  /** A concept drift confirmed on `task` by `detector`. */
  countConceptDrift(task: TaskName, detector: ChangeDetectorName): void {
    if (!this.isExported(task)) return;
    this.conceptDrifts.inc({ task, detector });
  }

  /**
   * A task's drift gauges; unknown values (a reference window not full yet) are absent. Its drift
   * counter is created at 0, so that increase() sees the task's first drift.
   */
  setDriftStatus(status: TaskDriftStatus): void {
    const { task } = status;
    if (!this.isExported(task)) return;
    if (status.detector !== null) this.conceptDrifts.inc({ task, detector: status.detector }, 0);
    setOrRemove(this.errorEstimate, { task }, status.errorEstimate);
    setOrRemove(this.inputDriftPsi, { task }, status.inputPsi);
    setOrRemove(this.labelDrift, { task }, status.labelDrift);
  }

  /** A Kafka partition of `topic` is read again from its start (its log started over). */
  countPartitionReset(topic: string): void {
    this.partitionResets.inc({ topic });
  }

  /** Loss of the task's last training step; NaN is exported as is (a diverged model). */
  setLoss(task: TaskName, loss: number): void {
    if (!this.isExported(task)) return;
    this.trainingLoss.set({ task }, loss);
  }
}

/** The per-task gauges, whose series of a task pushed out of the exported ones are removed. */
type TaskGauge = Gauge<'task'>;

function setOrRemove<L extends string>(gauge: Gauge<L>, labels: Partial<Record<L, string>>, value: number | null): void {
  if (value === null) gauge.remove(labels);
  else gauge.set(labels, value);
}
