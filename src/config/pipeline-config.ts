/**
 * A pipeline file (pipelines/*.json) says what to learn: the stream, the scenario, the model,
 * the continual-learning strategy, and how to train and evaluate.
 *
 * `source` is a union keyed by `type`. convict cannot validate unions, so the main schema takes
 * `source` as an object and SOURCE_SECTIONS validates it, with convict again, once its type is
 * known. Adding a source type = one interface in SourceConfig plus one entry in SOURCE_SECTIONS
 * (the compiler insists on the entry).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type convict from 'convict';
import { DEFAULT_MAX_ABS_FEATURE, TASK_FROM, type TaskFrom } from '../core/sample-limits';
import { SCENARIOS, type Scenario } from '../core/types';
import { builtinStrategies } from '../strategies/registry';
import { DRIFT_DEFAULTS, type ConceptDriftSettings } from '../metrics/concept-drift';
import { PAGE_HINKLEY_MODES } from '../metrics/page-hinkley';
import { configErrorFor, type ConfigIssue } from './config-issue';
import { formats } from './formats';
import { isPlainObject, render } from './json-value';
import { resolveSasl, resolveTls } from './kafka-security';
import { checkModuleDir, DEFAULT_MODULE_DIRS } from './module-dirs';
import { readJsonObject } from './read-json-object';
import { resolveConfig } from './resolve-config';

// ---------------------------------------------------------------------------------------------
// Sources.

/** Split MNIST: digits in pairs (0/1, 2/3, ...), one pair per task. */
export interface SplitMnistSourceConfig {
  readonly type: 'split-mnist';
  /** 1 to 5. */
  readonly tasks: number;
  /** Training samples streamed per task; 0 = all of them (about 12000). */
  readonly samplesPerTask: number;
}

/** Permuted MNIST: every task is all ten digits under its own fixed pixel permutation. */
export interface PermutedMnistSourceConfig {
  readonly type: 'permuted-mnist';
  readonly tasks: number;
  /** Training samples streamed per task; 0 = all 60000. */
  readonly samplesPerTask: number;
}

/** Rotated MNIST: every task is all ten digits rotated by its own angle. */
export interface RotatedMnistSourceConfig {
  readonly type: 'rotated-mnist';
  readonly tasks: number;
  /** Training samples streamed per task; 0 = all 60000. */
  readonly samplesPerTask: number;
  /**
   * Degrees, one per task (always `tasks` long once loaded). Left empty in the file, the tasks
   * are spread evenly over [0, 180): angle of task i = i * 180 / tasks.
   */
  readonly angles: readonly number[];
}

/**
 * Kafka: every topic matching `topicPattern` is a task, learned in order of first message (README
 * "Running against Kafka"). Predictions go to `predictionsTopic` ('{topic}' is the input topic),
 * rejected messages to `deadLetterTopic` with the reason in a header.
 */
export interface KafkaSourceConfig {
  readonly type: 'kafka';
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly groupId: string;
  /** A JavaScript regular expression, matched against the whole topic name. */
  readonly topicPattern: string;
  /** How often the topic list is polled for new task topics, in ms. */
  readonly topicDiscoveryMs: number;
  /** Features per message (the model's input size). */
  readonly inputSize: number;
  readonly maxMessageBytes: number;
  /** Features beyond ±this are dead-lettered (feature-out-of-range). */
  readonly maxAbsFeature: number;
  /** 'topic': the topic is the task, a lifelong-task header naming another is dead-lettered; 'header': the header may name the task. */
  readonly taskFrom: TaskFrom;
  readonly deadLetterTopic: string;
  readonly predictionsTopic: string;
  /** Topic of task-agnostic prediction requests; '' for none. */
  readonly requestTopic: string;
  /** End the current task after this long without one of its messages; 0 = never. */
  readonly idleTaskMs: number;
  /** A new consumer group starts at the beginning of the topics (true) or at their end. */
  readonly fromBeginning: boolean;
  /**
   * TLS: false, true (the system's CAs), or options (config/kafka-security.ts: ca/cert/key as PEM
   * or caFile/certFile/keyFile, made absolute here; passphrase, servername, rejectUnauthorized).
   */
  readonly ssl: Readonly<Record<string, unknown>> | boolean;
  /** SASL: {mechanism, username, password} (a passwordEnv is read into password here); empty for none. */
  readonly sasl: Readonly<Record<string, unknown>>;
  /** How long a graceful shutdown may take to finish, commit and flush before it fails, in ms. */
  readonly shutdownTimeoutMs: number;
  /** Longest a fetch waits for data, ms: also how soon a resumed task topic is read (task switches). */
  readonly maxWaitTimeMs: number;
  /** Records held between Kafka and the engine before fetching pauses (it resumes below half). */
  readonly maxQueued: number;
  /** Processed offsets are committed at most this often, ms (0: after every step). */
  readonly commitIntervalMs: number;
  /**
   * The consumer group's session timeout, ms (default 30000): after a crash, the restarted daemon
   * waits up to this long for the broker to drop the dead member before it reads again. Set by
   * loadPipelineConfig; the default where a config built in code has none.
   */
  readonly sessionTimeoutMs?: number;
}

