/**
 * The file format of `lifelong bench` (and of the Avalanche peer in bench/peers/): one JSON
 * report per suite run, one entry per (scenario, strategy, seed) run. Pure types and math here;
 * running lives in suites/run-bench.ts, drawing in suites/average-accuracy-plot.ts,
 * accuracy-heatmaps.ts and seed-figure-plot.ts (what they share in suites/plots.ts).
 */
import type { SplitPairs } from '../data/task-streams';
import type { Scenario } from '../core/types';

export const BENCH_REPORT_FORMAT = 'lifelong-bench/1';

export type BenchDataset = 'split-mnist' | 'permuted-mnist';

/** How a run was trained: the protocol's numbers, so a report says what it measured. */
export interface BenchProtocol {
  readonly tasks: number;
  readonly hiddenLayers: readonly number[];
  readonly optimizer: 'adam' | 'sgd';
  readonly learningRate: number;
  readonly batchSize: number;
  /** Gradient steps per task; 0 = one pass over the task's samples (online). */
  readonly iterationsPerTask: number;
  /** Training samples per task (0 = all of the task's MNIST training images). */
  readonly samplesPerTask: number;
  /** Gradient steps per micro-batch (1 in every suite but the single-pass calibration). */
  readonly stepsPerBatch: number;
  /** True when a task's samples are seen more than once within the task (bench mode only). */
  readonly revisits: boolean;
  /** Test images per task used to fill the accuracy matrix (0 = all of the task's test images). */
  readonly testSamplesPerTask: number;
  /** split-mnist: which digits pair up into tasks (absent: fixed, (0,1)...(8,9)); data/task-streams.ts splitPairs. */
  readonly pairs?: SplitPairs;
}

/** One strategy on one scenario with one seed. Accuracies are fractions 0..1. */
export interface BenchRun {
  readonly dataset: BenchDataset;
  readonly scenario: Scenario;
  /** The row label shared by every implementation: finetune, ewc, dgr, dgr+distill, progressive... */
  readonly strategy: string;
  /** What the implementation calls it (lifelong registry name, Avalanche class name). */
  readonly implementationStrategy: string;
  /** Hyperparameters given to the strategy (lambda, gamma...). */
  readonly params: Readonly<Record<string, unknown>>;
  readonly seed: number;
  readonly protocol: BenchProtocol;
  readonly tasks: readonly string[];
  /** R[i][j]: accuracy on task j's test samples after learning task i (null: not measured). */
  readonly accuracyMatrix: readonly (readonly (number | null)[])[];
  /** After each task i: mean of R[i][0..i]. */
  readonly averageAccuracyAfterTask: readonly number[];
  /** averageAccuracyAfterTask's last entry: the number the papers report. */
  readonly finalAverageAccuracy: number;
  readonly wallSeconds: number;
  /** Training samples consumed (revisits counted) over wall time, evaluation included. */
  readonly samplesTrained: number;
  readonly samplesPerSecond: number;
  readonly parameters: number;
}

export interface BenchMachine {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  /** Runtime and version: "node v20.20.2", "python 3.11.2 / torch 2.5.1". */
  readonly runtime: string;
  /** Tensor backend: "wasm", "torch-cpu (1 thread)"... */
  readonly backend: string;
}

export interface BenchReport {
  readonly format: typeof BENCH_REPORT_FORMAT;
  readonly suite: string;
  /** "lifelong" or a peer: "avalanche". */
  readonly implementation: string;
  readonly implementationVersion: string;
  /** ISO 8601. */
  readonly createdAt: string;
  readonly machine: BenchMachine;
  /** The command that produced the report, to run it again. */
  readonly command: string;
  readonly runs: readonly BenchRun[];
}

/** Mean of R[i][0..i] for each row i (tasks learned so far), null entries skipped. */
export function averageAccuracyAfterEachTask(matrix: readonly (readonly (number | null)[])[]): number[] {
  return matrix.map((row, i) => averageAccuracyAfterTask(row, i));
}

/** Mean of R[i][0..i]: accuracy over the tasks learned so far, after task i (0 when none was scored). */
export function averageAccuracyAfterTask(row: readonly (number | null)[], i: number): number {
  const seen = row.slice(0, i + 1).filter((v): v is number => v !== null);
  return seen.length === 0 ? 0 : seen.reduce((a, b) => a + b, 0) / seen.length;
}

