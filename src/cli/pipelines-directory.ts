import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { DaemonConfig } from '../config/daemon-config';
import { LEASE_DEFAULTS, loadPipelineConfig, type KafkaSourceConfig, type LeaseConfig, type LoadPipelineOptions, type PipelineConfig } from '../config/pipeline-config';
import { ConfigError } from '../core/errors';
import type { Logger } from '../core/log';
import { LeasedPipelines, type LeasedPipeline } from '../engine/leased-pipelines';
import { runPipeline, type DurableOptions } from '../engine/run-pipeline';
import { KafkaConnection } from '../kafka/connection';
import { LeaseGroup, leaseTopicFor } from '../kafka/lease-group';
import { MetricsServer } from '../metrics/http-server';
import { PerPipelineMetrics } from '../metrics/per-run-metrics';
import { EXIT_CODES } from './exit-codes';
import { GracefulStop } from './graceful-stop';

/** The group every daemon of `lifelong run --pipelines DIR` joins, unless --lease-group names another. */
export const DEFAULT_LEASE_GROUP = 'lifelong.pipelines';

/** A Kafka pipeline with its source's type known. */
type KafkaPipeline = PipelineConfig & { readonly source: KafkaSourceConfig };

/**
 * Every `*.json` pipeline file of `directory`, in name order: each a Kafka pipeline, no two of one
 * name, all on the same brokers and with the same lease timings (one lease group serves them).
 */
export function loadPipelineDirectory(directory: string, options: LoadPipelineOptions, withBrokers: (pipeline: PipelineConfig) => PipelineConfig): KafkaPipeline[] {
  let names: string[];
  try {
    names = fs.readdirSync(directory).filter((n) => n.endsWith('.json')).sort();
  } catch (error) {
    throw new ConfigError(`--pipelines ${directory} cannot be read: ${(error as Error).message}`, directory, '--pipelines', error);
  }
  if (names.length === 0) throw new ConfigError(`--pipelines ${directory} holds no pipeline file (*.json)`, directory, '--pipelines');
  const pipelines: KafkaPipeline[] = [];
  const fileOf = new Map<string, string>();
  for (const name of names) {
    const file = path.join(directory, name);
    const pipeline = withBrokers(loadPipelineConfig(file, options));
    if (pipeline.source.type !== 'kafka') throw new ConfigError(`${file}: --pipelines runs Kafka pipelines, this one reads ${pipeline.source.type}`, file, 'source.type');
    const other = fileOf.get(pipeline.name);
    if (other !== undefined) throw new ConfigError(`${file}: pipeline name "${pipeline.name}" is also ${other}'s: names key the leases and checkpoints`, file, 'name');
    fileOf.set(pipeline.name, file);
    const first = pipelines[0];
    if (first !== undefined) {
      if (pipeline.source.brokers.join(',') !== first.source.brokers.join(',')) throw new ConfigError(`${file}: source.brokers differ from ${fileOf.get(first.name)}'s: one lease group serves every pipeline`, file, 'source.brokers');
      const [mine, theirs] = [leaseOf(pipeline), leaseOf(first)];
      if (mine.sessionTimeoutMs !== theirs.sessionTimeoutMs || mine.heartbeatIntervalMs !== theirs.heartbeatIntervalMs) {
        throw new ConfigError(`${file}: lease timings differ from ${fileOf.get(first.name)}'s: one lease group serves every pipeline`, file, 'lease.sessionTimeoutMs');
      }
    }
    pipelines.push(pipeline as KafkaPipeline);
  }
  return pipelines;
}

function leaseOf(pipeline: PipelineConfig): LeaseConfig {
  return pipeline.lease ?? LEASE_DEFAULTS;
}

export interface LeasedRunOptions {
  readonly pipelines: readonly KafkaPipeline[];
  readonly groupId: string;
  readonly backend: string;
  readonly daemon: DaemonConfig;
  readonly log: Logger;
  /** The durable options of a pipeline (its checkpoint directory shared with the other trainers). */
  readonly durable: (pipeline: PipelineConfig) => DurableOptions;
}