export type SourceConfig = SplitMnistSourceConfig | PermutedMnistSourceConfig | RotatedMnistSourceConfig | KafkaSourceConfig;
export type SourceType = SourceConfig['type'];

type SourceFields<T extends SourceType> = Omit<Extract<SourceConfig, { type: T }>, 'type'>;

interface SourceSection<T extends SourceType> {
  readonly schema: convict.Schema<SourceFields<T>>;
  /** Cross-key checks and derived values, once every key is valid on its own. */
  readonly complete?: (fields: SourceFields<T>, issues: ConfigIssue[]) => SourceFields<T>;
}

const tasksField = (fallback: number, max?: number) => ({
  doc: 'Number of tasks in the stream.',
  format: formats.integer(max === undefined ? { min: 1 } : { min: 1, max }),
  default: fallback,
});
const samplesPerTaskField = {
  doc: 'Training samples streamed per task; 0 streams all of them.',
  format: formats.integer({ min: 0 }),
  default: 0,
};

/** Kafka's legal topic characters; '{topic}' is allowed for templates. */
const TOPIC_NAME = /^[a-zA-Z0-9._{}-]+$/;

/** The schema of each source type, validated after `type` is known. */
const SOURCE_SECTIONS: { readonly [T in SourceType]: SourceSection<T> } = {
  'split-mnist': {
    schema: { tasks: tasksField(5, 5), samplesPerTask: samplesPerTaskField },
  },
  'permuted-mnist': {
    schema: { tasks: tasksField(10), samplesPerTask: samplesPerTaskField },
  },
  kafka: {
    schema: {
      brokers: { doc: 'Bootstrap brokers, host:port.', format: formats.stringList({ minLength: 1, pattern: /^[^\s:]+:\d+$/, expects: 'a non-empty array of "host:port" strings' }), default: ['127.0.0.1:9092'] },
      clientId: { doc: 'Kafka client id.', format: formats.string({ pattern: /^.+$/, expects: 'a non-empty string' }), default: 'lifelong' },
      groupId: { doc: 'Consumer group; a restart with the same group resumes after the committed offsets.', format: formats.string({ pattern: /^.+$/, expects: 'a non-empty string' }), default: 'lifelong' },
      topicPattern: { doc: 'Regular expression matched against whole topic names: each matching topic is a task.', format: formats.string({ pattern: /^.+$/, expects: 'a non-empty regular expression' }), default: '' },
      topicDiscoveryMs: { doc: 'Polling interval for new topics, ms.', format: formats.integer({ min: 100 }), default: 5000 },
      inputSize: { doc: 'Features per message.', format: formats.integer({ min: 1 }), default: 784 },
      maxMessageBytes: { doc: 'Larger messages are dead-lettered.', format: formats.integer({ min: 16 }), default: 1048576 },
      maxAbsFeature: { doc: 'Messages with a feature beyond ±this are dead-lettered (feature-out-of-range); the default keeps float32 products and squares finite.', format: formats.number({ above: 0, max: 3.4e38 }), default: DEFAULT_MAX_ABS_FEATURE },
      taskFrom: { doc: "'topic': each topic is a task, and a lifelong-task header naming another is dead-lettered (task-not-allowed); 'header': the header may name any task.", format: formats.oneOf(TASK_FROM), default: 'topic' },
      deadLetterTopic: { doc: 'Where rejected messages go, with the reason in a header.', format: formats.string({ pattern: TOPIC_NAME, expects: 'a Kafka topic name' }), default: 'lifelong.dead-letter' },
      predictionsTopic: { doc: "Where predictions go; '{topic}' is the input topic.", format: formats.string({ pattern: TOPIC_NAME, expects: "a Kafka topic name, '{topic}' allowed" }), default: '{topic}.predictions' },
      requestTopic: { doc: "Topic of task-agnostic prediction requests; '' for none.", format: formats.string({ pattern: /^[a-zA-Z0-9._-]*$/, expects: "a Kafka topic name or ''" }), default: '' },
      idleTaskMs: { doc: 'End the current task after this long without its messages; 0 = never.', format: formats.integer({ min: 0 }), default: 0 },
      fromBeginning: { doc: 'A new group starts at the beginning of the topics.', format: formats.boolean(), default: true },
      ssl: { doc: 'TLS: true, or {caFile, certFile, keyFile, ca, cert, key, passphrase, servername, rejectUnauthorized}; false for plaintext.', format: formats.objectOrBoolean(), default: false },
      sasl: { doc: 'SASL: {mechanism: plain|scram-sha-256|scram-sha-512, username, password or passwordEnv}; {} for none.', format: formats.object(), default: {} },
      shutdownTimeoutMs: { doc: 'Deadline of a graceful shutdown (finish, commit, flush), ms.', format: formats.integer({ min: 100 }), default: 15000 },
      maxWaitTimeMs: { doc: 'Longest a fetch waits for data, ms (also the delay before a resumed topic is read).', format: formats.integer({ min: 10 }), default: 100 },
      maxQueued: { doc: 'Records held before fetching pauses.', format: formats.integer({ min: 1 }), default: 1000 },
      commitIntervalMs: { doc: 'Processed offsets are committed at most this often, ms; 0 after every step.', format: formats.integer({ min: 0 }), default: 1000 },
      sessionTimeoutMs: { doc: "Consumer group session timeout, ms: how long a restart after a crash may wait for the dead member to be dropped (the broker's group.min.session.timeout.ms, 6000 by default, is the floor).", format: formats.integer({ min: 1000 }), default: 30000 },
    },
    complete(fields, issues) {
      try {
        new RegExp(`^(?:${fields.topicPattern})$`);
      } catch (error) {
        issues.push({ key: 'source.topicPattern', problem: `is not a valid regular expression: ${(error as Error).message}` });
      }
      return fields;
    },
  },
  'rotated-mnist': {
    schema: {
      tasks: tasksField(5),
      samplesPerTask: samplesPerTaskField,
      angles: { doc: 'Degrees per task; empty spreads them over [0, 180).', format: formats.numberList(), default: [] },
    },
    complete(fields, issues) {
      if (fields.angles.length === 0) {
        return { ...fields, angles: Array.from({ length: fields.tasks }, (_, i) => (i * 180) / fields.tasks) };
      }
      if (fields.angles.length !== fields.tasks) {
        issues.push({
          key: 'source.angles',
          problem: `must give one angle per task (tasks is ${fields.tasks}), got ${fields.angles.length}`,
        });
      }
      return fields;
    },
  },
};

