import * as fs from 'node:fs';
import * as path from 'node:path';
import { selectBackend } from '../backend/backend';
import { loadDaemonConfig, type DaemonConfig, type DaemonConfigOverrides } from '../config/daemon-config';
import { CHECKPOINT_DEFAULTS, loadPipelineConfig, type KafkaSourceConfig, type PipelineConfig } from '../config/pipeline-config';
import { ConfigError, UsageError } from '../core/errors';
import { createLogger, type Logger } from '../core/log';
import { CheckpointStore } from '../engine/checkpoint-store';
import type { RunReport } from '../engine/report';
import { runPipeline, type DurableOptions } from '../engine/run-pipeline';
import { leaseTopicFor } from '../kafka/lease-group';
import { MetricsServer } from '../metrics/http-server';
import { PerRunMetrics } from '../metrics/per-run-metrics';
import { EXIT_CODES } from './exit-codes';
import { formatComparison, formatMatrix, formatSummary } from './format';
import { GracefulStop } from './graceful-stop';
import { parseCommandArgs } from './parse-command-args';
import { DEFAULT_LEASE_GROUP, loadPipelineDirectory, runLeased } from './pipelines-directory';
import { TaskProgress } from './progress';
import type { CommandUsage } from './usage';

export const RUN_USAGE: CommandUsage = {
  synopsis: `  lifelong run --pipeline FILE [--report FILE] [--config FILE] [--compare STRATEGY[,STRATEGY]]
               [--backend auto|tensorflow-gpu|tensorflow|wasm|cpu] [--metrics-port PORT] [--no-metrics]
               [--brokers HOST:PORT[,...]] [--checkpoint FILE] [--fresh]
  lifelong run --pipelines DIR [--lease-group NAME] [--config FILE] [--backend NAME] [--metrics-port PORT]
               [--no-metrics] [--brokers HOST:PORT[,...]]`,
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
          A pipeline with lease.enabled runs only while this daemon holds its lease: a second
          run of it is a standby that takes over from the newest checkpoint when the first dies.
          --pipelines DIR  run every *.json Kafka pipeline of DIR that this daemon holds the lease of;
                           the daemons of one --lease-group (default lifelong.pipelines) share them
          README "Scaling".
`,
};

export interface RunCommandOptions {
  /** One pipeline file, or (--pipelines) a directory of them. */
  readonly pipeline?: string;
  readonly pipelines?: string;
  /** The lease group of --pipelines (default DEFAULT_LEASE_GROUP). */
  readonly leaseGroup?: string;
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
    pipelines: { type: 'string' },
    'lease-group': { type: 'string' },
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
  if (!values.pipeline && !values.pipelines) throw new UsageError('lifelong run needs --pipeline FILE (or --pipelines DIR)', '--pipeline');
  if (values.pipeline && values.pipelines) throw new UsageError('lifelong run takes --pipeline FILE or --pipelines DIR, not both', '--pipelines');
  if (values['lease-group'] && !values.pipelines) throw new UsageError('--lease-group applies to --pipelines DIR (a standby of one pipeline uses the group lifelong.lease.<name>)', '--lease-group');
  return {
    ...(values.pipeline ? { pipeline: values.pipeline } : {}),
    ...(values.pipelines ? { pipelines: values.pipelines } : {}),
    ...(values['lease-group'] ? { leaseGroup: values['lease-group'] } : {}),
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
export type DaemonCommandOptions = Pick<RunCommandOptions, 'config' | 'backend' | 'metricsPort' | 'metrics' | 'brokers'> & { readonly pipeline: string };

/** The daemon config (file, LIFELONG_* variables, then the options) and its logger. */
function loadDaemon(options: Omit<DaemonCommandOptions, 'pipeline'>): { daemon: DaemonConfig; log: Logger } {
  const overrides: DaemonConfigOverrides = {
    ...(options.backend ? { backend: options.backend as never } : {}),
    metrics: { ...(options.metricsPort !== undefined ? { port: options.metricsPort } : {}), ...(options.metrics ? {} : { enabled: false }) },
  };
  const daemon = loadDaemonConfig(options.config ?? defaultDaemonConfig(), overrides);
  return { daemon, log: createLogger(daemon.log.level, daemon.log.format) };
}

/** The daemon config, its logger, and the pipeline with its brokers replaced where asked. */
export function loadDaemonAndPipeline(options: DaemonCommandOptions): { daemon: DaemonConfig; log: Logger; pipeline: PipelineConfig } {
  const { daemon, log } = loadDaemon(options);
  const pipeline = withBrokers(loadPipelineConfig(options.pipeline, { moduleDirs: daemon.strategies.moduleDirs }), options.brokers ?? process.env.LIFELONG_KAFKA_BROKERS);
  return { daemon, log, pipeline };
}

/** `lifelong run`: one pipeline (and its comparisons) to the end of the stream, or leased pipelines (README "Scaling"). */
export async function runCommand(options: RunCommandOptions): Promise<number> {
  if (options.pipelines !== undefined) {
    const { daemon, log } = loadDaemon(options);
    const pipelines = loadPipelineDirectory(options.pipelines, { moduleDirs: daemon.strategies.moduleDirs }, (p) => withBrokers(p, options.brokers ?? process.env.LIFELONG_KAFKA_BROKERS));
    return runLeasedCommand(options, daemon, log, pipelines, options.leaseGroup ?? DEFAULT_LEASE_GROUP, true);
  }
  const { daemon, log, pipeline } = loadDaemonAndPipeline({ ...options, pipeline: options.pipeline as string });
  if (pipeline.lease?.enabled === true && pipeline.source.type === 'kafka') {
    return runLeasedCommand(options, daemon, log, [pipeline as PipelineConfig & { source: KafkaSourceConfig }], leaseTopicFor(pipeline.name), false);
  }
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

  // A graceful stop must finish within the deadline (Kafka: batch in hand, commit, flush), else
  // the run fails with a non-zero exit; a second signal gives up at once.
  const stop = new GracefulStop(pipeline.source.type === 'kafka' ? pipeline.source.shutdownTimeoutMs : 15_000, log);

  const reports: RunReport[] = [];
  try {
    for (const strategy of strategies) {
      if (stop.signal.aborted) break;
      const progress = new TaskProgress(strategy);
      const run = runPipeline({
        pipeline,
        backend: backend.name,
        ...(strategy === pipeline.strategy.name ? {} : { strategyOverride: { name: strategy, params: {} } }),
        metrics: metrics.startRun(strategy),
        log,
        signal: stop.signal,
        ...(options.checkpoint && reports.length === 0 ? { checkpoint: options.checkpoint } : {}),
        ...(pipeline.source.type === 'kafka' ? { durable: durableOptions(pipeline, options.fresh, log) } : {}),
        onEvent: (event, recorder, expected) => {
          if (event.kind === 'task-started') currentTask = event.task.name;
          progress.update(event, recorder, expected);
        },
      });
      const report = await Promise.race([run, stop.gaveUp]);
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
    if (stop.signal.aborted) {
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
    stop.dispose();
    await server?.close();
  }
}

/**
 * A standby (one pipeline with `lease.enabled`) or a directory of pipelines: each runs only while
 * this daemon holds its lease. Options that fit one uninterrupted run are refused.
 */
async function runLeasedCommand(options: RunCommandOptions, daemon: DaemonConfig, log: Logger, pipelines: ReadonlyArray<PipelineConfig & { source: KafkaSourceConfig }>, groupId: string, several: boolean): Promise<number> {
  const refused = (['report', 'checkpoint', 'fresh'] as const).find((o) => options[o]);
  if (refused !== undefined) throw new UsageError(`--${refused} fits one uninterrupted run; a leased pipeline runs in terms, handed between daemons`, `--${refused}`);
  if (options.compare.length > 0) throw new UsageError('--compare replays one finite stream for each strategy; a Kafka stream is consumed once', '--compare');
  const backend = await selectBackend(daemon.backend, (m) => log.info(m));
  return runLeased({ pipelines, groupId, backend: backend.name, daemon, log, durable: (p) => durableOptions(p, false, log, several) });
}

/**
 * Where and how often a Kafka pipeline's checkpoints are written: checkpoint.directory, else
 * `<LIFELONG_CHECKPOINT_DIRECTORY or checkpoints>/<pipeline name>` under the working directory;
 * LIFELONG_TRAINED_LOG names a file listing every sample trained (sinks/trained-log.ts).
 */
function durableOptions(pipeline: PipelineConfig, fresh: boolean, log: Logger, trainedLogPerPipeline = false): DurableOptions {
  const config = pipeline.checkpoint ?? CHECKPOINT_DEFAULTS;
  const directory = path.resolve(config.directory !== '' ? config.directory : path.join(process.env.LIFELONG_CHECKPOINT_DIRECTORY || 'checkpoints', pipeline.name));
  // Several pipelines in one process: each its own trained log, LIFELONG_TRAINED_LOG.<pipeline>.
  const trainedLog = process.env.LIFELONG_TRAINED_LOG && trainedLogPerPipeline ? `${process.env.LIFELONG_TRAINED_LOG}.${pipeline.name}` : process.env.LIFELONG_TRAINED_LOG;
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
