import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { getBackend } from '@tensorflow/tfjs';
import { loadPipelineConfig } from '../../src/config/pipeline-config';
import type { Logger } from '../../src/core/log';
import { runPipeline } from '../../src/engine/run-pipeline';
import { defineStrategy, scenarioWarning } from '../../src/strategies/descriptor';
import { builtinStrategies, StrategyRegistry } from '../../src/strategies/registry';
import { FakeStrategy } from '../helpers/fake-strategy';

const REPO = path.resolve(__dirname, '../../..');

describe('choosing a strategy: the start-up warning (issue 14, item 5)', () => {
  const builtins = builtinStrategies();

  it('the regularization family and finetune declare Class-IL as keeping little, with the measured number; the others do not', () => {
    for (const [name, measured] of [['finetune', '19.9%'], ['l2', '19.8%'], ['ewc', '19.7%'], ['online-ewc', '19.5%']] as const) {
      const warning = scenarioWarning(builtins.describe(name), 'class-incremental', builtins.all());
      assert.ok(warning?.includes(measured) && warning.includes('split MNIST'), warning);
      assert.match(warning ?? '', /use dgr or replay \(README "Choosing a strategy"\)$/, 'joint needs a finite stream, progressive and den the task identity');
      for (const scenario of ['task-incremental', 'domain-incremental'] as const) assert.equal(scenarioWarning(builtins.describe(name), scenario, builtins.all()), undefined);
    }
    for (const name of ['replay', 'dgr', 'joint', 'progressive', 'den']) assert.equal(scenarioWarning(builtins.describe(name), 'class-incremental', builtins.all()), undefined, name);
  });

  it('refuses a descriptor whose keepsLittleIn names no scenario', () => {
    assert.throws(() => defineStrategy({ name: 'x', create: () => new FakeStrategy(), capabilities: { keepsLittleIn: { 'class-il': 'typo' } as never } }), /keepsLittleIn has keys \["class-il"\]/);
  });

  it('lifelong run warns once, at start, when the pipeline pairs a strategy with such a scenario', async () => {
    const base = loadPipelineConfig(path.join(REPO, 'pipelines/quickstart.json'));
    const registry = new StrategyRegistry()
      .register(defineStrategy({ name: 'forgetful', create: () => new FakeStrategy(), capabilities: { keepsLittleIn: { 'class-incremental': '20% on our data' } } }))
      .register(defineStrategy({ name: 'rehearsing', create: () => new FakeStrategy() }));
    const run = async (strategy: string, scenario: 'class-incremental' | 'task-incremental') => {
      const warnings: string[] = [];
      const log: Logger = { debug: () => undefined, info: () => undefined, warn: (m) => void warnings.push(m), error: () => undefined };
      const pipeline = { ...base, scenario, source: { ...base.source, samplesPerTask: 32, tasks: 2 } as typeof base.source, strategy: { name: strategy, params: {} } };
      await runPipeline({ pipeline, backend: getBackend(), registry, log });
      return warnings;
    };
    assert.deepEqual(await run('forgetful', 'class-incremental'), [
      'strategy "forgetful" is known to keep little of earlier tasks in class-incremental learning: 20% on our data; for class-incremental learning use rehearsing (README "Choosing a strategy")',
    ]);
    assert.deepEqual(await run('forgetful', 'task-incremental'), []);
    assert.deepEqual(await run('rehearsing', 'class-incremental'), []);
  });
});
