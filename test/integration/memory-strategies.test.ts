import * as assert from 'node:assert/strict';
import { getBackend } from '@tensorflow/tfjs';
import type { PipelineConfig } from '../../src/config/pipeline-config';
import type { RunReport } from '../../src/engine/report';
import { runPipeline } from '../../src/engine/run-pipeline';

/**
 * Issue 5's comparison in miniature: class-incremental split-MNIST, 5 tasks, fixed seed, a short
 * single-pass run. Regularisation (EWC) cannot keep old classes in Class-IL; deep generative
 * replay can, without storing a sample; exact replay of 1000 stored samples does better still,
 * and joint training on everything is the upper bound.
 */
const PIPELINE: PipelineConfig = {
  name: 'memory-strategies',
  description: '',
  seed: 1,
  scenario: 'class-incremental',
  source: { type: 'split-mnist', tasks: 5, samplesPerTask: 2000 },
  model: { hiddenLayers: [200, 200], outputUnits: 0 },
  strategy: { name: 'dgr', params: {} },
  training: { batchSize: 64, optimizer: 'adam', learningRate: 0.001, stepsPerBatch: 2, batchTimeoutMs: 1000 },
  evaluation: { probeSize: 300, holdoutEvery: 10, endedTaskLabelled: 'evaluate' },
};

const RUNS: readonly [string, Record<string, unknown>][] = [
  // Single-pass calibration of the EWC pipelines (pipelines/split-mnist-ewc-class.json).
  ['ewc', { lambda: 10000 }],
  // In one short pass the VAE needs more and larger steps than the solver: 8 per batch at lr 4e-3
  // (at the solver's 2 and 1e-3 it is too blurry to replay 8 classes; measured here: 10 steps at
  // 1e-3 gave 58%; 8 steps at 4e-3 80-82% over seeds 1-3).
  ['dgr', { generatorSteps: 8, generatorLearningRate: 0.004 }],
  ['replay', { budget: 1000 }],
  ['joint', {}],
];

describe('memory strategies on class-incremental split-MNIST (5 tasks, short single-pass run)', () => {
  const reports = new Map<string, RunReport>();

  before(async () => {
    for (const [name, params] of RUNS) {
      reports.set(name, await runPipeline({ pipeline: PIPELINE, backend: getBackend(), strategyOverride: { name, params } }));
    }
    const table = [...reports.values()].map((r) => `    ${r.strategy.padEnd(7)} average accuracy ${(100 * (r.averageAccuracy ?? NaN)).toFixed(1)}%   after each task on task 1: ${r.accuracyMatrix.map((row) => (100 * (row[0] ?? NaN)).toFixed(0)).join(' ')}`);
    process.stdout.write(`${table.join('\n')}\n`);
  });

  const average = (name: string) => reports.get(name)?.averageAccuracy ?? NaN;

  it('dgr keeps old classes without storing samples: at least 60% and at least twice ewc', () => {
    assert.ok(average('dgr') >= 0.6, `dgr ${average('dgr')}`);
    assert.ok(average('dgr') >= 2 * average('ewc'), `dgr ${average('dgr')} vs ewc ${average('ewc')}`);
  });

  it('exact replay of 1000 samples is above dgr, and joint training above both', () => {
    assert.ok(average('replay') > average('dgr'), `replay ${average('replay')} vs dgr ${average('dgr')}`);
    assert.ok(average('joint') > average('replay') && average('joint') > average('dgr'), `joint ${average('joint')}, replay ${average('replay')}, dgr ${average('dgr')}`);
  });
});
