import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { collectProcessMetrics, TRAINING_STEP_BUCKETS_SECONDS } from './prometheus';

/** Publishing a snapshot and swapping one in take about a millisecond (a tiny MLP) to seconds (a wide Progressive net). */
const SNAPSHOT_BUCKETS_SECONDS = [...TRAINING_STEP_BUCKETS_SECONDS, 30];

/** The trainer's model snapshots for prediction replicas (README "Scaling"), on the run's registry. */
export class SnapshotPublishMetrics {
  private readonly published: Histogram<string>;
  private readonly failures: Counter<string>;
  private readonly version: Gauge<string>;
  private readonly bytes: Gauge<string>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.published = new Histogram({ name: 'lifelong_snapshot_publish_seconds', help: 'Time to publish one model snapshot (chunks and manifest) to the snapshot topic; its count is the snapshots published.', buckets: SNAPSHOT_BUCKETS_SECONDS, registers });
    this.failures = new Counter({ name: 'lifelong_snapshot_publish_failures_total', help: 'Snapshot publishes that failed (logged; the next trigger publishes a newer one).', registers });
    this.version = new Gauge({ name: 'lifelong_snapshot_version', help: 'Model version of the last snapshot published.', registers });
    this.bytes = new Gauge({ name: 'lifelong_snapshot_bytes', help: 'Size of the last snapshot published, bytes.', registers });
    this.version.remove();
    this.bytes.remove();
  }

  observePublished(version: number, bytes: number, seconds: number): void {
    this.published.observe(seconds);
    this.version.set(version);
    this.bytes.set(bytes);
  }

  countFailure(): void {
    this.failures.inc();
  }
}

/** A prediction replica's /metrics (`lifelong serve`): the model it serves, what it answered, its swaps. */
export class ReplicaMetrics {
  readonly registry = new Registry();
  private readonly modelVersion: Gauge<string>;
  private readonly answered: Counter<'model_version_known'>;
  private readonly rejections: Counter<'reason'>;
  private readonly swaps: Histogram<string>;
  private readonly unusable: Counter<string>;

  constructor(options: { readonly defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.modelVersion = new Gauge({ name: 'lifelong_model_version', help: 'Model version of the snapshot this replica serves (0: none loaded yet).', registers });
    this.answered = new Counter({ name: 'lifelong_requests_answered_total', help: "Prediction requests answered; model_version_known=\"false\" before any snapshot was loaded (null labels).", labelNames: ['model_version_known'] as const, registers });
    this.rejections = new Counter({ name: 'lifelong_rejections_total', help: 'Requests dead-lettered, by reason (bad-json, labelled-request...).', labelNames: ['reason'] as const, registers });
    this.swaps = new Histogram({ name: 'lifelong_model_swap_seconds', help: 'Time to load one snapshot (decode, build, import) and swap it in; its count is the swaps.', buckets: SNAPSHOT_BUCKETS_SECONDS, registers });
    this.unusable = new Counter({ name: 'lifelong_snapshots_unusable_total', help: 'Snapshots never loaded: incomplete, corrupt, or refused by the strategy.', registers });
    if (options.defaultMetrics ?? true) collectProcessMetrics(this.registry);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  countAnswered(requests: number, modelVersion: number | undefined): void {
    this.answered.inc({ model_version_known: String(modelVersion !== undefined) }, requests);
  }

  countRejection(reason: string): void {
    this.rejections.inc({ reason });
  }

  observeSwap(modelVersion: number, seconds: number): void {
    this.modelVersion.set(modelVersion);
    this.swaps.observe(seconds);
  }

  countUnusable(): void {
    this.unusable.inc();
  }
}
