/**
 * Runs benchmark cases through the product's own engine (runPipeline), so the bench measures
 * what the daemon does; only the stream differs: in bench mode a task's images may be revisited
 * (suites/revisiting-source.ts).
 */
import * as os from 'node:os';
import type { PipelineConfig } from '../config/pipeline-config';
import { InterruptedError, InvariantError } from '../core/errors';
import { silentLogger, type Logger } from '../core/log';
import { runPipeline } from '../engine/run-pipeline';
import type { EngineEvent } from '../operators/events';
import type { CreatedSource } from '../engine/create-source';
import { averageAccuracyAfterEachTask, type BenchMachine, type BenchRun } from './bench-report';
import { RevisitingSource } from './revisiting-source';
import { createEmbeddedSource } from '../sources/embedded';
import type { BenchCase } from './definitions';

/** The test images of a task when the protocol says "all" (MNIST has at most 10000 per task). */
const ALL_TEST_IMAGES = 1_000_000;

/** The pipeline a case runs as: the daemon's config shape, built in code (never a file). */
export function pipelineOf(c: BenchCase, seed: number): PipelineConfig {
  const { protocol } = c;
  return {
    name: `bench-${c.dataset}-${c.scenario}-${c.strategy}`.replace(/[^a-z0-9-]/g, '-').slice(0, 64),
    description: `${c.strategy} on ${c.dataset} (${c.scenario}), bench protocol`,
    seed,
    scenario: c.scenario,
    source: { type: c.dataset, tasks: protocol.tasks, samplesPerTask: protocol.samplesPerTask },
    model: { hiddenLayers: [...protocol.hiddenLayers], outputUnits: 0 },
    strategy: { name: c.implementationStrategy, module: c.module ?? '', params: c.params },
    training: {
      batchSize: protocol.batchSize,
      optimizer: protocol.optimizer,
      learningRate: protocol.learningRate,
      stepsPerBatch: protocol.stepsPerBatch,
      batchTimeoutMs: 1000,
    },
    evaluation: { probeSize: protocol.testSamplesPerTask > 0 ? protocol.testSamplesPerTask : ALL_TEST_IMAGES, holdoutEvery: 10, endedTaskLabelled: 'evaluate' },
  };
}

/**
 * Iterated protocols stream through a RevisitingSource; single-pass ones through the pipeline's
 * own source, or the same embedded stream built here when the digits pair up differently (a
 * pipeline file cannot say that: it is a bench protocol's choice, not the daemon's).
 */
function sourceOf(c: BenchCase, seed: number): CreatedSource | undefined {
  const spec = { dataset: c.dataset, tasks: c.protocol.tasks, samplesPerTask: c.protocol.samplesPerTask, seed, scenario: c.scenario, ...(c.protocol.pairs ? { pairs: c.protocol.pairs } : {}) };
  if (c.protocol.iterationsPerTask === 0) {
    if (!c.protocol.pairs) return undefined;
    const source = createEmbeddedSource(spec);
    return { source, outputUnits: source.outputUnits };
  }
  const source = new RevisitingSource(
    spec,
    c.protocol.iterationsPerTask,
    c.protocol.batchSize,
  );
  return { source, outputUnits: source.outputUnits };
}

export interface RunBenchCaseOptions {
  readonly backend: string;
  readonly log?: Logger;
  readonly signal?: AbortSignal;
  /** Every engine event (progress display). */
  readonly onEvent?: (event: EngineEvent) => void;
}

/** Runs one case with one seed and returns its row of the bench report. */
export async function runBenchCase(c: BenchCase, seed: number, options: RunBenchCaseOptions): Promise<BenchRun> {
  const pipeline = pipelineOf(c, seed);
  const source = sourceOf(c, seed);
  const report = await runPipeline({
    pipeline,
    backend: options.backend,
    log: options.log ?? silentLogger,
    ...(source ? { source } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.onEvent ? { onEvent: (event: EngineEvent) => options.onEvent?.(event) } : {}),
  });
  const learned = report.accuracyMatrix.length;
  if (learned < c.protocol.tasks) {
    const message = `${c.strategy} on ${c.dataset} (${c.scenario}) stopped after ${learned} of ${c.protocol.tasks} tasks`;
    // A bench source always delivers every task: only the signal may cut a run short.
    throw options.signal?.aborted ? new InterruptedError(message) : new InvariantError(message);
  }
  const averageAccuracyAfterTask = averageAccuracyAfterEachTask(report.accuracyMatrix);
  return {
    dataset: c.dataset,
    scenario: c.scenario,
    strategy: c.strategy,
    implementationStrategy: c.implementationStrategy,
    params: c.params,
    seed,
    protocol: c.protocol,
    tasks: report.tasks,
    accuracyMatrix: report.accuracyMatrix,
    averageAccuracyAfterTask,
    finalAverageAccuracy: averageAccuracyAfterTask[averageAccuracyAfterTask.length - 1] ?? 0,
    wallSeconds: report.durationSeconds,
    samplesTrained: report.samplesTrained,
    samplesPerSecond: report.samplesPerSecond,
    parameters: report.parameters,
  };
}

/** What the machine is, for the report (the same fields as the Python peer writes). */
export function describeMachine(backend: string): BenchMachine {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    runtime: `node ${process.version}`,
    backend,
  };
}