export const SOURCE_TYPES = Object.keys(SOURCE_SECTIONS) as readonly SourceType[];

function isSourceType(value: unknown): value is SourceType {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(SOURCE_SECTIONS, value);
}

function resolveSourceSection<T extends SourceType>(
  type: T,
  values: Record<string, unknown>,
  issues: ConfigIssue[],
): SourceConfig | undefined {
  const section = SOURCE_SECTIONS[type] as SourceSection<T>;
  const schema = {
    type: { doc: 'Source type.', format: formats.oneOf([type]), default: type },
    ...section.schema,
  } as convict.Schema<SourceFields<T> & { type: T }>;
  // convict reads an object under a key whose default is not one (ssl: false) as undeclared
  // nested keys: it checks `true` in its place, and config/kafka-security.ts the object.
  const tls = type === 'kafka' && isPlainObject(values.ssl) ? values.ssl : undefined;
  const resolved = resolveConfig(schema, { file: tls === undefined ? values : { ...values, ssl: true } }, 'source');
  issues.push(...resolved.issues);
  if (resolved.value === undefined) return undefined;
  const { type: _type, ...fields } = tls === undefined ? resolved.value : { ...resolved.value, ssl: tls };
  const completed = section.complete ? section.complete(fields as SourceFields<T>, issues) : fields;
  return { type, ...completed } as unknown as SourceConfig;
}

