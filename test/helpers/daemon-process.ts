import * as assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { Kafka, logLevel, type KafkaMessage } from 'kafkajs';
import { parseExposition, type Series } from './exposition';
import { freePort } from './ports';

/** `lifelong` daemons as child processes (the real CLI), for the tests that stop, kill and restart them. */

const MAIN = path.resolve(__dirname, '../../src/cli/main.js');

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` every 100 ms until it returns a value; its errors only say why it timed out. */
export async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await sleep(100);
  }
}

export async function scrape(port: number): Promise<Series[]> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(res.status, 200);
  return parseExposition(await res.text());
}

export interface Daemon {
  readonly port: number;
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  stderr(): string;
}

/** Every daemon started, so that none outlives a failed test: killAll() in afterEach. */
const started: ChildProcess[] = [];

/** `lifelong <args> --metrics-port P` in a child process; `env` adds to the environment (LIFELONG_TRAINED_LOG...). */
export async function startDaemon(args: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<Daemon> {
  const port = await freePort();
  const child = spawn(process.execPath, ['-e', `require(${JSON.stringify(MAIN)}).main(process.argv.slice(1)).then((c) => { process.exitCode = c; setTimeout(() => process.exit(c), 2000).unref(); })`, ...args, '--metrics-port', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, LIFELONG_BACKEND: process.env.LIFELONG_TEST_BACKEND ?? 'auto', LIFELONG_LOG_LEVEL: 'info', ...env },
  });
  started.push(child);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { port, child, exited, stderr: () => stderr };
}

export function killAll(): void {
  for (const child of started.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

export async function stop(daemon: Daemon, signal: NodeJS.Signals): Promise<number | null> {
  daemon.child.kill(signal);
  return daemon.exited;
}

/** Every message of the topics from the beginning, until `enough` holds for them. */
export async function readTopics(brokers: string[], topics: readonly string[], enough: (got: readonly { topic: string; message: KafkaMessage }[]) => boolean): Promise<{ topic: string; message: KafkaMessage }[]> {
  const kafka = new Kafka({ brokers, clientId: 'reader', logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `reader-${Math.random().toString(36).slice(2)}`, maxWaitTimeInMs: 200 });
  const got: { topic: string; message: KafkaMessage }[] = [];
  await consumer.connect();
  try {
    for (const topic of topics) await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({ eachMessage: async ({ topic, message }) => void got.push({ topic, message }) });
    await until(`the messages of ${topics.join(', ')}`, async () => (enough(got) ? true : undefined), 60_000);
    await sleep(500);
  } finally {
    await consumer.disconnect();
  }
  return got;
}

/** Creates `topic` with `partitions` partitions (the partitions bound how many group members share it). */
export async function createTopic(brokers: string[], topic: string, partitions: number): Promise<void> {
  const admin = new Kafka({ brokers, clientId: `${topic}-admin`, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: partitions }] });
  } finally {
    await admin.disconnect();
  }
}
