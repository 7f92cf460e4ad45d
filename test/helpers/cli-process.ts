import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { freePort } from './ports';

/** The CLI in the build output (dist/ or .build-NAME/), next to these helpers. */
const MAIN = path.resolve(__dirname, '../../src/cli/main.js');

/** A `lifelong` command in a child process, with its metrics on `port`. */
export interface CliProcess {
  readonly port: number;
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  stderr(): string;
}

/** Runs `lifelong COMMAND --pipeline FILE --metrics-port <free port>` with `env` added to this process's. */
export async function startCli(command: string, pipelineFile: string, env: Readonly<Record<string, string>> = {}): Promise<CliProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, ['-e', `require(${JSON.stringify(MAIN)}).main(process.argv.slice(1)).then((c) => { process.exitCode = c; setTimeout(() => process.exit(c), 2000).unref(); })`, command, '--pipeline', pipelineFile, '--metrics-port', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, LIFELONG_BACKEND: process.env.LIFELONG_TEST_BACKEND ?? 'auto', LIFELONG_LOG_LEVEL: 'info', ...env },
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { port, child, exited, stderr: () => stderr };
}

/** Polls `probe` every 100 ms until it gives a value; rejects after `timeoutMs` with the last error. */
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
    await new Promise((r) => setTimeout(r, 100));
  }
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