function resolveSource(values: unknown, issues: ConfigIssue[]): SourceConfig | undefined {
  if (values === undefined) {
    issues.push({ key: 'source', problem: `is required: it must be an object with a "type"` });
    return undefined;
  }
  if (!isPlainObject(values)) return undefined; // already reported by the main schema
  const type = values.type;
  if (!isSourceType(type)) {
    const allowed = SOURCE_TYPES.map((t) => JSON.stringify(t)).join(', ');
    issues.push({
      key: 'source.type',
      problem:
        type === undefined
          ? `is required: it must be one of ${allowed}`
          : `must be one of ${allowed}, got ${render(type)}`,
    });
    return undefined;
  }
  return resolveSourceSection(type, values, issues);
}

// ---------------------------------------------------------------------------------------------
// The pipeline.

export const OPTIMIZERS = ['adam', 'sgd'] as const;
export type Optimizer = (typeof OPTIMIZERS)[number];

export interface ModelConfig {
  /** Hidden layer sizes of the MLP trunk, e.g. [400, 400]; never empty. */
  readonly hiddenLayers: readonly number[];
  /**
   * Output units each head starts with: an initial capacity, not a limit (a head grows a unit per
   * new label). 0 or absent = as many as an embedded source has classes per task; none for Kafka,
   * whose heads start empty and grow.
   */
  readonly outputUnits?: number;
  /** Hard cap on the classes of one head: samples of a label beyond it are refused ('label-capacity') and dead-lettered. 0 or absent = none. */
  readonly maxClasses?: number;
}

export interface StrategyConfig {
  /** A registered strategy (finetune, l2, ewc, online-ewc...) or the name of a module's strategy. */
  readonly name: string;
  /** Absolute path of a user's JS module exporting a strategy factory; absent for built-ins. */
  readonly module?: string;
  /** Hyperparameters, validated by the strategy itself. */
  readonly params: Readonly<Record<string, unknown>>;
}

export interface TrainingConfig {
  readonly batchSize: number;
  readonly optimizer: Optimizer;
  readonly learningRate: number;
  /** Gradient steps taken on each micro-batch (the stream is seen once). */
  readonly stepsPerBatch: number;
  /** A partial micro-batch is trained on after waiting this long for more samples. */
  readonly batchTimeoutMs: number;
}

export interface EvaluationConfig {
  /** Held-out samples per task used to measure accuracy after each task. */
  readonly probeSize: number;
  /** Without a test split, every holdoutEvery-th labelled sample is held out for the probe. */
  readonly holdoutEvery: number;
  /**
   * Labelled samples of a task that has ended (the task is learned once): 'evaluate' scores them,
   * moving that task's live accuracy; 'ignore' counts them as rejected.
   */
  readonly endedTaskLabelled: 'evaluate' | 'ignore';
}

/**
 * Durable checkpoints of a daemon reading Kafka (README "Durability"). A finite embedded stream
 * is not checkpointed: rerunning it replays it exactly.
 */
export interface CheckpointConfig {
  /**
   * Where the pipeline's checkpoints go; '' = `checkpoints/<pipeline name>` under the working
   * directory (LIFELONG_CHECKPOINT_DIRECTORY replaces `checkpoints`). In a container, a volume.
   */
  readonly directory: string;
  /** Samples between two checkpoints; 0 = not by count (task ends and a graceful stop still write one). */
  readonly everySamples: number;
  /** Seconds between two checkpoints while samples flow; 0 = not on a timer. */
  readonly everySeconds: number;
  /** Checkpoints kept, the newest; a corrupt newest one falls back to the next. */
  readonly keep: number;
}

/** The checkpoint section of a pipeline file that has none. */
export const CHECKPOINT_DEFAULTS: CheckpointConfig = { directory: '', everySamples: 5000, everySeconds: 60, keep: 3 };

/**
 * A standby trainer (README "Scaling"): the pipeline runs only while this daemon holds its lease,
 * partition 0 of the topic `lifelong.lease.<name>`, through a Kafka consumer group of every
 * daemon started on the pipeline. `lifelong run --pipelines DIR` always leases, and takes these
 * timings from its pipelines (they must agree).
 */
export interface LeaseConfig {
  /** `lifelong run --pipeline FILE` waits for the lease before it trains (a standby). */
  readonly enabled: boolean;
  /** How long a dead holder keeps the lease before the group gives it to a standby (the broker's floor is 6000). */
  readonly sessionTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
}

