import type { Sample, SourceItem, TaskName } from '../core/types';
import type { SourcePositions, TaskRegistryState } from './checkpoints';

/** What the engine gives a source when it opens it. */
export interface SourceContext {
  /**
   * A message that could not become a Sample (bad JSON, wrong length, NaN...). The source has
   * already dead-lettered it where it can; this counts it (lifelong_samples_total{kind="rejected"}).
   */
  reject(task: TaskName | undefined, reason: string, detail: string): void;
  log(message: string): void;
  /**
   * The engine writes durable checkpoints: commit (Kafka offsets) only what checkpointed() says
   * a checkpoint covers, never merely what was acknowledged.
   */
  readonly commitsFollowCheckpoints?: boolean;
}

/** Where a restored checkpoint left the source. */
export interface SourceResume extends TaskRegistryState {
  readonly positions: SourcePositions;
}

/**
 * Where samples come from: an embedded dataset stream or, later, Kafka.
 *
 * Pull-based on purpose: the engine asks for the next sample only when it has capacity, so a
 * source is never read faster than training consumes it (see operators/pull-source.ts).
 */
export interface Source {
  /** A short human-readable description, e.g. "split-mnist(5 tasks)". */
  readonly description: string;
  /**
   * True for endless live sources (Kafka): a partial micro-batch is flushed after
   * training.batchTimeoutMs. Finite embedded streams never wait, so their batches stay
   * deterministic.
   */
  readonly live?: boolean;
  /** Number of features per sample. */
  readonly inputSize: number;
  /**
   * The samples, in stream order, with end-of-task markers where the source knows a task ended
   * (a control message, an idle timeout). Finite for embedded sources, endless for Kafka.
   */
  open(context: SourceContext): AsyncIterator<SourceItem>;
  /**
   * Held-out evaluation samples of a task, where the source has a test split (embedded MNIST).
   * When absent the engine holds out labelled samples of the stream itself.
   */
  probe?(task: TaskName, size: number): readonly Sample[] | undefined;
  /** How many training samples a task will bring, where known (embedded sources): for progress bars. */
  expectedSamples?(task: TaskName): number | undefined;
  /** Tasks known before the stream starts (embedded sources), for forward-transfer baselines. */
  knownTasks?(): readonly TaskName[];
  /** Samples fully processed (trained, scored or predicted); Kafka commits their offsets. */
  acknowledge?(samples: readonly Sample[]): Promise<void>;
  /**
   * Where the source stands now, covering every item it has yielded (and every record it skipped
   * on the way). Sources without it are not resumed: a finite embedded stream is replayed instead.
   */
  positions?(): SourcePositions;
  /** A checkpoint covering `positions` is durable: the source may commit up to them. */
  checkpointed?(positions: SourcePositions): Promise<void>;
  /** Before open(): go on from a checkpoint, reading from its positions with its tasks as they stood. */
  resume?(state: SourceResume): void;
  /** Safe to call twice. */
  close(): Promise<void>;
}
