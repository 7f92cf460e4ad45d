import * as assert from 'node:assert/strict';
import { produceDataset, type ProducedTopic } from '../../src/cli/produce';
import type { PipelineConfig } from '../../src/config/pipeline-config';
import type { Daemon } from './daemon-process';
import { kafkaSource } from './kafka';

/** Leased pipelines (standby trainers, `run --pipelines DIR`) for the standby test and the failover bench. */

/**
 * A small task-incremental pipeline holding its lease through a group of `sessionTimeoutMs` (its
 * data group's too), checkpointing often, so a successor resumes close to where its holder stopped.
 */
export function leasedPipeline(name: string, brokers: string[], checkpoints: string, sessionTimeoutMs: number): PipelineConfig {
  return {
    name,
    description: 'leased pipeline',
    seed: 3,
    scenario: 'task-incremental',
    source: kafkaSource(brokers, name, { commitIntervalMs: 200, sessionTimeoutMs }),
    model: { hiddenLayers: [32], outputUnits: 2 },
    strategy: { name: 'ewc', params: { lambda: 100 } },
    training: { batchSize: 16, optimizer: 'adam', learningRate: 0.003, stepsPerBatch: 1, batchTimeoutMs: 500 },
    evaluation: { probeSize: 50, holdoutEvery: 10, endedTaskLabelled: 'evaluate' },
    checkpoint: { directory: checkpoints, everySamples: 48, everySeconds: 1, keep: 3 },
    lease: { enabled: true, sessionTimeoutMs, heartbeatIntervalMs: Math.min(1000, Math.floor(sessionTimeoutMs / 3)) },
  };
}

/** Split-MNIST tasks on the topics `<name>.split-mnist-D-D` (leasedPipeline's), 10% unlabelled. */
export async function produceTasks(brokers: string[], name: string, tasks: number, samplesPerTask: number, rate: number): Promise<ProducedTopic[]> {
  const summary = await produceDataset(
    { dataset: 'split-mnist', tasks, samplesPerTask, brokers, topicPrefix: `${name}.`, rate, unlabelledFraction: 0.1, format: 'json', scenario: 'class-incremental', seed: 5, endMarker: true, clientId: `${name}-producer` },
    { write: () => true } as never,
  );
  return [...summary.topics];
}

/** The pipelines a daemon trains now (its /healthz); undefined while it does not answer. */
export async function activeOn(daemon: Daemon): Promise<string[] | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${daemon.port}/healthz`);
    return ((await res.json()) as { pipelines?: string[] }).pipelines;
  } catch {
    return undefined;
  }
}

export interface LogEvent {
  readonly time: string;
  readonly message: string;
  readonly pipeline?: string;
  readonly epoch?: number;
  readonly term?: 'begins' | 'ends';
}

/** The JSON lines of a daemon's log (LIFELONG_LOG_FORMAT=json). */
export function logEvents(daemon: Daemon): LogEvent[] {
  return daemon
    .stderr()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogEvent);
}

/** When a daemon (`daemon`: its index) trained a pipeline: from its log's term events (engine/leased-pipelines.ts). */
export interface Term {
  readonly daemon: number;
  readonly pipeline: string;
  readonly begins: number;
  readonly ends: number;
}

/** Every term of every daemon, each of which must have ended (the daemons were stopped). */
export function termsOf(daemons: readonly Daemon[]): Term[] {
  return daemons.flatMap((daemon, d) => {
    const events = logEvents(daemon).filter((e) => e.term !== undefined);
    return events
      .filter((e) => e.term === 'begins')
      .map((begin) => {
        const end = events.find((e) => e.term === 'ends' && e.pipeline === begin.pipeline && e.epoch === begin.epoch);
        assert.ok(end, `daemon ${d}'s term of ${begin.pipeline} ended`);
        return { daemon: d, pipeline: begin.pipeline as string, begins: Date.parse(begin.time), ends: Date.parse(end.time) };
      });
  });
}