/** The lease section of a pipeline file that has none. */
export const LEASE_DEFAULTS: LeaseConfig = { enabled: false, sessionTimeoutMs: 10_000, heartbeatIntervalMs: 3000 };

/** Who answers prediction requests (README "Scaling"): the trainer itself, or `lifelong serve` replicas. */
export type Serving = 'trainer' | 'replicas';
export const SERVING: readonly Serving[] = ['trainer', 'replicas'];

/**
 * Model snapshots the trainer publishes for prediction replicas (README "Scaling"), on a compacted
 * Kafka topic: after every task end, and with the first checkpoint after `everySamples` trained
 * samples. Off (topic '') unless set: a single daemon needs none.
 */
export interface SnapshotsConfig {
  /** The compacted topic snapshots go to; '' = none published. */
  readonly topic: string;
  /** Trained samples after which the next checkpoint also publishes a snapshot; 0 = at task ends only. */
  readonly everySamples: number;
  /** Largest chunk of a snapshot, bytes: keep it below the topic's max.message.bytes (1 MiB by default). */
  readonly chunkBytes: number;
}

/** The snapshot section of a pipeline file that has none: no snapshots. */
export const SNAPSHOTS_DEFAULTS: SnapshotsConfig = { topic: '', everySamples: 5000, chunkBytes: 512 * 1024 };

/** Prediction replicas (`lifelong serve`). */
export interface ReplicasConfig {
  /** The replicas' consumer group on the request topic (`<it>.tasks` on the task topics); '' = `<source.groupId>.replicas`. */
  readonly groupId: string;
}

export const REPLICAS_DEFAULTS: ReplicasConfig = { groupId: '' };

export interface PipelineConfig {
  /** Lower-case letters, digits and '-'; used in metric labels and file names. */
  readonly name: string;
  /** '' when the file has none. */
  readonly description: string;
  readonly seed: number;
  readonly scenario: Scenario;
  readonly source: SourceConfig;
  readonly model: ModelConfig;
  readonly strategy: StrategyConfig;
  readonly training: TrainingConfig;
  readonly evaluation: EvaluationConfig;
  /** Always set by loadPipelineConfig; CHECKPOINT_DEFAULTS where a pipeline built in code has none. */
  readonly checkpoint?: CheckpointConfig;
  /** Concept, input and label drift (README "Concept drift"). Always set by loadPipelineConfig; DRIFT_DEFAULTS where a pipeline built in code has none. */
  readonly drift?: ConceptDriftSettings;
  /** Always set by loadPipelineConfig; LEASE_DEFAULTS where a pipeline built in code has none. */
  readonly lease?: LeaseConfig;
  /** Always set by loadPipelineConfig; 'trainer' where a pipeline built in code has none. */
  readonly serving?: Serving;
  /** Always set by loadPipelineConfig; SNAPSHOTS_DEFAULTS (none) where a pipeline built in code has none. */
  readonly snapshots?: SnapshotsConfig;
  /** Always set by loadPipelineConfig; REPLICAS_DEFAULTS where a pipeline built in code has none. */
  readonly replicas?: ReplicasConfig;
}

/** The file's shape before the source is resolved and the module path made absolute. */
type PipelineFile = Omit<PipelineConfig, 'source' | 'strategy' | 'checkpoint' | 'drift' | 'lease' | 'serving' | 'snapshots' | 'replicas'> & {
  readonly checkpoint: CheckpointConfig;
  readonly lease: LeaseConfig;
  readonly serving: Serving;
  readonly snapshots: SnapshotsConfig;
  readonly replicas: ReplicasConfig;
  readonly drift: ConceptDriftSettings;
  readonly source: Record<string, unknown>;
  readonly strategy: Omit<StrategyConfig, 'module'> & { readonly module: string };
};

const NAME = { pattern: /^[a-z0-9-]{1,64}$/, expects: "1 to 64 of a-z, 0-9 and '-'" };

