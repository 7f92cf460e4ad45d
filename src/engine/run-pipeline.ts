import { lastValueFrom, tap } from 'rxjs';
import { SNAPSHOTS_DEFAULTS, type KafkaSourceConfig, type PipelineConfig } from '../config/pipeline-config';
import { silentLogger, type Logger } from '../core/log';
import { RateLimitedWarnings } from '../core/rate-limited-log';
import type { LifelongMetrics } from '../metrics/prometheus';
import type { EngineEvent } from '../operators/events';
import { createSource, kafkaSourceOptions, type CreatedSource } from './create-source';
import { KafkaConnection } from '../kafka/connection';
import { KafkaSnapshotPublisher } from '../kafka/snapshots/snapshot-publisher';
import { SnapshotPublishMetrics } from '../metrics/snapshot-metrics';
import { SnapshotTrigger } from './snapshot-trigger';
import { publishMetrics, recordRun } from '../sinks/prometheus-sink';
import { RunRecorder } from '../sinks/run-recorder';
import { scenarioWarning, type StrategyDescriptor } from '../strategies/descriptor';
import { builtinStrategies, loadStrategyModule, type StrategyRegistry } from '../strategies/registry';
import type { Strategy, StrategyOptions } from '../strategies/strategy';
import { ConfigError } from '../core/errors';
import type { CheckpointWriter, EngineSnapshot } from '../operators/checkpoints';
import { TrainedLog } from '../sinks/trained-log';
import { writeCheckpoint } from './checkpoint';
import type { CheckpointStore } from './checkpoint-store';
import { runEngine } from './engine';
import { decodeRunState, encodeRunState } from './resume-state';
import { buildReport, type RunReport } from './report';
import { DRIFT_DEFAULTS } from '../metrics/concept-drift';
import type { StepOutcome } from '../operators/events';

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
  /**
   * Durable checkpoints and resume, for sources that can be resumed (Kafka; a finite embedded
   * stream is replayed from its seed instead): the newest checkpoint in the store that verifies is
   * resumed unless `fresh`, which sets the store's checkpoints aside and starts over.
   */
  readonly durable?: DurableOptions;
}

