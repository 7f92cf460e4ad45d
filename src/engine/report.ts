import type { Scenario } from '../core/types';
import type { RunRecorder, SampleCounts } from '../sinks/run-recorder';

/** What a run is: its settings and how long it took. */
export interface ReportContext {
  readonly pipeline: string;
  readonly strategy: string;
  readonly scenario: Scenario;
  readonly backend: string;
  readonly seed: number;
  readonly source: string;
  readonly durationSeconds: number;
}

/** The JSON written by `lifelong run --report FILE`. Ratios are 0..1; null = not defined. */
export interface RunReport extends ReportContext {
  /** Task names, by index. */
  readonly tasks: string[];
  /** R[i][j]: accuracy on task j's probe after learning task i. */
  readonly accuracyMatrix: (number | null)[][];
  /** Accuracy of the untrained model on each probe (forward-transfer baseline). */
  readonly baselineAccuracy: (number | null)[];
  readonly averageAccuracy: number | null;
  readonly backwardTransfer: number | null;
  readonly forwardTransfer: number | null;
  /** Per task, after the last task: best earlier accuracy minus final accuracy. */
  readonly forgetting: (number | null)[];
  readonly averageForgetting: number | null;
  /** Test-then-train accuracy of each task while it streamed by. */
  readonly prequentialAccuracy: Record<string, number | null>;
  readonly samplesTrained: number;
  readonly samples: Record<string, SampleCounts>;
  /** Samples trained per second of wall time, through the whole pipeline. */
  readonly samplesPerSecond: number;
  /** Seconds inside training steps (forward, backward, update) only. */
  readonly trainingSeconds: number;
  readonly parameters: number;
  readonly parametersAfterTask: number[];
  readonly modelVersion: number;
}

export function buildReport(context: ReportContext, recorder: RunRecorder): RunReport {
  const { matrix } = recorder;
  const json = matrix.toJSON();
  const trained = recorder.total('trained');
  const prequential: Record<string, number | null> = {};
  for (const task of recorder.prequential.tasks()) prequential[task] = recorder.prequential.accuracy(task);
  return {
    ...context,
    tasks: recorder.taskNames(),
    accuracyMatrix: json.rows.map((r) => [...r]),
    baselineAccuracy: [...json.baseline],
    averageAccuracy: matrix.averageAccuracy(),
    backwardTransfer: matrix.backwardTransfer(),
    forwardTransfer: matrix.forwardTransfer(),
    forgetting: matrix.forgetting(),
    averageForgetting: matrix.averageForgetting(),
    prequentialAccuracy: prequential,
    samplesTrained: trained,
    samples: Object.fromEntries(recorder.counts),
    durationSeconds: context.durationSeconds,
    samplesPerSecond: context.durationSeconds > 0 ? trained / context.durationSeconds : 0,
    trainingSeconds: recorder.trainSeconds,
    parameters: recorder.parameters,
    parametersAfterTask: [...recorder.parametersAfterTask],
    modelVersion: recorder.modelVersion,
  };
}
