import { freePort } from './ports';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
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