const PIPELINE_SCHEMA: convict.Schema<PipelineFile> = {
  name: { doc: 'Pipeline name.', format: formats.string(NAME), default: null },
  description: { doc: 'What the pipeline shows, for people.', format: formats.string(), default: '' },
  seed: { doc: 'Seed of every random choice.', format: formats.integer(), default: 1 },
  scenario: { doc: 'Continual-learning scenario.', format: formats.oneOf(SCENARIOS), default: null },
  // Validated per type by SOURCE_SECTIONS; `Object` (not a function) so that convict keeps
  // nested values whole.
  source: { doc: 'Where samples come from; keyed by "type".', format: Object, default: {} },
  model: {
    hiddenLayers: {
      doc: 'Hidden layer sizes of the MLP.',
      format: formats.integerList({ min: 1, minLength: 1 }),
      default: [400, 400],
    },
    outputUnits: {
      doc: 'Output units each head starts with (heads grow a unit per new label); 0 = from an embedded source, none for Kafka.',
      format: formats.integer({ min: 0 }),
      default: 0,
    },
    maxClasses: {
      doc: 'Most classes one head may learn; samples of further labels are refused and dead-lettered. 0 = no cap.',
      format: formats.integer({ min: 0 }),
      default: 0,
    },
  },
  strategy: {
    name: { doc: 'Strategy name.', format: formats.string(NAME), default: null },
    module: {
      doc: "Path of a JS module exporting a strategy factory, relative to the pipeline file; '' for a built-in.",
      format: formats.string(),
      default: '',
    },
    params: { doc: 'Strategy hyperparameters, validated by the strategy.', format: Object, default: {} },
  },
  training: {
    batchSize: { doc: 'Samples per micro-batch.', format: formats.integer({ min: 1 }), default: 128 },
    optimizer: { doc: 'Optimizer.', format: formats.oneOf(OPTIMIZERS), default: 'adam' },
    learningRate: { doc: 'Learning rate.', format: formats.number({ above: 0 }), default: 0.001 },
    stepsPerBatch: { doc: 'Gradient steps per micro-batch.', format: formats.integer({ min: 1 }), default: 1 },
    batchTimeoutMs: {
      doc: 'Milliseconds to wait for a micro-batch to fill before training on what arrived.',
      format: formats.integer({ min: 1 }),
      default: 1000,
    },
  },
  evaluation: {
    probeSize: { doc: 'Held-out samples per task for accuracy.', format: formats.integer({ min: 1 }), default: 300 },
    holdoutEvery: {
      doc: 'Without a test split, hold out every n-th labelled sample.',
      format: formats.integer({ min: 1 }),
      default: 10,
    },
    endedTaskLabelled: {
      doc: "Labelled samples of an ended task: 'evaluate' (score them) or 'ignore' (count as rejected).",
      format: formats.oneOf(['evaluate', 'ignore']),
      default: 'evaluate',
    },
  },
  checkpoint: {
    directory: { doc: "Where checkpoints go, relative to the working directory; '' = checkpoints/<pipeline name>.", format: formats.string(), default: CHECKPOINT_DEFAULTS.directory },
    everySamples: { doc: 'Samples between two checkpoints; 0 = not by count.', format: formats.integer({ min: 0 }), default: CHECKPOINT_DEFAULTS.everySamples },
    everySeconds: { doc: 'Seconds between two checkpoints while samples flow; 0 = not on a timer.', format: formats.number({ min: 0 }), default: CHECKPOINT_DEFAULTS.everySeconds },
    keep: { doc: 'Checkpoints kept (the newest).', format: formats.integer({ min: 1 }), default: CHECKPOINT_DEFAULTS.keep },
  },
  lease: {
    enabled: { doc: 'Kafka: run only while holding the pipeline\'s lease (a standby trainer waits for it).', format: formats.boolean(), default: LEASE_DEFAULTS.enabled },
    sessionTimeoutMs: { doc: 'Lease group session timeout, ms: how long a dead holder keeps the lease.', format: formats.integer({ min: 1000 }), default: LEASE_DEFAULTS.sessionTimeoutMs },
    heartbeatIntervalMs: { doc: 'Lease group heartbeat interval, ms (below sessionTimeoutMs).', format: formats.integer({ min: 100 }), default: LEASE_DEFAULTS.heartbeatIntervalMs },
  },
  serving: { doc: "Who answers prediction requests: 'trainer' (lifelong run) or 'replicas' (lifelong serve; the trainer then answers none).", format: formats.oneOf(SERVING), default: 'trainer' },
  snapshots: {
    topic: { doc: "Compacted topic the trainer publishes model snapshots to, for lifelong serve; '' = none.", format: formats.string({ pattern: /^[a-zA-Z0-9._-]*$/, expects: "a Kafka topic name or ''" }), default: SNAPSHOTS_DEFAULTS.topic },
    everySamples: { doc: 'Trained samples after which the next checkpoint also publishes a snapshot; 0 = at task ends only.', format: formats.integer({ min: 0 }), default: SNAPSHOTS_DEFAULTS.everySamples },
    chunkBytes: { doc: "Largest chunk of a snapshot, bytes; below the snapshot topic's max.message.bytes.", format: formats.integer({ min: 1024 }), default: SNAPSHOTS_DEFAULTS.chunkBytes },
  },
  replicas: {
    groupId: { doc: "Consumer group of the prediction replicas; '' = <source.groupId>.replicas.", format: formats.string(), default: REPLICAS_DEFAULTS.groupId },
  },
  drift: {
    detector: { doc: "Detector on each task's prequential error stream: 'adwin', 'page-hinkley' or 'none'.", format: formats.oneOf(['adwin', 'page-hinkley', 'none']), default: DRIFT_DEFAULTS.detector },
    adwin: {
      delta: { doc: 'ADWIN significance of a cut, in (0, 1): smaller detects fewer, surer changes.', format: formats.number({ above: 0, max: 1 }), default: DRIFT_DEFAULTS.adwin.delta },
      clock: { doc: 'ADWIN checks for a change every this many samples.', format: formats.integer({ min: 1 }), default: DRIFT_DEFAULTS.adwin.clock },
      maxBuckets: { doc: 'ADWIN buckets of each size kept before merging.', format: formats.integer({ min: 1 }), default: DRIFT_DEFAULTS.adwin.maxBuckets },
      minWindowLength: { doc: 'ADWIN: shortest side of a cut.', format: formats.integer({ min: 1 }), default: DRIFT_DEFAULTS.adwin.minWindowLength },
      gracePeriod: { doc: 'ADWIN checks nothing before its window holds more than this many samples.', format: formats.integer({ min: 0 }), default: DRIFT_DEFAULTS.adwin.gracePeriod },
    },
    pageHinkley: {
      minInstances: { doc: 'Page-Hinkley reports nothing before this many samples.', format: formats.integer({ min: 1 }), default: DRIFT_DEFAULTS.pageHinkley.minInstances },
      delta: { doc: 'Page-Hinkley: change magnitude tolerated.', format: formats.number({ min: 0 }), default: DRIFT_DEFAULTS.pageHinkley.delta },
      threshold: { doc: 'Page-Hinkley detection threshold (lambda).', format: formats.number({ above: 0 }), default: DRIFT_DEFAULTS.pageHinkley.threshold },
      alpha: { doc: 'Page-Hinkley forgetting factor, in (0, 1].', format: formats.number({ above: 0, max: 1 }), default: DRIFT_DEFAULTS.pageHinkley.alpha },
      mode: { doc: "Page-Hinkley watches rises ('up', of the error: concept drift), falls ('down') or 'both'.", format: formats.oneOf(PAGE_HINKLEY_MODES), default: DRIFT_DEFAULTS.pageHinkley.mode },
    },
    referenceSamples: { doc: "A task's first this-many inputs and labels are the reference of its input and label drift.", format: formats.integer({ min: 2 }), default: DRIFT_DEFAULTS.referenceSamples },
    recentSamples: { doc: 'The recent window compared with the reference.', format: formats.integer({ min: 2 }), default: DRIFT_DEFAULTS.recentSamples },
    taskFree: { doc: 'Task-free mode: within one topic, a confirmed concept drift ends the task and begins <topic>#2, #3...', format: formats.boolean(), default: DRIFT_DEFAULTS.taskFree },
  },
};