/** Mean and sample standard deviation (n - 1; 0 for a single value). */
export function meanAndStd(values: readonly number[]): { readonly mean: number; readonly std: number } {
  if (values.length === 0) return { mean: Number.NaN, std: Number.NaN };
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  if (values.length === 1) return { mean, std: 0 };
  const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / (values.length - 1);
  return { mean, std: Math.sqrt(variance) };
}

/** The runs of one (dataset, scenario, strategy) over its seeds. */
export interface BenchSummary {
  readonly dataset: BenchDataset;
  readonly scenario: Scenario;
  readonly strategy: string;
  readonly seeds: readonly number[];
  readonly tasks: readonly string[];
  readonly finalAverageAccuracy: { readonly mean: number; readonly std: number };
  /** Per task i: mean and std over seeds of averageAccuracyAfterTask[i]. */
  readonly averageAccuracyAfterTask: readonly { readonly mean: number; readonly std: number }[];
  /** Element-wise mean over seeds of the accuracy matrices (null where no seed measured it). */
  readonly meanAccuracyMatrix: readonly (readonly (number | null)[])[];
  readonly samplesPerSecond: { readonly mean: number; readonly std: number };
  readonly wallSeconds: { readonly mean: number; readonly std: number };
  readonly parameters: number;
}

/** What identifies a run within a suite: its row and its seed. */
export function runKey(run: Pick<BenchRun, 'dataset' | 'scenario' | 'strategy' | 'seed'>): string {
  return `${run.dataset}|${run.scenario}|${run.strategy}|${run.seed}`;
}

/** Runs of several reports of one suite; a run done twice (a quicker run, then the protocol's) counts once: the longer one. */
export function mergeRuns(runs: readonly BenchRun[]): BenchRun[] {
  const best = new Map<string, BenchRun>();
  for (const run of runs) {
    const kept = best.get(runKey(run));
    if (!kept || run.protocol.iterationsPerTask > kept.protocol.iterationsPerTask) best.set(runKey(run), run);
  }
  return [...best.values()];
}

/** The runs of each (dataset, scenario, strategy), its seeds, in order of first appearance. */
export function groupRuns(runs: readonly BenchRun[]): BenchRun[][] {
  const groups = new Map<string, BenchRun[]>();
  for (const run of runs) {
    const key = `${run.dataset}\u0000${run.scenario}\u0000${run.strategy}`;
    const group = groups.get(key);
    if (group) group.push(run);
    else groups.set(key, [run]);
  }
  return [...groups.values()];
}

/** Groups runs by (dataset, scenario, strategy), in order of first appearance, and averages over seeds. */
export function summariseRuns(runs: readonly BenchRun[]): BenchSummary[] {
  return groupRuns(runs).map((group) => {
    const first = group[0] as BenchRun;
    const tasks = first.tasks;
    const rows = Math.max(...group.map((r) => r.accuracyMatrix.length));
    const meanAccuracyMatrix = Array.from({ length: rows }, (_, i) =>
      tasks.map((_t, j) => {
        const values = group.map((r) => r.accuracyMatrix[i]?.[j]).filter((v): v is number => typeof v === 'number');
        return values.length === 0 ? null : meanAndStd(values).mean;
      }),
    );
    const steps = Math.max(...group.map((r) => r.averageAccuracyAfterTask.length));
    return {
      dataset: first.dataset,
      scenario: first.scenario,
      strategy: first.strategy,
      seeds: group.map((r) => r.seed),
      tasks,
      finalAverageAccuracy: meanAndStd(group.map((r) => r.finalAverageAccuracy)),
      averageAccuracyAfterTask: Array.from({ length: steps }, (_, i) =>
        meanAndStd(group.map((r) => r.averageAccuracyAfterTask[i]).filter((v): v is number => typeof v === 'number')),
      ),
      meanAccuracyMatrix,
      samplesPerSecond: meanAndStd(group.map((r) => r.samplesPerSecond)),
      wallSeconds: meanAndStd(group.map((r) => r.wallSeconds)),
      parameters: Math.max(...group.map((r) => r.parameters)),
    };
  });
}
