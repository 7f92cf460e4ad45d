import { selectBackend } from '../backend/backend';
import { ConfigError, InterruptedError, TimeoutError, UsageError } from '../core/errors';
import { PredictionReplica } from '../engine/serve-pipeline';
import { MetricsServer } from '../metrics/http-server';
import { ReplicaMetrics } from '../metrics/snapshot-metrics';
import { EXIT_CODES } from './exit-codes';
import { parseCommandArgs } from './parse-command-args';
import { loadDaemonAndPipeline, type DaemonCommandOptions } from './run-command';
import type { CommandUsage } from './usage';

export const SERVE_USAGE: CommandUsage = {
  synopsis: `  lifelong serve --pipeline FILE [--config FILE] [--backend NAME] [--metrics-port PORT] [--no-metrics]
               [--brokers HOST:PORT[,...]]`,
  description: `serve     a prediction replica of a Kafka pipeline (README "Scaling"): loads the newest model
          snapshot from snapshots.topic, answers the pipeline's prediction requests (the request topic
          and the task topics' unlabelled messages) in the replicas' consumer group, swaps in each
          newer snapshot between requests, and never trains. Start as many as the request topics have
          partitions. Runs until SIGINT/SIGTERM, then finishes the batch in hand and exits 0.
          --config FILE    daemon config (default config/default.json); LIFELONG_* variables override it
          --backend NAME   override the config's tensor backend
          --metrics-port P override the metrics port (0 = any free port); --no-metrics serves none
          --brokers LIST   Kafka brokers replacing the pipeline's source.brokers (or LIFELONG_KAFKA_BROKERS)
`,
};

export type ServeCommandOptions = DaemonCommandOptions;

/** Parses `lifelong serve` arguments; throws UsageError naming the option. */
export function parseServeArgs(args: readonly string[]): ServeCommandOptions {
  const values = parseCommandArgs(args, {
    pipeline: { type: 'string' },
    config: { type: 'string' },
    backend: { type: 'string' },
    'metrics-port': { type: 'string' },
    'no-metrics': { type: 'boolean', default: false },
    brokers: { type: 'string' },
  });
  if (!values.pipeline) throw new UsageError('lifelong serve needs --pipeline FILE', '--pipeline');
  return {
    pipeline: values.pipeline,
    ...(values.config ? { config: values.config } : {}),
    ...(values.backend ? { backend: values.backend } : {}),
    ...(values['metrics-port'] !== undefined ? { metricsPort: values['metrics-port'] } : {}),
    metrics: !values['no-metrics'],
    ...(values.brokers ? { brokers: values.brokers } : {}),
  };
}

/** `lifelong serve`: one prediction replica, until a signal. */
export async function serveCommand(options: ServeCommandOptions): Promise<number> {
  const { daemon, log, pipeline } = loadDaemonAndPipeline(options);
  if (pipeline.source.type !== 'kafka') throw new ConfigError(`lifelong serve answers Kafka requests; ${options.pipeline} has a ${pipeline.source.type} source`, options.pipeline, 'source.type');
  if (pipeline.serving !== 'replicas') log.warn(`${options.pipeline} has serving '${pipeline.serving ?? 'trainer'}': its trainer answers requests too, so some are answered twice; set serving to 'replicas'`);
  await selectBackend(daemon.backend, (m) => log.info(m));

  const metrics = new ReplicaMetrics();
  const replica = new PredictionReplica({ pipeline, metrics, log });
  let server: MetricsServer | undefined;
  if (daemon.metrics.enabled) {
    server = new MetricsServer({
      metrics,
      health: () => {
        const status = replica.status();
        return { healthy: status.serving, details: { pipeline: pipeline.name, ...status } };
      },
    });
    const port = await server.start(daemon.metrics.host, daemon.metrics.port);
    log.info(`metrics on http://${daemon.metrics.host}:${port}/metrics`);
  }

  const deadlineMs = pipeline.source.shutdownTimeoutMs;
  let stop: (signal: string) => void = () => undefined;
  const stopped = new Promise<string>((resolve) => (stop = resolve));
  let giveUp: ((error: Error) => void) | undefined;
  const gaveUp = new Promise<never>((_, reject) => (giveUp = reject));
  gaveUp.catch(() => undefined);
  let signalled = false;
  let deadline: NodeJS.Timeout | undefined;
  const onSignal = (signal: string) => {
    if (signalled) {
      giveUp?.(new InterruptedError(`${signal} again: stopping without finishing the batch in hand`));
      return;
    }
    signalled = true;
    log.warn(`${signal}: stopping after the batch in hand (deadline ${deadlineMs} ms)`);
    deadline = setTimeout(() => giveUp?.(new TimeoutError(`graceful shutdown did not finish within ${deadlineMs} ms`)), deadlineMs);
    deadline.unref();
    stop(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await Promise.race([replica.start(), stopped, gaveUp]);
    await Promise.race([stopped, gaveUp]);
    await Promise.race([replica.close(), gaveUp]);
    log.info('stopped: the batch in hand was answered and its offsets committed');
    return EXIT_CODES.success;
  } finally {
    clearTimeout(deadline);
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    await replica.close().catch(() => undefined);
    await server?.close();
  }
}
