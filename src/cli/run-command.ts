import * as fs from 'node:fs';
import * as path from 'node:path';
import { selectBackend } from '../backend/backend';
import { loadDaemonConfig, type DaemonConfig, type DaemonConfigOverrides } from '../config/daemon-config';
import { CHECKPOINT_DEFAULTS, loadPipelineConfig, type PipelineConfig } from '../config/pipeline-config';
import { ConfigError, InterruptedError, TimeoutError, UsageError } from '../core/errors';
import { createLogger, type Logger } from '../core/log';
import { CheckpointStore } from '../engine/checkpoint-store';
import type { RunReport } from '../engine/report';
import { runPipeline, type DurableOptions } from '../engine/run-pipeline';
import { MetricsServer } from '../metrics/http-server';
import { PerRunMetrics } from '../metrics/per-run-metrics';
import { EXIT_CODES } from './exit-codes';
import { formatComparison, formatMatrix, formatSummary } from './format';
import { parseCommandArgs } from './parse-command-args';
import { TaskProgress } from './progress';
import type { CommandUsage } from './usage';

export const RUN_USAGE: CommandUsage = {
  synopsis: `  lifelong run --pipeline FILE [--report FILE] [--config FILE] [--compare STRATEGY[,STRATEGY]]
               [--backend auto|tensorflow-gpu|tensorflow|wasm|cpu] [--metrics-port PORT] [--no-metrics]
               [--brokers HOST:PORT[,...]] [--checkpoint FILE] [--fresh]`,
  description: `run       learns the pipeline's task stream; on a finite source exits 0 when the stream ends; on
          Kafka it runs until SIGINT/SIGTERM, then finishes the batch in hand, publishes, commits
          and exits 0 (1 when that does not finish within source.shutdownTimeoutMs).
          --report FILE    write the run's JSON report (accuracy matrix, transfer, forgetting, speed)
          --config FILE    daemon config (default config/default.json); LIFELONG_* variables override it
          --compare LIST   also run these strategies on the same stream, and print them side by side;
                           /metrics then labels every run's series with strategy="NAME"
          --backend NAME   override the config's tensor backend
          --metrics-port P override the metrics port (0 = any free port); --no-metrics serves none
          --brokers LIST   Kafka brokers replacing the pipeline's source.brokers (or LIFELONG_KAFKA_BROKERS)
          --checkpoint F   write the strategy's complete state to F when the run ends (replay-grid reads it)
          --fresh          Kafka: start over with a new model instead of resuming the newest checkpoint
                           of checkpoint.directory (whose checkpoints are set aside, not deleted)
          On Kafka, run resumes by default: README "Durability".
`,
};

export interface RunCommandOptions {
  readonly pipeline: string;
  readonly report?: string;
  readonly config?: string;
  /** Other strategies to run on the same stream, after the pipeline's own. */
  readonly compare: readonly string[];
  readonly backend?: string;
  readonly metricsPort?: string;
  readonly metrics: boolean;
  /** Kafka brokers replacing the pipeline's source.brokers (also LIFELONG_KAFKA_BROKERS). */
  readonly brokers?: string;
  /** Write the (first) strategy's state here at the end of its run. */
  readonly checkpoint?: string;
  /** Start over instead of resuming the newest durable checkpoint (Kafka). */
  readonly fresh: boolean;
}

/** Parses `lifelong run` arguments; throws UsageError naming the option. */
export function parseRunArgs(args: readonly string[]): RunCommandOptions {
  const values = parseCommandArgs(args, {
    pipeline: { type: 'string' },
    report: { type: 'string' },
    config: { type: 'string' },
    compare: { type: 'string' },
    backend: { type: 'string' },
    'metrics-port': { type: 'string' },
    'no-metrics': { type: 'boolean', default: false },
    brokers: { type: 'string' },
    checkpoint: { type: 'string' },
    fresh: { type: 'boolean', default: false },
  });
  if (!values.pipeline) throw new UsageError('lifelong run needs --pipeline FILE', '--pipeline');
  return {
    pipeline: values.pipeline,
    ...(values.report ? { report: values.report } : {}),
    ...(values.config ? { config: values.config } : {}),
    compare: values.compare ? values.compare.split(',').map((s) => s.trim()).filter(Boolean) : [],
    ...(values.backend ? { backend: values.backend } : {}),
    ...(values['metrics-port'] !== undefined ? { metricsPort: values['metrics-port'] } : {}),
    metrics: !values['no-metrics'],
    ...(values.brokers ? { brokers: values.brokers } : {}),
    ...(values.checkpoint ? { checkpoint: values.checkpoint } : {}),
    fresh: values.fresh === true,
  };
}