const BUILTINS = builtinStrategies();

/** Whether `pattern` matches all of `text`; false for a pattern that is not a regular expression (reported on its own key). */
function matchesWhole(pattern: string, text: string): boolean {
  try {
    return new RegExp(`^(?:${pattern})$`).test(text);
  } catch {
    return false;
  }
}

export interface LoadPipelineOptions {
  /**
   * The directories `strategy.module` may load from (the daemon config's strategies.moduleDirs):
   * '{pipeline}' is the pipeline file's folder, relative paths are against the working directory.
   * Default DEFAULT_MODULE_DIRS.
   */
  readonly moduleDirs?: readonly string[];
}

/**
 * Loads and validates a pipeline file. `strategy.module`, if set, comes back as an absolute path
 * resolved against the file's folder; it must exist under one of `options.moduleDirs`. A Kafka
 * source's `ssl` file paths come back absolute and a `sasl.passwordEnv` read. Throws one
 * ConfigError naming the file and every offending key.
 */
export function loadPipelineConfig(file: string, options: LoadPipelineOptions = {}): PipelineConfig {
  const values = readJsonObject(file, 'pipeline config');
  const resolved = resolveConfig(PIPELINE_SCHEMA, { file: values });
  const issues = [...resolved.issues];
  const folder = path.dirname(path.resolve(file));
  let source = resolveSource(values.source, issues);
  if (source?.type === 'kafka') source = { ...source, ssl: resolveTls(source.ssl, folder, issues), sasl: resolveSasl(source.sasl, issues) };

  // Checked from the file's values so that a missing module is reported with the other problems.
  let module: string | undefined;
  const relative = isPlainObject(values.strategy) ? values.strategy.module : undefined;
  if (typeof relative === 'string' && relative !== '') {
    module = path.resolve(folder, relative);
    if (!fs.existsSync(module)) issues.push({ key: 'strategy.module', problem: `no such file: ${module}` });
    else checkModuleDir(module, options.moduleDirs ?? DEFAULT_MODULE_DIRS, folder, issues);
  }

  // A user's module is not loaded here (that runs its code); run-pipeline checks its descriptor.
  const name = isPlainObject(values.strategy) ? String(values.strategy.name) : undefined;
  const builtin = name !== undefined && module === undefined && BUILTINS.has(name) ? BUILTINS.describe(name) : undefined;
  if (source?.type === 'kafka' && builtin?.capabilities.needsFiniteStream) {
    issues.push({ key: 'strategy.name', problem: `"${name}" keeps every sample of a finite stream: it is a benchmark bound for embedded sources, not for Kafka` });
  }

  const model = resolved.value?.model;
  if (model?.maxClasses && model.outputUnits && model.outputUnits > model.maxClasses) {
    issues.push({ key: 'model.outputUnits', problem: `is ${model.outputUnits}, more than model.maxClasses (${model.maxClasses}): a head never needs more units than classes` });
  }
  const drift = resolved.value?.drift;
  if (drift !== undefined && drift.adwin.delta >= 1) issues.push({ key: 'drift.adwin.delta', problem: `must be below 1, got ${drift.adwin.delta}` });
  const lease = resolved.value?.lease;
  if (lease !== undefined && lease.heartbeatIntervalMs >= lease.sessionTimeoutMs) issues.push({ key: 'lease.heartbeatIntervalMs', problem: `must be below lease.sessionTimeoutMs (${lease.sessionTimeoutMs}), got ${lease.heartbeatIntervalMs}` });
  if (lease?.enabled === true && source !== undefined && source.type !== 'kafka') issues.push({ key: 'lease.enabled', problem: `a lease is taken through Kafka: the source is ${source.type}` });
  if (drift?.taskFree === true && drift.detector === 'none') issues.push({ key: 'drift.taskFree', problem: "needs a detector: drift.detector is 'none'" });

  const snapshots = resolved.value?.snapshots;
  if (snapshots !== undefined && snapshots.topic !== '' && source !== undefined && source.type !== 'kafka') issues.push({ key: 'snapshots.topic', problem: `snapshots go through Kafka: the source is ${source.type}` });
  if (resolved.value?.serving === 'replicas') {
    if (source !== undefined && source.type !== 'kafka') issues.push({ key: 'serving', problem: `'replicas' serves Kafka requests: the source is ${source.type}` });
    else if (snapshots?.topic === '') issues.push({ key: 'snapshots.topic', problem: "must name a topic when serving is 'replicas': the replicas load the model from it" });
  }
  if (snapshots !== undefined && source?.type === 'kafka' && snapshots.topic !== '' && (snapshots.topic === source.requestTopic || snapshots.topic === source.deadLetterTopic || matchesWhole(source.topicPattern, snapshots.topic))) {
    issues.push({ key: 'snapshots.topic', problem: `"${snapshots.topic}" is a task, request or dead-letter topic of this pipeline: give snapshots a topic of their own` });
  }

  if (resolved.value === undefined || source === undefined || issues.length > 0) {
    throw configErrorFor(file, file, issues);
  }
  const { module: _relative, ...strategy } = resolved.value.strategy;
  return {
    ...resolved.value,
    source,
    strategy: module === undefined ? strategy : { ...strategy, module },
  };
}
