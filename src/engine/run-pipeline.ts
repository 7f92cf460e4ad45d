import { lastValueFrom, tap } from 'rxjs';
import type { PipelineConfig } from '../config/pipeline-config';
import { silentLogger, type Logger } from '../core/log';
import type { LifelongMetrics } from '../metrics/prometheus';
import type { EngineEvent } from '../operators/events';
import { createSource, type CreatedSource } from './create-source';
import { publishMetrics, recordRun } from '../sinks/prometheus-sink';
import { RunRecorder } from '../sinks/run-recorder';
import type { StrategyDescriptor } from '../strategies/descriptor';
import { builtinStrategies, loadStrategyModule, type StrategyRegistry } from '../strategies/registry';
import type { Strategy, StrategyOptions } from '../strategies/strategy';
import { ConfigError } from '../core/errors';
import { writeCheckpoint } from './checkpoint';
import { runEngine } from './engine';
import { buildReport, type RunReport } from './report';

export interface RunPipelineOptions {
  readonly pipeline: PipelineConfig;
  /** The tensor backend in use (for the report). */
  readonly backend: string;
  /** Run another strategy than the pipeline's (side-by-side comparisons on the same stream). */
  readonly strategyOverride?: { readonly name: string; readonly params: Readonly<Record<string, unknown>> };
  readonly registry?: StrategyRegistry;
  readonly metrics?: LifelongMetrics;
  readonly log?: Logger;
  /** Called with every engine event after the recorder has seen it (progress display). */
  readonly onEvent?: (event: EngineEvent, recorder: RunRecorder, expectedSamples: (task: string) => number | undefined) => void;
  /**
   * Aborting stops reading the source; the samples in hand are finished (predictions published,
   * offsets committed) and the run resolves with what was learned so far.
   */
  readonly signal?: AbortSignal;
  /** Write the strategy's complete state here when the run ends (engine/checkpoint.ts). */
  readonly checkpoint?: string;
  /** A source built by the caller instead of the pipeline's (the bench's revisiting streams). */
  readonly source?: CreatedSource;
}

/** The descriptor of the pipeline's strategy (or of `name`): a built-in, or the user's module. */
export function describeStrategy(pipeline: PipelineConfig, registry: StrategyRegistry = builtinStrategies(), name = pipeline.strategy.name): StrategyDescriptor {
  return pipeline.strategy.module && name === pipeline.strategy.name ? loadStrategyModule(pipeline.strategy.module, name) : registry.describe(name);
}

/** Builds a strategy from its descriptor, checking that the factory returned one. */
export function createStrategy(descriptor: StrategyDescriptor, options: StrategyOptions): Strategy {
  const { name } = descriptor;
  const strategy = descriptor.create(options);
  if (!strategy || typeof strategy.trainBatch !== 'function') throw new ConfigError(`strategy "${name}" factory returned no Strategy`, undefined, 'strategy');
  return strategy;
}

/**
 * Runs one pipeline to the end of its (finite) stream and returns its report: builds the source
 * and strategy, wires the sinks (recorder, Prometheus, progress), disposes everything after.
 */
export async function runPipeline(options: RunPipelineOptions): Promise<RunReport> {
  const { pipeline } = options;
  const log = options.log ?? silentLogger;
  const { source, outputUnits, sink } = options.source ?? createSource(pipeline.source, pipeline.scenario, pipeline.seed, log, options.metrics);
  const units = pipeline.model.outputUnits > 0 ? pipeline.model.outputUnits : outputUnits;
  if (units < 1) throw new ConfigError(`model.outputUnits must be set for source type ${pipeline.source.type}`, undefined, 'model.outputUnits');
  const name = options.strategyOverride?.name ?? pipeline.strategy.name;
  let descriptor: StrategyDescriptor;
  try {
    descriptor = describeStrategy(pipeline, options.registry, name);
  } catch (error) {
    await source.close();
    throw error;
  }
  if (source.live && descriptor.capabilities.needsFiniteStream) {
    await source.close();
    throw new ConfigError(`strategy "${name}" needs a finite embedded stream, not ${source.description}`, undefined, 'strategy.name');
  }
  const strategyOptions: StrategyOptions = {
      scenario: pipeline.scenario,
      inputSize: source.inputSize,
      hiddenLayers: pipeline.model.hiddenLayers,
      outputUnits: units,
      optimizer: pipeline.training.optimizer,
      learningRate: pipeline.training.learningRate,
      stepsPerBatch: pipeline.training.stepsPerBatch,
      seed: pipeline.seed,
      params: options.strategyOverride?.params ?? pipeline.strategy.params,
  };
  const strategy = createStrategy(descriptor, strategyOptions);
  const recorder = new RunRecorder(source.knownTasks?.() ?? []);
  const metrics = options.metrics;
  metrics?.setBackend(options.backend);
  metrics?.setParameters(strategy.parameterCount());
  const expected = (task: string) => source.expectedSamples?.(task);
  const started = performance.now();
  log.info(`learning ${source.description} with ${name}`, { pipeline: pipeline.name, scenario: pipeline.scenario, parameters: strategy.parameterCount() });
  try {
    const events = runEngine({
      source,
      strategy,
      batchSize: pipeline.training.batchSize,
      batchTimeoutMs: pipeline.training.batchTimeoutMs,
      probeSize: pipeline.evaluation.probeSize,
      holdoutEvery: pipeline.evaluation.holdoutEvery,
      endedTaskLabelled: pipeline.evaluation.endedTaskLabelled,
      taskGivenAtTest: pipeline.scenario === 'task-incremental',
      ...(sink ? { sink } : {}),
      log: (m) => log.debug(m),
      ...(options.signal ? { stop: options.signal } : {}),
      onReject: (task, reason, detail) => {
        recorder.reject(task);
        metrics?.countSamples(task, 'rejected');
        log.warn(`rejected a message: ${detail}`, { task: task ?? '', reason });
      },
    }).pipe(
      recordRun(recorder),
      metrics ? publishMetrics(metrics, recorder) : tap(),
      tap((event) => options.onEvent?.(event, recorder, expected)),
    );
    await lastValueFrom(events, { defaultValue: undefined });
    if (options.checkpoint) {
      await writeCheckpoint(options.checkpoint, { pipeline: pipeline.name, strategyName: name, options: strategyOptions, state: await strategy.exportState() });
      log.info(`checkpoint written to ${options.checkpoint}`);
    }
  } finally {
    strategy.dispose();
    // The sink flushes first, then the source commits and disconnects; a failure here (a
    // shutdown past its deadline) fails the run, so the daemon exits non-zero.
    try {
      await sink?.close();
    } finally {
      await source.close();
    }
  }
  return buildReport(
    {
      pipeline: pipeline.name,
      strategy: name,
      scenario: pipeline.scenario,
      backend: options.backend,
      seed: pipeline.seed,
      source: source.description,
      durationSeconds: (performance.now() - started) / 1000,
    },
    recorder,
  );
}
