import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { loadPipelineConfig } from '../../src/config/pipeline-config';
import { getBackend } from '@tensorflow/tfjs';
import type { RunReport } from '../../src/engine/report';
import { runPipeline } from '../../src/engine/run-pipeline';

const QUICKSTART = path.resolve(__dirname, '../../../pipelines/quickstart.json');

/**
 * The seed's claim (Kirkpatrick et al. 2017, figure 2A in miniature): on a short 3-task
 * permuted-MNIST stream with fixed seeds, plain fine-tuning forgets task 1 as tasks 2 and 3 are
 * learned, and EWC keeps it while still learning task 3. The quickstart pipeline is this run.
 */
describe('the seed claim: finetune forgets, EWC keeps (3-task permuted MNIST, fixed seeds)', () => {
  const reports = new Map<string, RunReport>();
  const pipeline = loadPipelineConfig(QUICKSTART);

  before(async () => {
    for (const [name, params] of [
      ['finetune', {}],
      ['l2', { lambda: 0.01 }],
      ['ewc', pipeline.strategy.params],
    ] as const) {
      reports.set(name, await runPipeline({ pipeline: { ...pipeline, evaluation: { ...pipeline.evaluation, probeSize: 1000 } }, backend: getBackend(), strategyOverride: { name, params } }));
    }
    const table = [...reports.values()].map((r) => `    ${r.strategy.padEnd(9)} task 1: ${r.accuracyMatrix.map((row) => (100 * (row[0] ?? NaN)).toFixed(1)).join(' -> ')}   task 3 at end: ${(100 * (r.accuracyMatrix[2]?.[2] ?? NaN)).toFixed(1)}`);
    // Recorded for the note and the docs: what each method does to task 1 as tasks 2 and 3 arrive.
    process.stdout.write(`    task-1 probe accuracy after tasks 1, 2, 3 (%):\n${table.join('\n')}\n`);
  });

  const task1 = (name: string, after: number) => reports.get(name)?.accuracyMatrix[after]?.[0] as number;
  const task3 = (name: string) => reports.get(name)?.accuracyMatrix[2]?.[2] as number;

  it('finetune learns task 1, then loses it as tasks 2 and 3 are learned', () => {
    assert.ok(task1('finetune', 0) > 0.85, `task 1 learned: ${task1('finetune', 0)}`);
    assert.ok(task1('finetune', 1) < task1('finetune', 0), 'falls after task 2');
    assert.ok(task1('finetune', 2) < task1('finetune', 1), 'falls further after task 3');
    assert.ok(task1('finetune', 0) - task1('finetune', 2) > 0.1, `forgets more than 10 points: ${task1('finetune', 0)} -> ${task1('finetune', 2)}`);
  });

  it('EWC keeps task 1 at least 10 points above finetune while still learning task 3', () => {
    assert.ok(task1('ewc', 2) >= task1('finetune', 2) + 0.1, `ewc ${task1('ewc', 2)} vs finetune ${task1('finetune', 2)}`);
    assert.ok(task3('ewc') > 0.75, `task 3 learned by ewc: ${task3('ewc')}`);
    // The price of stability: EWC learns the new task a little less well than unconstrained training.
    assert.ok(task3('ewc') <= task3('finetune') + 0.02, `ewc ${task3('ewc')} vs finetune ${task3('finetune')} on task 3`);
  });

  it('l2 (recorded): anchored equally everywhere, it lies between finetune and EWC on task 1', () => {
    assert.ok(task3('l2') > 0.75, `l2 still learns task 3: ${task3('l2')}`);
    assert.ok(task1('l2', 2) >= task1('finetune', 2), `l2 ${task1('l2', 2)} vs finetune ${task1('finetune', 2)}`);
    assert.ok(task1('l2', 2) <= task1('ewc', 2), `l2 ${task1('l2', 2)} vs ewc ${task1('ewc', 2)}`);
  });
});