const DEFAULT_DAEMON_CONFIG = path.resolve(__dirname, '../../../config/default.json');

/** config/default.json where the package has it (the daemon's settings before the environment's), else none. */
export function defaultDaemonConfig(): string | undefined {
  return fs.existsSync(DEFAULT_DAEMON_CONFIG) ? DEFAULT_DAEMON_CONFIG : undefined;
}

/** What a daemon command (run, serve) is given on its command line about its configuration. */
export type DaemonCommandOptions = Pick<RunCommandOptions, 'pipeline' | 'config' | 'backend' | 'metricsPort' | 'metrics' | 'brokers'>;

/** The daemon config (file, LIFELONG_* variables, then the options), its logger, and the pipeline with its brokers replaced where asked. */
export function loadDaemonAndPipeline(options: DaemonCommandOptions): { daemon: DaemonConfig; log: Logger; pipeline: PipelineConfig } {
  const overrides: DaemonConfigOverrides = {
    ...(options.backend ? { backend: options.backend as never } : {}),
    metrics: { ...(options.metricsPort !== undefined ? { port: options.metricsPort } : {}), ...(options.metrics ? {} : { enabled: false }) },
  };
  const daemon = loadDaemonConfig(options.config ?? defaultDaemonConfig(), overrides);
  const log = createLogger(daemon.log.level, daemon.log.format);
  const pipeline = withBrokers(loadPipelineConfig(options.pipeline, { moduleDirs: daemon.strategies.moduleDirs }), options.brokers ?? process.env.LIFELONG_KAFKA_BROKERS);
  return { daemon, log, pipeline };
}

