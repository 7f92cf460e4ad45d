import type { KafkaSourceConfig } from '../../src/config/pipeline-config';
import { freePort } from './ports';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * Kafka for tests: the brokers in KAFKA_BROKERS (comma-separated) when set, otherwise one real Kafka 4.x
 * broker per test process, started on free ports by scripts/kafka-broker.js (Maven Central jars, no
 * Docker) on first use and stopped by stopKafka() (a mocha root hook in test/setup.ts calls it).
 */

/** What scripts/kafka-broker.js records for a started broker (also in DATA/broker.json). */
export interface BrokerState {
  readonly pid: number;
  readonly bootstrap: string;
  readonly port: number;
  readonly controllerPort: number;
  /** With a SASL_PLAINTEXT (PLAIN) listener. */
  readonly saslBootstrap?: string;
  /** With an SSL listener; its self-signed CA certificate is tlsCaFile. */
  readonly tlsBootstrap?: string;
  readonly tlsCaFile?: string;
  readonly dataDir: string;
  readonly tempData: boolean;
  readonly logFile: string;
  readonly kafkaVersion: string;
}

export interface ApiVersionRange {
  readonly min: number;
  readonly max: number;
}

/** The part of scripts/kafka-broker.js (plain CommonJS, outside the TS build) that tests use. */
export interface BrokerScript {
  readonly KAFKA_VERSION: string;
  startBroker(options: {
    port?: number;
    controllerPort?: number;
    dataDir?: string;
    saslPort?: number;
    saslUsers?: Readonly<Record<string, string>>;
    tlsPort?: number;
    readyTimeoutMs?: number;
    log?: (message: string) => void;
  }): Promise<BrokerState>;
  stopBroker(options: { dataDir: string; timeoutMs?: number }): Promise<{ stopped: boolean; reason: string }>;
  brokerStatus(options: { dataDir: string }): Promise<{ running: boolean; reason: string; state?: BrokerState }>;
  /** Collects the broker's jars into the cache (Maven, once) and returns their directory. */
  ensureJars(log?: (message: string) => void): Promise<string>;
  requestApiVersions(options: { host?: string; port: number; timeoutMs?: number }): Promise<Map<number, ApiVersionRange>>;
}

/** The script's path, found by walking up from here: tests run compiled from dist/ or .build-NAME/. */
export function brokerScriptPath(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'scripts', 'kafka-broker.js');
    if (fs.existsSync(candidate) && fs.existsSync(path.join(dir, 'package.json'))) return candidate;
    if (path.dirname(dir) === dir) throw new Error(`scripts/kafka-broker.js not found above ${__dirname}`);
  }
}

export function brokerScript(): BrokerScript {
  return require(brokerScriptPath()) as BrokerScript;
}


let ownBroker: Promise<BrokerState> | undefined;
let ownBrokerState: BrokerState | undefined;

/** If the process ends without stopKafka() (a crash, a forgotten hook), the broker must not outlive it. */
function killOwnBrokerAtExit(): void {
  const state = ownBrokerState;
  if (state === undefined) return;
  try {
    process.kill(state.pid, 'SIGKILL');
  } catch {
    // already gone
  }
  if (state.tempData) fs.rmSync(state.dataDir, { recursive: true, force: true });
}

async function startOwnBroker(): Promise<BrokerState> {
  const port = await freePort();
  let controllerPort = await freePort();
  while (controllerPort === port) controllerPort = await freePort();
  const state = await brokerScript().startBroker({
    port,
    controllerPort,
    log: (message) => process.stderr.write(`kafka: ${message}\n`),
  });
  ownBrokerState = state;
  process.once('exit', killOwnBrokerAtExit);
  return state;
}

/** KAFKA_BROKERS, split on commas, or undefined when unset or empty. */
export function brokersFromEnv(): string[] | undefined {
  const listed = (process.env['KAFKA_BROKERS'] ?? '')
    .split(',')
    .map((b) => b.trim())
    .filter((b) => b !== '');
  return listed.length > 0 ? listed : undefined;
}

/**
 * Bootstrap addresses for kafkajs. Starts this process's broker on the first call (the first start of
 * a machine downloads the jars: allow minutes); later calls share it. A failed start is remembered so
 * that every test reports it rather than retrying it.
 */
export async function kafkaBrokers(): Promise<string[]> {
  const fromEnv = brokersFromEnv();
  if (fromEnv !== undefined) return fromEnv;
  ownBroker ??= startOwnBroker();
  return [(await ownBroker).bootstrap];
}

/** The broker this process started, if any (for tests that need its pid or data dir). */
export function ownKafkaBroker(): BrokerState | undefined {
  return ownBrokerState;
}