export interface DurableOptions {
  readonly store: CheckpointStore;
  /** Samples between two checkpoints (0: not by count). */
  readonly everySamples: number;
  /** Seconds between two checkpoints (0: not on a timer). */
  readonly everySeconds: number;
  readonly fresh: boolean;
  /** Where to log the trained samples (sinks/trained-log.ts), if anywhere. */
  readonly trainedLog?: string;
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
  const { source, outputUnits, sink } = options.source ?? createSource(pipeline.source, pipeline.scenario, pipeline.seed, log, options.metrics, pipeline.serving);
  // 0 (a Kafka source, no model.outputUnits): heads start empty and grow a unit per new label.
  const units = pipeline.model.outputUnits || outputUnits;
  const name = options.strategyOverride?.name ?? pipeline.strategy.name;
  let descriptor: StrategyDescriptor;
  try {
    descriptor = describeStrategy(pipeline, options.registry, name);
  } catch (error) {
    await source.close();
    throw error;
  }
  const weak = scenarioWarning(descriptor, pipeline.scenario, (options.registry ?? builtinStrategies()).all());
  if (weak) log.warn(weak);
  if (source.live && descriptor.capabilities.needsFiniteStream) {
    await source.close();
    throw new ConfigError(`strategy "${name}" needs a finite embedded stream, not ${source.description}`, undefined, 'strategy.name');
  }
  const strategyOptions: StrategyOptions = {
      scenario: pipeline.scenario,
      inputSize: source.inputSize,
      hiddenLayers: pipeline.model.hiddenLayers,
      outputUnits: units,
      ...(pipeline.model.maxClasses ? { maxClasses: pipeline.model.maxClasses } : {}),
      optimizer: pipeline.training.optimizer,
      learningRate: pipeline.training.learningRate,
      stepsPerBatch: pipeline.training.stepsPerBatch,
      seed: pipeline.seed,
      params: options.strategyOverride?.params ?? pipeline.strategy.params,
  };
  const strategy = createStrategy(descriptor, strategyOptions);
  const recorder = new RunRecorder(source.knownTasks?.() ?? []);
  const metrics = options.metrics;
  const durable = options.durable && source.positions ? options.durable : undefined;
  let trainedLog: TrainedLog | undefined;
  let resumed: EngineSnapshot | undefined;
  let writer: CheckpointWriter | undefined;
  // Snapshots go out with durable checkpoints: a Kafka daemon only (README "Scaling").
  const snapshots = durable && pipeline.source.type === 'kafka' ? snapshotTrigger(pipeline, pipeline.source, { pipeline: pipeline.name, strategyName: name, options: strategyOptions }, log, metrics) : undefined;
  try {
    if (durable) {
      trainedLog = durable.trainedLog ? new TrainedLog(durable.trainedLog) : undefined;
      resumed = await resume(durable, { pipeline: pipeline.name, strategyName: name, options: strategyOptions, source: source.description }, strategy, recorder, trainedLog, log, metrics);
      writer = checkpointWriter(durable, { pipeline: pipeline.name, strategyName: name, options: strategyOptions, source: source.description }, strategy, recorder, trainedLog, log, metrics, snapshots);
    }
  } catch (error) {
    strategy.dispose();
    trainedLog?.close();
    await snapshots?.close(0).catch(() => undefined);
    await source.close().catch(() => undefined);
    throw error;
  }
  metrics?.setBackend(options.backend);
  metrics?.setParameters(strategy.parameterCount());
  if (resumed && metrics) {
    if (recorder.current) metrics.setCurrentTask(recorder.current.name, recorder.current.index);
    metrics.setAccuracyMatrix(recorder.taskNames(), recorder.matrix);
    metrics.setTasksLearned(recorder.tasksLearned);
    metrics.setModelVersion(recorder.modelVersion);
    recorder.parametersAfterTask.forEach((p, i) => metrics.setParametersAfterTask(recorder.taskNames()[i] as string, p));
  }
  const expected = (task: string) => source.expectedSamples?.(task);
  const started = performance.now();
  // Source rejections and strategy refusals alike: every reason logged, none flooding the log.
  const warnings = new RateLimitedWarnings(log);
  log.info(`learning ${source.description} with ${name}`, { pipeline: pipeline.name, scenario: pipeline.scenario, parameters: strategy.parameterCount() });
  let failure: unknown;
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
        metrics?.countRejection(reason);
        warnings.warn(reason, `rejected a message: ${detail}`, { task: task ?? '' });
      },
      onRejected: (sample, { reason, detail }) => {
        metrics?.countRejection(reason);
        warnings.warn(reason, `refused sample ${sample.id ?? '(no id)'}: ${detail}`, { task: sample.task });
      },
      ...(durable && writer ? { checkpoints: { writer, everySamples: durable.everySamples, everySeconds: durable.everySeconds } } : {}),
      ...(resumed ? { resumed } : {}),
      drift: pipeline.drift ?? DRIFT_DEFAULTS,
    }).pipe(
      tap((event) => event.kind === 'step-outcome' && logDrifts(event, log)),
      recordRun(recorder),
      tap((event) => event.kind === 'step-outcome' && trainedLog?.record(event)),
      tap((event) => event.kind === 'step-outcome' && snapshots?.noteStep(event)),
      metrics ? publishMetrics(metrics, recorder) : tap(),
      tap((event) => options.onEvent?.(event, recorder, expected)),
    );
    await lastValueFrom(events, { defaultValue: undefined });
    if (options.checkpoint) {
      await writeCheckpoint(options.checkpoint, { pipeline: pipeline.name, strategyName: name, options: strategyOptions, state: await strategy.exportState() });
      log.info(`checkpoint written to ${options.checkpoint}`);
    }
  } catch (error) {
    // Said before shutting down, whose own failure must not hide it.
    failure = error;
    log.error(`the run failed: ${(error as Error).message}`, { stack: (error as Error).stack ?? '' });
  }
  warnings.flush();
  strategy.dispose();
  trainedLog?.close();
  // The sink flushes first, then the source commits and disconnects; a failure here (a
  // shutdown past its deadline) fails the run, so the daemon exits non-zero.
  const shutdownMs = pipeline.source.type === 'kafka' ? pipeline.source.shutdownTimeoutMs : 0;
  const shutdown = await Promise.allSettled([sink?.close(), snapshots?.close(shutdownMs)]).then(async ([closed]) => [closed, ...(await Promise.allSettled([source.close()]))]);
  const problems = shutdown.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as Error);
  if (failure !== undefined) {
    for (const problem of problems) log.error(`shutting down after the failure also failed: ${problem.message}`, { stack: problem.stack ?? '' });
    throw failure;
  }
  if (problems.length > 0) throw problems[0];
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