/** `lifelong run`: one pipeline (and its comparisons) to the end of the stream. */
export async function runCommand(options: RunCommandOptions): Promise<number> {
  const { daemon, log, pipeline } = loadDaemonAndPipeline(options);
  if (pipeline.source.type === 'kafka' && options.compare.length > 0) {
    throw new UsageError('--compare replays one finite stream for each strategy; a Kafka stream is consumed once', '--compare');
  }
  const strategies = [pipeline.strategy.name, ...options.compare];
  const repeated = strategies.find((name, i) => strategies.indexOf(name) !== i);
  if (repeated !== undefined) {
    throw new UsageError(`--compare names ${repeated} twice (the pipeline's own strategy counts): each run is published under its strategy's name`, '--compare');
  }
  if (options.fresh && pipeline.source.type !== 'kafka') log.warn(`--fresh has no effect on a ${pipeline.source.type} source: finite streams are never resumed, every run starts fresh`);
  const backend = await selectBackend(daemon.backend, (m) => log.info(m));

  const metrics = new PerRunMetrics({ labelByStrategy: strategies.length > 1, maxTasks: daemon.metrics.maxTasks });
  let server: MetricsServer | undefined;
  let currentTask: string | undefined;
  if (daemon.metrics.enabled) {
    server = new MetricsServer({
      metrics,
      health: () => ({ healthy: true, details: { pipeline: pipeline.name, task: currentTask ?? null } }),
    });
    const port = await server.start(daemon.metrics.host, daemon.metrics.port);
    log.info(`metrics on http://${daemon.metrics.host}:${port}/metrics`);
  }

  const abort = new AbortController();
  // A graceful stop must finish within the deadline (Kafka: batch in hand, commit, flush), else
  // the run fails with a non-zero exit; a second signal gives up at once.
  const deadlineMs = pipeline.source.type === 'kafka' ? pipeline.source.shutdownTimeoutMs : 15_000;
  let giveUp: ((error: Error) => void) | undefined;
  const gaveUp = new Promise<never>((_, reject) => (giveUp = reject));
  gaveUp.catch(() => undefined);
  let deadline: NodeJS.Timeout | undefined;
  const onSignal = (signal: string) => {
    if (abort.signal.aborted) {
      giveUp?.(new InterruptedError(`${signal} again: stopping without finishing the batch in hand`));
      return;
    }
    log.warn(`${signal}: stopping after the batch in hand (deadline ${deadlineMs} ms)`);
    abort.abort();
    deadline = setTimeout(() => giveUp?.(new TimeoutError(`graceful shutdown did not finish within ${deadlineMs} ms`)), deadlineMs);
    deadline.unref();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const reports: RunReport[] = [];
  try {
    for (const strategy of strategies) {
      if (abort.signal.aborted) break;
      const progress = new TaskProgress(strategy);
      const run = runPipeline({
        pipeline,
        backend: backend.name,
        ...(strategy === pipeline.strategy.name ? {} : { strategyOverride: { name: strategy, params: {} } }),
        metrics: metrics.startRun(strategy),
        log,
        signal: abort.signal,
        ...(options.checkpoint && reports.length === 0 ? { checkpoint: options.checkpoint } : {}),
        ...(pipeline.source.type === 'kafka' ? { durable: durableOptions(pipeline, options.fresh, log) } : {}),
        onEvent: (event, recorder, expected) => {
          if (event.kind === 'task-started') currentTask = event.task.name;
          progress.update(event, recorder, expected);
        },
      });
      const report = await Promise.race([run, gaveUp]);
      reports.push(report);
      process.stdout.write(`\n${formatMatrix(report)}\n${formatSummary(report)}\n`);
    }
    if (reports.length > 1) process.stdout.write(`\n${formatComparison(reports)}\n`);
    if (options.report && reports[0]) {
      const [main, ...comparisons] = reports;
      fs.mkdirSync(path.dirname(path.resolve(options.report)), { recursive: true });
      fs.writeFileSync(options.report, `${JSON.stringify(comparisons.length ? { ...main, comparisons } : main, null, 2)}\n`);
      log.info(`report written to ${options.report}`);
    }
    if (abort.signal.aborted) {
      // A live source has no end: a signal is how a daemon stops, and it stopped cleanly.
      if (pipeline.source.type === 'kafka') {
        log.info('stopped: the batch in hand was finished, predictions published, a checkpoint written and offsets committed');
        return EXIT_CODES.success;
      }
      log.warn('interrupted before the end of the stream');
      return EXIT_CODES.interrupted;
    }
    return EXIT_CODES.success;
  } finally {
    clearTimeout(deadline);
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    await server?.close();
  }
}

/**
 * Where and how often a Kafka pipeline's checkpoints are written: checkpoint.directory, else
 * `<LIFELONG_CHECKPOINT_DIRECTORY or checkpoints>/<pipeline name>` under the working directory;
 * LIFELONG_TRAINED_LOG names a file listing every sample trained (sinks/trained-log.ts).
 */
function durableOptions(pipeline: PipelineConfig, fresh: boolean, log: Logger): DurableOptions {
  const config = pipeline.checkpoint ?? CHECKPOINT_DEFAULTS;
  const directory = path.resolve(config.directory !== '' ? config.directory : path.join(process.env.LIFELONG_CHECKPOINT_DIRECTORY || 'checkpoints', pipeline.name));
  const trainedLog = process.env.LIFELONG_TRAINED_LOG;
  return {
    store: new CheckpointStore(directory, config.keep, log),
    everySamples: config.everySamples,
    everySeconds: config.everySeconds,
    fresh,
    ...(trainedLog ? { trainedLog } : {}),
  };
}

/** The pipeline with its Kafka brokers replaced (a demo broker on another port, CI's broker). */
function withBrokers(pipeline: PipelineConfig, brokers: string | undefined): PipelineConfig {
  if (brokers === undefined || brokers === '') return pipeline;
  if (pipeline.source.type !== 'kafka') throw new ConfigError(`--brokers (or LIFELONG_KAFKA_BROKERS) applies to kafka sources, not ${pipeline.source.type}`, undefined, 'source.brokers');
  const list = brokers.split(',').map((b) => b.trim()).filter(Boolean);
  if (list.length === 0 || list.some((b) => !/^[^\s:]+:\d+$/.test(b))) throw new ConfigError(`--brokers must be host:port[,host:port...], got "${brokers}"`, undefined, 'source.brokers');
  return { ...pipeline, source: { ...pipeline.source, brokers: list } };
}