/** Stops the broker that kafkaBrokers() started (no-op otherwise); a later kafkaBrokers() starts a new one. */
export async function stopKafka(): Promise<void> {
  const starting = ownBroker;
  ownBroker = undefined;
  if (starting === undefined) return;
  try {
    await starting;
  } catch {
    return; // it never started, and startBroker cleaned up after itself
  }
  const state = ownBrokerState;
  ownBrokerState = undefined;
  process.removeListener('exit', killOwnBrokerAtExit);
  if (state !== undefined) await brokerScript().stopBroker({ dataDir: state.dataDir });
}

let topicCounter = 0;

/**
 * A topic/group name prefix that no other test, run or process shares: `lt-<name>-<pid>-<n>-<random>`,
 * with characters Kafka does not allow in topic names replaced. Append `-suffix` for each topic.
 */
export function uniqueTopicPrefix(name: string): string {
  topicCounter += 1;
  // '.' and '_' collide in Kafka's metric names, so only '-' separates.
  const safe = name.replace(/[^a-zA-Z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 60) || 'test';
  return `lt-${safe}-${process.pid}-${topicCounter}-${crypto.randomBytes(3).toString('hex')}`;
}

/** Distinct free ports. */
async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

/**
 * A broker of one test file's own, on a data dir it keeps across restarts, so that a test can stop
 * it and start it again (the same data), or wipe it and start a new one on the same addresses (what
 * `npm run kafka:stop` + `kafka:start` do). Optional SASL/PLAIN and TLS listeners. close() stops it
 * and removes the data dir; the process exit kills it if close() was never called.
 */
export class DedicatedBroker {
  private readonly killAtExit = (): void => {
    try {
      process.kill(this.current.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };

  private constructor(
    private current: BrokerState,
    private readonly options: Parameters<BrokerScript['startBroker']>[0] & { dataDir: string },
  ) {
    process.once('exit', this.killAtExit);
  }

  static async start(listeners: { saslUsers?: Readonly<Record<string, string>>; tls?: boolean } = {}): Promise<DedicatedBroker> {
    const [port, controllerPort, saslPort, tlsPort] = await freePorts(4);
    const options = {
      port: port as number,
      controllerPort: controllerPort as number,
      dataDir: fs.mkdtempSync(path.join(os.tmpdir(), 'lifelong-test-broker-')),
      ...(listeners.saslUsers ? { saslPort: saslPort as number, saslUsers: listeners.saslUsers } : {}),
      ...(listeners.tls ? { tlsPort: tlsPort as number } : {}),
      log: (message: string) => process.stderr.write(`kafka (dedicated): ${message}\n`),
    };
    try {
      return new DedicatedBroker(await brokerScript().startBroker(options), options);
    } catch (error) {
      fs.rmSync(options.dataDir, { recursive: true, force: true });
      throw error;
    }
  }

  get state(): BrokerState {
    return this.current;
  }

  get brokers(): string[] {
    return [this.current.bootstrap];
  }

  /** Stops the broker (SIGTERM, a clean shutdown) and starts it again on the same ports: with the same data, or `wipe`d. */
  async restart({ wipe = false, downMs = 0 }: { wipe?: boolean; downMs?: number } = {}): Promise<void> {
    await brokerScript().stopBroker({ dataDir: this.options.dataDir });
    if (wipe) fs.rmSync(path.join(this.options.dataDir, 'kraft-logs'), { recursive: true, force: true });
    if (downMs > 0) await new Promise((resolve) => setTimeout(resolve, downMs));
    this.current = await brokerScript().startBroker(this.options);
  }

  async close(): Promise<void> {
    process.removeListener('exit', this.killAtExit);
    try {
      await brokerScript().stopBroker({ dataDir: this.options.dataDir });
    } finally {
      fs.rmSync(this.options.dataDir, { recursive: true, force: true });
    }
  }
}

/**
 * The Kafka source of the daemon tests: tasks are the topics `<prefix>.split-mnist-D-D`, dead letters
 * go to `<prefix>.dead-letter`, predictions to `<topic>.predictions`; `overrides` set the rest.
 */
export function kafkaSource(brokers: string[], prefix: string, overrides: Partial<KafkaSourceConfig> = {}): KafkaSourceConfig {
  return {
    type: 'kafka',
    brokers,
    clientId: prefix,
    groupId: `${prefix}-group`,
    topicPattern: `${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.split-mnist-\\d-\\d`,
    topicDiscoveryMs: 300,
    inputSize: 784,
    maxMessageBytes: 1024 * 1024,
    maxAbsFeature: 1e6,
    taskFrom: 'topic',
    deadLetterTopic: `${prefix}.dead-letter`,
    predictionsTopic: '{topic}.predictions',
    requestTopic: '',
    idleTaskMs: 0,
    fromBeginning: true,
    ssl: false,
    sasl: {},
    shutdownTimeoutMs: 15_000,
    maxWaitTimeMs: 100,
    maxQueued: 1000,
    commitIntervalMs: 1000,
    ...overrides,
  };
}
