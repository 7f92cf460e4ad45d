import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { getBackend } from '@tensorflow/tfjs';
import { loadPipelineConfig } from '../../src/config/pipeline-config';
import { ConfigError } from '../../src/core/errors';
import { runPipeline } from '../../src/engine/run-pipeline';
import { defineStrategy } from '../../src/strategies/descriptor';
import { builtinStrategies, loadStrategyModule } from '../../src/strategies/registry';

const REPO = path.resolve(__dirname, '../../..');

describe('strategy registry and user strategy modules', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifelong-module-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('has the four families and the baselines built in, and refuses a name twice', () => {
    const registry = builtinStrategies();
    for (const name of ['finetune', 'l2', 'ewc', 'online-ewc', 'progressive', 'den', 'dgr', 'replay', 'joint']) {
      assert.ok(registry.names().includes(name), `${name} is registered`);
    }
    assert.throws(() => registry.register(defineStrategy({ name: 'ewc', create: () => undefined as never })), ConfigError);
  });

  it('loads a strategy from a module named in the pipeline file, without touching src/', async () => {
    // A user's module: wraps the built-in L2 learner under a name of its own, and counts calls.
    const modulePath = path.join(dir, 'my-strategy.js');
    fs.writeFileSync(
      modulePath,
      `const { createL2 } = require(${JSON.stringify(path.join(REPO, 'dist/src/strategies/l2.js'))});
       exports.calls = 0;
       exports.createStrategy = (options) => {
         const inner = createL2({ ...options, params: { lambda: options.params.strength } });
         return Object.assign(Object.create(inner), { name: 'mine', trainBatch: (t, b) => { exports.calls++; return inner.trainBatch(t, b); }, predictAndTrain: undefined });
       };`,
    );
    const config = JSON.parse(fs.readFileSync(path.join(REPO, 'pipelines/quickstart.json'), 'utf8'));
    config.name = 'user-module';
    config.strategy = { name: 'mine', module: './my-strategy.js', params: { strength: 0.5 } };
    config.source.samplesPerTask = 200;
    config.source.tasks = 2;
    const file = path.join(dir, 'user.json');
    fs.writeFileSync(file, JSON.stringify(config));
    const pipeline = loadPipelineConfig(file);
    assert.equal(pipeline.strategy.module, modulePath);

    const report = await runPipeline({ pipeline, backend: getBackend() });
    assert.equal(report.strategy, 'mine');
    assert.equal(report.samplesTrained, 400);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    assert.equal(require(modulePath).calls, 2 * Math.ceil(200 / config.training.batchSize), "one call per micro-batch, batches cut at the task boundary");
  });

  it('says what is wrong with a module that cannot be used', () => {
    assert.throws(() => loadStrategyModule(path.join(dir, 'missing.js')), /cannot load strategy\.module .*missing\.js/);
    const noFactory = path.join(dir, 'empty.js');
    fs.writeFileSync(noFactory, 'exports.something = 1;');
    assert.throws(() => loadStrategyModule(noFactory), /exports no createStrategy function/);
  });
});