/** Each confirmed concept drift as a log event, and the task task-free mode begins after it. */
function logDrifts(outcome: StepOutcome, log: Logger): void {
  for (const drift of outcome.drift?.confirmed ?? []) {
    const error = `${drift.errorBefore.toFixed(3)} -> ${drift.errorAfter.toFixed(3)}`;
    log.warn(`concept drift in task ${drift.task}: ${drift.detector} at sample ${drift.position}, error ${error}`, { task: drift.task, detector: drift.detector, position: drift.position });
    if (drift.nextTask !== undefined) log.info(`task-free mode: ${drift.task} ends, ${drift.nextTask} begins at the next sample of its topic`, { task: drift.task, nextTask: drift.nextTask, position: drift.position });
  }
}

/** What a checkpoint must match to be resumed by this run. */
interface RunIdentity {
  readonly pipeline: string;
  readonly strategyName: string;
  readonly options: StrategyOptions;
  readonly source: string;
}

/**
 * Resumes the newest checkpoint that verifies (restoring the strategy and the record in place),
 * or starts over (`fresh`: the store's checkpoints are set aside first). A checkpoint of another
 * strategy or model is refused: resuming it would silently learn something else.
 */
async function resume(durable: DurableOptions, identity: RunIdentity, strategy: Strategy, recorder: RunRecorder, trainedLog: TrainedLog | undefined, log: Logger, metrics: LifelongMetrics | undefined): Promise<EngineSnapshot | undefined> {
  const { store } = durable;
  await store.prepare();
  if (durable.fresh) {
    const aside = await store.setAside();
    if (aside) log.warn(`--fresh: starting over; the earlier checkpoints were moved to ${aside}`);
    trainedLog?.truncate(0);
    return undefined;
  }
  const found = await store.newest();
  if (found === undefined) {
    log.info(`no checkpoint in ${store.directory}: starting with a new model`);
    trainedLog?.truncate(0);
    return undefined;
  }
  const { file, checkpoint } = found;
  const mismatch = (what: string, theirs: unknown, ours: unknown): never => {
    throw new ConfigError(
      `checkpoint ${file} was written with ${what} ${JSON.stringify(theirs)}, this run has ${JSON.stringify(ours)}: run with --fresh to start over (its checkpoints are set aside), or point checkpoint.directory elsewhere`,
      undefined,
      'checkpoint.directory',
    );
  };
  if (checkpoint.run === undefined) mismatch('no run state (a strategy-only checkpoint, e.g. from --checkpoint FILE); run state', null, 'one');
  if (checkpoint.strategyName !== identity.strategyName) mismatch('strategy', checkpoint.strategyName, identity.strategyName);
  if (JSON.stringify(checkpoint.options) !== JSON.stringify(identity.options)) mismatch('strategy options', checkpoint.options, identity.options);
  const run = decodeRunState(checkpoint.run!, file);
  if (run.source !== identity.source) log.warn(`checkpoint ${file} was taken reading ${run.source}; this run reads ${identity.source}`);
  await strategy.importState(checkpoint.state);
  recorder.importState(run.recorder);
  if (run.trainedLogBytes !== undefined) trainedLog?.truncate(run.trainedLogBytes);
  const { engine } = run;
  // The checkpoint's age goes on from when it was written, not from this restart.
  const writtenAt = Date.parse(checkpoint.createdAt);
  if (Number.isFinite(writtenAt)) metrics?.setCheckpointSuccess(writtenAt / 1000);
  log.info(`resuming from ${file} (${checkpoint.createdAt}): ${engine.tasks.length} tasks${engine.current ? `, ${engine.current} in progress` : ''}, model version ${engine.modelVersion}`, { positions: engine.positions });
  return engine;
}

