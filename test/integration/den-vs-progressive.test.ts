import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { getBackend } from '@tensorflow/tfjs';
import { loadPipelineConfig } from '../../src/config/pipeline-config';
import type { RunReport } from '../../src/engine/report';
import { runPipeline } from '../../src/engine/run-pipeline';

const PIPELINE = path.resolve(__dirname, '../../../pipelines/split-mnist-den-task.json');

/**
 * Yoon et al. 2018's claim in miniature: DEN nearly matches a network per task with far fewer
 * parameters. Fixed-seed 5-task split-MNIST, task-incremental, through the engine: the shipped DEN
 * pipeline shrunk to 1000 samples per task, 784-100-100, batches of 32 with 3 gradient steps
 * (about 31 batches per task instead of 94). DEN's phase lengths shrink in proportion (the
 * pipeline's 10 selection and 20 retraining batches of 94 become 3 and 6 of 31); its other
 * hyperparameters stay the pipeline's. Progressive Networks (linear laterals) run the same stream.
 */
describe('DEN against Progressive Networks (5-task split-MNIST, task-incremental, fixed seed)', () => {
  const reports = new Map<string, RunReport>();

  before(async () => {
    const shipped = loadPipelineConfig(PIPELINE);
    const pipeline = {
      ...shipped,
      source: { ...shipped.source, samplesPerTask: 1000 } as typeof shipped.source,
      model: { ...shipped.model, hiddenLayers: [100, 100] },
      training: { ...shipped.training, batchSize: 32, stepsPerBatch: 3 },
    };
    for (const [name, params] of [
      ['den', { ...shipped.strategy.params, selectionBatches: 3, expansionPatience: 6 }],
      ['progressive', {}],
    ] as const) {
      reports.set(name, await runPipeline({ pipeline, backend: getBackend(), strategyOverride: { name, params } }));
    }
    const rows = [...reports.values()].map(
      (r) => `    ${r.strategy.padEnd(12)} average accuracy ${(100 * (r.averageAccuracy ?? NaN)).toFixed(1)}%  parameters after each task ${r.parametersAfterTask.join(' ')}`,
    );
    process.stdout.write(`${rows.join('\n')}\n`);
  });

  it('DEN learns every task and keeps the first', () => {
    const den = reports.get('den') as RunReport;
    const last = den.accuracyMatrix[4] as (number | null)[];
    assert.equal(last.length, 5);
    assert.ok(last.every((a) => a !== null && a > 0.85), `accuracies after the last task: ${JSON.stringify(last)}`);
    assert.ok((last[0] as number) >= (den.accuracyMatrix[0]?.[0] as number) - 0.01, 'task 1 kept');
  });

  it("DEN's average accuracy is within 3 points of Progressive's, with fewer parameters", () => {
    const den = reports.get('den') as RunReport;
    const progressive = reports.get('progressive') as RunReport;
    const gap = (progressive.averageAccuracy as number) - (den.averageAccuracy as number);
    assert.ok(gap <= 0.03, `DEN ${den.averageAccuracy}, Progressive ${progressive.averageAccuracy}`);
    assert.ok(den.parameters < progressive.parameters, `DEN ${den.parameters} parameters, Progressive ${progressive.parameters}`);
  });
});
