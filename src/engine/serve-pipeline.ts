/**
 * A prediction replica (`lifelong serve`, README "Scaling"): follows the trainer's model snapshots
 * and answers the pipeline's prediction requests in the replicas' consumer group. It never trains.
 */
import { randomBytes } from 'node:crypto';
import * as os from 'node:os';
import { REPLICAS_DEFAULTS, SNAPSHOTS_DEFAULTS, type KafkaSourceConfig, type PipelineConfig, type ReplicasConfig } from '../config/pipeline-config';
import { ConfigError } from '../core/errors';
import { silentLogger, type Logger } from '../core/log';
import { KafkaConnection } from '../kafka/connection';
import { KafkaRequestConsumer } from '../kafka/request-consumer';
import type { SnapshotManifest } from '../kafka/snapshots/snapshot-chunks';
import { KafkaSnapshotFollower } from '../kafka/snapshots/snapshot-follower';
import type { ReplicaMetrics } from '../metrics/snapshot-metrics';
import { builtinStrategies, type StrategyRegistry } from '../strategies/registry';
import type { Strategy } from '../strategies/strategy';
import { decodeCheckpoint } from './checkpoint';
import { kafkaSourceOptions } from './create-source';
import { createStrategy, describeStrategy } from './run-pipeline';
import { ServedModel } from './served-model';

export interface PredictionReplicaOptions {
  readonly pipeline: PipelineConfig;
  readonly registry?: StrategyRegistry;
  readonly metrics?: ReplicaMetrics;
  readonly log?: Logger;
}

/** What /healthz says of a replica. */
export interface ReplicaStatus {
  readonly serving: boolean;
  readonly modelVersion: number | null;
  readonly requestsAnswered: number;
}

/** The replicas' consumer group on the request topic; the task topics are read in `<it>.tasks` (kafka/request-consumer.ts). */
export function replicaGroupId(replicas: ReplicasConfig = REPLICAS_DEFAULTS, source: KafkaSourceConfig): string {
  return replicas.groupId !== '' ? replicas.groupId : `${source.groupId}.replicas`;
}

/**
 * The strategy a snapshot holds, ready to answer: its checksum checked, built as the trainer built
 * it (its strategy name and options; the pipeline's module for a user's strategy), its state imported.
 */
export async function strategyFromSnapshot(bytes: Buffer, label: string, pipeline: PipelineConfig, registry: StrategyRegistry = builtinStrategies()): Promise<Strategy> {
  const checkpoint = decodeCheckpoint(label, bytes);
  const strategy = createStrategy(describeStrategy(pipeline, registry, checkpoint.strategyName), checkpoint.options);
  try {
    await strategy.importState(checkpoint.state);
  } catch (error) {
    strategy.dispose();
    throw error;
  }
  return strategy;
}

export class PredictionReplica {
  private readonly log: Logger;
  private readonly connection: KafkaConnection;
  private readonly model: ServedModel;
  private readonly follower: KafkaSnapshotFollower;
  private readonly requests: KafkaRequestConsumer;
  private readonly groupId: string;
  private answered = 0;
  private started = false;
  private closed: Promise<void> | undefined;

  constructor(private readonly options: PredictionReplicaOptions) {
    const { pipeline } = options;
    const source = pipeline.source;
    if (source.type !== 'kafka') throw new ConfigError(`lifelong serve answers Kafka requests; the pipeline's source is ${source.type}`, undefined, 'source.type');
    const groupId = replicaGroupId(pipeline.replicas, source);
    this.groupId = groupId;
    const snapshots = pipeline.snapshots ?? SNAPSHOTS_DEFAULTS;
    if (snapshots.topic === '') throw new ConfigError(`pipeline ${pipeline.name} has no snapshots.topic: replicas load the model from it (README "Scaling")`, undefined, 'snapshots.topic');
    this.log = options.log ?? silentLogger;
    const kafka = { ...kafkaSourceOptions(source, this.log), groupId };
    this.connection = new KafkaConnection(kafka);
    this.model = new ServedModel(pipeline.scenario === 'task-incremental');
    const metrics = options.metrics;
    this.follower = new KafkaSnapshotFollower(
      {
        topic: snapshots.topic,
        // A group of its own: every replica reads every snapshot.
        groupId: `${groupId}.snapshots.${os.hostname()}.${process.pid}.${randomBytes(4).toString('hex')}`,
        onSnapshot: (manifest, bytes) => this.load(manifest, bytes),
        onUnusable: () => metrics?.countUnusable(),
        maxWaitTimeMs: source.maxWaitTimeMs,
        log: this.log,
      },
      this.connection,
    );
    this.requests = new KafkaRequestConsumer(
      kafka,
      {
        answer: (requests) => this.model.answer(requests),
        onAnswered: (n, version) => {
          this.answered += n;
          metrics?.countAnswered(n, this.model.version === undefined ? undefined : version);
        },
        onRejected: (reason, detail) => {
          metrics?.countRejection(reason);
          this.log.warn(`dead-lettered a request (${reason}): ${detail}`);
        },
      },
      this.connection,
    );
  }

  /** Loads the newest snapshot there is (if any), then starts answering. */
  async start(): Promise<void> {
    await this.follower.start();
    if (this.model.version === undefined) this.log.warn(`no model snapshot on ${(this.options.pipeline.snapshots ?? SNAPSHOTS_DEFAULTS).topic} yet: answering with null labels until the trainer publishes one`);
    await this.requests.start();
    this.started = true;
    this.log.info(`serving ${this.options.pipeline.name} in group ${this.groupId}, model version ${this.model.version ?? 'none'}`);
  }

  status(): ReplicaStatus {
    return { serving: this.started && this.closed === undefined, modelVersion: this.model.version ?? null, requestsAnswered: this.answered };
  }

  /** Finishes the batch in hand (answers out, offsets committed), then disconnects. Safe to call twice. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      const results = await Promise.allSettled([this.requests.close(), this.follower.close()]);
      results.push(...(await Promise.allSettled([this.connection.disconnect()])));
      this.model.dispose();
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    })();
    return this.closed;
  }

  /** Decodes and builds the snapshot's strategy (its checksum checked), then offers it to the served model. */
  private async load(manifest: SnapshotManifest, bytes: Buffer): Promise<void> {
    const t0 = performance.now();
    const strategy = await strategyFromSnapshot(bytes, `snapshot version ${manifest.version}`, this.options.pipeline, this.options.registry);
    this.model.offer({ strategy, version: manifest.version, tasks: manifest.tasks });
    const seconds = (performance.now() - t0) / 1000;
    this.options.metrics?.observeSwap(manifest.version, seconds);
    this.log.info(`serving model version ${manifest.version} (${(bytes.length / 1e6).toFixed(2)} MB, loaded in ${(seconds * 1000).toFixed(0)} ms)`);
  }
}