/** Writes each engine snapshot with the strategy and the record into the store. */
function checkpointWriter(durable: DurableOptions, identity: RunIdentity, strategy: Strategy, recorder: RunRecorder, trainedLog: TrainedLog | undefined, log: Logger, metrics: LifelongMetrics | undefined, snapshots: SnapshotTrigger | undefined): CheckpointWriter {
  return {
    write: async (engine, reason) => {
      const t0 = performance.now();
      const trainedLogBytes = trainedLog?.sync();
      const state = await strategy.exportState();
      const { file, bytes } = await durable.store.write({
        pipeline: identity.pipeline,
        strategyName: identity.strategyName,
        options: identity.options,
        state,
        run: encodeRunState({ source: identity.source, engine, recorder: recorder.exportState(), ...(trainedLogBytes !== undefined ? { trainedLogBytes } : {}) }),
      });
      const ms = performance.now() - t0;
      metrics?.setCheckpointSuccess(Date.now() / 1000);
      const message = `checkpoint ${file} written (${reason}): ${(bytes / 1e6).toFixed(2)} MB in ${ms.toFixed(0)} ms, model version ${engine.modelVersion}`;
      if (reason === 'task-end' || reason === 'shutdown') log.info(message);
      else log.debug(message);
      snapshots?.afterCheckpoint(engine, reason, state);
    },
  };
}

/** The pipeline's snapshot publishing, if it has a snapshot topic: on a connection of its own, so a large snapshot never queues predictions behind it. */
function snapshotTrigger(pipeline: PipelineConfig, source: KafkaSourceConfig, identity: { pipeline: string; strategyName: string; options: StrategyOptions }, log: Logger, metrics: LifelongMetrics | undefined): SnapshotTrigger | undefined {
  const config = pipeline.snapshots ?? SNAPSHOTS_DEFAULTS;
  if (config.topic === '') return undefined;
  const counted = metrics ? new SnapshotPublishMetrics(metrics.registry) : undefined;
  const publisher = new KafkaSnapshotPublisher(
    {
      topic: config.topic,
      chunkBytes: config.chunkBytes,
      pipeline: pipeline.name,
      onPublished: ({ version, bytes, chunks, seconds }) => {
        counted?.observePublished(version, bytes, seconds);
        log.info(`snapshot version ${version} published to ${config.topic}: ${(bytes / 1e6).toFixed(2)} MB in ${chunks} chunks, ${(seconds * 1000).toFixed(0)} ms`);
      },
      onFailed: (version, error) => {
        counted?.countFailure();
        log.warn(`snapshot version ${version} was not published to ${config.topic}: ${error.message}; the next task end or ${config.everySamples} samples publish a newer one`);
      },
    },
    new KafkaConnection({ ...kafkaSourceOptions(source, log), clientId: `${source.clientId}-snapshots` }),
    true,
  );
  return new SnapshotTrigger(publisher, config.everySamples, identity);
}
