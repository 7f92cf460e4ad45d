import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tfjs from '@tensorflow/tfjs';
// Only the package entry, as a user's code would import it (resolved by package self-reference).
import { builtinStrategies, checkStrategy, ConfigError, loadPipelineConfig, loadStrategyModule, runPipeline, strategyChecks, tf, type CheckStrategyOptions } from 'lifelong';

const REPO = path.resolve(__dirname, '../../..');
const FIXTURES = path.join(REPO, 'test/fixtures/user-strategies');

/** checkStrategy's checks at a smaller scale: one scenario, a small trunk, fewer samples. */
const QUICK: CheckStrategyOptions = { scenarios: ['class-incremental'], hiddenLayers: [64], learningSamples: 600, minAccuracy: 0.9, leakBatches: 10 };

describe("the public API: import ... from 'lifelong'", () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifelong-public-api-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("resolves to what package.json's main, types and exports name, with the daemon's own tfjs", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8'));
    assert.equal(require.resolve('lifelong'), path.join(REPO, pkg.main));
    assert.equal(pkg.exports['.'].default, `./${pkg.main}`);
    assert.equal(pkg.exports['.'].types, `./${pkg.types}`);
    assert.ok(fs.existsSync(path.join(REPO, pkg.types)), `${pkg.types} is built`);
    assert.equal(tf.engine(), tfjs.engine(), 'one tfjs engine: tensors made with either are the same kind');
  });

  it('a plain-JS module wrapping a built-in passes checkStrategy', async () => {
    const descriptor = loadStrategyModule(path.join(FIXTURES, 'wrapped-l2.js'), 'wrapped-l2');
    assert.deepEqual(descriptor.capabilities, builtinStrategies().describe('l2').capabilities);
    const report = await checkStrategy(descriptor, QUICK);
    assert.equal(report.strategy, 'wrapped-l2');
    assert.deepEqual(
      report.results.map((r) => r.check),
      strategyChecks(descriptor, QUICK).map((c) => c.name),
    );
    assert.deepEqual(
      report.results.filter((r) => r.outcome.status === 'skipped').map((r) => r.check),
      ['predictAndTrain, where offered, predicts what predict() would and learns what trainBatch() would'],
      'only the optional predictAndTrain is skipped: the wrapper does not offer it',
    );
  });

  it('a plain-JS regularizer on the MLP learner, from the entry alone, passes checkStrategy', async () => {
    const report = await checkStrategy(loadStrategyModule(path.join(FIXTURES, 'anchored-mlp.js'), 'anchored-mlp'), QUICK);
    assert.ok(report.results.every((r) => r.outcome.status === 'passed'), JSON.stringify(report.results));
  });

  it('names the check a strategy fails', async () => {
    const broken = builtinStrategies().describe('finetune');
    const forgetful = { ...broken, name: 'forgetful', create: (options: Parameters<typeof broken.create>[0]) => Object.assign(broken.create(options), { importState: async () => undefined }) };
    await assert.rejects(
      checkStrategy(forgetful, { ...QUICK, minAccuracy: 0 }),
      (error: Error) => /strategy "forgetful" fails the check "export then import gives identical predictions, also after training on \(class-incremental\)"/.test(error.message),
    );
  });

  it('runs a module exporting a descriptor from a pipeline (strategy.module), and refuses a name the module does not describe', async () => {
    const config = JSON.parse(fs.readFileSync(path.join(REPO, 'pipelines/quickstart.json'), 'utf8'));
    config.name = 'public-api';
    config.strategy = { name: 'wrapped-l2', module: path.relative(dir, path.join(FIXTURES, 'wrapped-l2.js')), params: { strength: 0.5 } };
    config.source.samplesPerTask = 200;
    config.source.tasks = 2;
    const file = path.join(dir, 'pipeline.json');
    fs.writeFileSync(file, JSON.stringify(config));

    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const module = require(path.join(FIXTURES, 'wrapped-l2.js')) as { calls: number };
    const callsBefore = module.calls;
    const report = await runPipeline({ pipeline: loadPipelineConfig(file), backend: tf.getBackend() });
    assert.equal(report.strategy, 'wrapped-l2');
    assert.equal(report.samplesTrained, 400);
    assert.equal(module.calls - callsBefore, 2 * Math.ceil(200 / config.training.batchSize), 'one call per micro-batch, batches cut at the task boundary');

    fs.writeFileSync(file, JSON.stringify({ ...config, strategy: { ...config.strategy, name: 'other' } }));
    await assert.rejects(runPipeline({ pipeline: loadPipelineConfig(file), backend: tf.getBackend() }), (error: unknown) => error instanceof ConfigError && error.key === 'strategy.name' && /describes strategy "wrapped-l2"/.test(error.message));
  });
});