/**
 * `lifelong run` with leases: a standby (`lease.enabled`, one pipeline, the group
 * `lifelong.lease.<name>`) or a directory of pipelines over one group. Each pipeline runs here
 * only while this daemon holds its lease (engine/leased-pipelines.ts). SIGINT/SIGTERM stops every
 * pipeline gracefully, then leaves the group; exits 0 then, 1 when that misses the deadline or a
 * pipeline failed.
 */
export async function runLeased(options: LeasedRunOptions): Promise<number> {
  const { pipelines, daemon, log } = options;
  const first = pipelines[0] as KafkaPipeline;
  const lease = leaseOf(first);
  for (const p of pipelines) {
    // kafkajs' default where a pipeline built in code has none.
    const data = p.source.sessionTimeoutMs ?? 30_000;
    if (data > lease.sessionTimeoutMs) log.warn(`pipeline ${p.name}: source.sessionTimeoutMs (${data}) is above lease.sessionTimeoutMs (${lease.sessionTimeoutMs}): after a crash its successor waits the longer one for the dead member to leave the data group`);
  }
  const metrics = new PerPipelineMetrics(daemon.metrics.maxTasks);
  const connection = new KafkaConnection({ brokers: first.source.brokers, clientId: `lifelong-lease-${os.hostname()}-${process.pid}`, ssl: first.source.ssl, sasl: first.source.sasl, log });
  const group = new LeaseGroup(connection, { groupId: options.groupId, topics: pipelines.map((p) => leaseTopicFor(p.name)), sessionTimeoutMs: lease.sessionTimeoutMs, heartbeatIntervalMs: lease.heartbeatIntervalMs, log });
  const byName = new Map(pipelines.map((p) => [p.name, p]));
  const supervisor = new LeasedPipelines({
    pipelines: pipelines.map((p): LeasedPipeline => ({ name: p.name, leaseTopic: leaseTopicFor(p.name), store: () => options.durable(p).store, handoverTimeoutMs: p.source.shutdownTimeoutMs })),
    leases: group,
    log,
    train: async (leased, store, signal) => {
      const pipeline = byName.get(leased.name) as KafkaPipeline;
      try {
        const report = await runPipeline({ pipeline, backend: options.backend, metrics: metrics.startRun(pipeline.name), log, signal, durable: { ...options.durable(pipeline), store } });
        log.info(`pipeline ${pipeline.name} stopped here: ${report.tasks.length} tasks, model version ${report.modelVersion}`);
      } finally {
        metrics.endRun(pipeline.name);
      }
    },
  });
  let server: MetricsServer | undefined;
  if (daemon.metrics.enabled) {
    server = new MetricsServer({ metrics, health: () => ({ healthy: true, details: { pipelines: supervisor.active(), leaseGroup: options.groupId } }) });
    const port = await server.start(daemon.metrics.host, daemon.metrics.port);
    log.info(`metrics on http://${daemon.metrics.host}:${port}/metrics`);
  }
  // The pipelines stop side by side; leaving the group comes after.
  const stop = new GracefulStop(Math.max(...pipelines.map((p) => p.source.shutdownTimeoutMs)) + lease.sessionTimeoutMs, log);
  stop.signal.addEventListener('abort', () => void supervisor.stop(), { once: true });
  try {
    log.info(`waiting for the leases of ${pipelines.map((p) => p.name).join(', ')} (group ${options.groupId})`);
    await supervisor.start();
    await Promise.race([supervisor.done, stop.gaveUp]);
    log.info('stopped: every pipeline held here finished its batch in hand, wrote a checkpoint, committed and released its lease');
    return EXIT_CODES.success;
  } finally {
    stop.dispose();
    await server?.close();
    await connection.disconnect().catch((error: Error) => log.warn(error.message));
  }
}
