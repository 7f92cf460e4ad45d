import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { getBackend } from '@tensorflow/tfjs';
import { loadPipelineConfig } from '../../src/config/pipeline-config';
import type { Logger } from '../../src/core/log';
import { createSource } from '../../src/engine/create-source';
import { runPipeline } from '../../src/engine/run-pipeline';
import { defineStrategy } from '../../src/strategies/descriptor';
import { StrategyRegistry } from '../../src/strategies/registry';
import { FakeStrategy } from '../helpers/fake-strategy';

const REPO = path.resolve(__dirname, '../../..');

/** A logger that keeps every line, in order, with its level. */
function recordingLogger(events: string[]): Logger {
  const at = (level: string) => (message: string, fields?: Record<string, unknown>) => events.push(`${level}: ${message}${fields?.stack ? ` [stack: ${String(fields.stack).split('\n')[1]?.trim()}]` : ''}`);
  return { debug: () => undefined, info: at('info'), warn: at('warn'), error: at('error') };
}

describe('a failing run says what happened (issue 13, item 5)', () => {
  const pipeline = (() => {
    const p = loadPipelineConfig(path.join(REPO, 'pipelines/quickstart.json'));
    return { ...p, source: { ...p.source, samplesPerTask: 64, tasks: 2 } as typeof p.source, strategy: { name: 'breaks', params: {} } };
  })();

  /** A strategy that fails on its third training batch, with a message of its own. */
  const breaking = new StrategyRegistry().register(
    defineStrategy({
      name: 'breaks',
      summary: 'fails mid-task',
      create: () => {
        const strategy = new FakeStrategy();
        let batches = 0;
        const train = strategy.trainBatch.bind(strategy);
        strategy.trainBatch = async (task, batch) => {
          if (++batches === 3) throw new Error('the third batch broke');
          return train(task, batch);
        };
        return strategy;
      },
    }),
  );

  it('logs the engine error with its stack before shutdown begins, and rethrows it', async () => {
    const events: string[] = [];
    const created = createSource(pipeline.source, pipeline.scenario, pipeline.seed);
    const close = created.source.close.bind(created.source);
    created.source.close = async () => {
      events.push('source closed');
      return close();
    };
    await assert.rejects(runPipeline({ pipeline, backend: getBackend(), registry: breaking, source: created, log: recordingLogger(events) }), /the third batch broke/);
    const logged = events.findIndex((e) => e.startsWith('error: the run failed: the third batch broke [stack:'));
    assert.ok(logged >= 0, `the failure is logged with its stack: ${JSON.stringify(events)}`);
    assert.ok(logged < events.indexOf('source closed'), `logged before shutdown: ${JSON.stringify(events)}`);
  });

  it('reports a shutdown failure in addition to the engine error, never instead of it', async () => {
    const events: string[] = [];
    const created = createSource(pipeline.source, pipeline.scenario, pipeline.seed);
    const close = created.source.close.bind(created.source);
    created.source.close = async () => {
      await close();
      throw new Error('3 of 3 samples in hand were not acknowledged');
    };
    await assert.rejects(runPipeline({ pipeline, backend: getBackend(), registry: breaking, source: created, log: recordingLogger(events) }), /the third batch broke/, 'the engine error, not the shutdown one, fails the run');
    assert.ok(events.some((e) => e.startsWith('error: the run failed: the third batch broke')), JSON.stringify(events));
    assert.ok(events.some((e) => e.startsWith('error: shutting down after the failure also failed: 3 of 3 samples in hand were not acknowledged')), JSON.stringify(events));
  });
});
