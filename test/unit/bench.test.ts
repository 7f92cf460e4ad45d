import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Sample, Scenario } from '../../src/core/types';
import { averageAccuracyAfterEachTask, BENCH_REPORT_FORMAT, meanAndStd, summariseRuns, type BenchReport, type BenchRun } from '../../src/suites/bench-report';
import { RevisitingSource } from '../../src/suites/revisiting-source';
import { pipelineOf } from '../../src/suites/run-bench';
import { benchSuite, BENCH_STRATEGIES, PUBLISHED_ACCURACY, SUITE_NAMES } from '../../src/suites/definitions';
import { accuracyTable, comparisonTable, replaceMarkedSection, seedFigureTable } from '../../src/suites/tables';
import { benchCommand, parseBenchArgs, readBenchReport } from '../../src/cli/bench-command';
import { ConfigError, DataFormatError } from '../../src/core/errors';
import { loadStrategyModule } from '../../src/strategies/registry';

const context = { reject: () => undefined, log: () => undefined };

/** A split-MNIST suite report of one implementation, for --compare. */
function report(implementation: string, runs: BenchRun[]): BenchReport {
  return {
    format: BENCH_REPORT_FORMAT,
    suite: 'three-scenarios-split-mnist',
    implementation,
    implementationVersion: '1',
    createdAt: '2026-11-28T00:00:00Z',
    machine: { cpu: 'x', cores: 2, memoryGiB: 1, runtime: implementation, backend: 'b' },
    command: `${implementation} bench`,
    runs,
  };
}

async function drain(source: RevisitingSource): Promise<Sample[]> {
  const out: Sample[] = [];
  const iterator = source.open(context);
  for (let next = await iterator.next(); !next.done; next = await iterator.next()) out.push(next.value);
  return out;
}

function run(over: Partial<BenchRun> & Pick<BenchRun, 'strategy' | 'accuracyMatrix'>): BenchRun {
  const averageAccuracyAfterTask = averageAccuracyAfterEachTask(over.accuracyMatrix);
  return {
    dataset: 'split-mnist',
    scenario: 'class-incremental',
    implementationStrategy: over.strategy,
    params: {},
    seed: 1,
    protocol: benchSuite('three-scenarios-split-mnist').cases[0]!.protocol,
    tasks: over.accuracyMatrix.map((_, i) => `t${i + 1}`),
    averageAccuracyAfterTask,
    finalAverageAccuracy: averageAccuracyAfterTask[averageAccuracyAfterTask.length - 1] ?? 0,
    wallSeconds: 10,
    samplesTrained: 1000,
    samplesPerSecond: 100,
    parameters: 5,
    ...over,
  };
}

describe('bench: revisiting source (bench mode only)', () => {
  it('streams iterations x batch samples per task, epoch by epoch: every image once per epoch, reshuffled, tasks in order', async () => {
    const spec = { dataset: 'split-mnist' as const, tasks: 2, samplesPerTask: 50, seed: 4, scenario: 'class-incremental' as Scenario };
    const source = new RevisitingSource(spec, 7, 16); // 112 per task: epochs of 50, 50, then 12
    assert.equal(source.expectedSamples('split-mnist-0-1'), 112);
    assert.equal(source.distinctSamples('split-mnist-0-1'), 50);
    const samples = await drain(source);
    assert.equal(samples.length, 224);
    const first = samples.slice(0, 112);
    assert.ok(first.every((s) => s.task === 'split-mnist-0-1') && samples.slice(112).every((s) => s.task === 'split-mnist-2-3'));
    const epoch1 = first.slice(0, 50).map((s) => s.id);
    const epoch2 = first.slice(50, 100).map((s) => s.id);
    assert.equal(new Set(epoch1).size, 50);
    assert.deepEqual([...epoch2].sort(), [...epoch1].sort(), 'the second epoch revisits the same images');
    assert.notDeepEqual(epoch2, epoch1, 'in another order');
    assert.ok(first.slice(100).every((s) => epoch1.includes(s.id)));
    // Same seed, same stream; probes are the embedded source's test images.
    const again = await drain(new RevisitingSource(spec, 7, 16));
    assert.deepEqual(again.map((s) => s.id), samples.map((s) => s.id));
    const probe = source.probe('split-mnist-0-1', 20) ?? [];
    assert.equal(probe.length, 20);
    assert.ok(probe.every((s) => s.id?.startsWith('test-')));
    await source.close();
    await source.close();
  });

  it('refuses zero iterations or batch size', () => {
    const spec = { dataset: 'split-mnist' as const, tasks: 1, seed: 1, scenario: 'task-incremental' as Scenario };
    assert.throws(() => new RevisitingSource(spec, 0, 128), /iterationsPerTask/);
    assert.throws(() => new RevisitingSource(spec, 10, 0), /batchSize/);
  });
});

describe('bench: suites', () => {
  it('runs Progressive and DEN in Task-IL only, every other strategy in all three scenarios', () => {
    const cases = benchSuite('three-scenarios-split-mnist').cases;
    for (const strategy of BENCH_STRATEGIES) {
      const scenarios = cases.filter((c) => c.strategy === strategy).map((c) => c.scenario);
      assert.deepEqual(scenarios, strategy === 'progressive' || strategy === 'den' ? ['task-incremental'] : ['task-incremental', 'domain-incremental', 'class-incremental'], strategy);
    }
    const ewcClass = cases.find((c) => c.strategy === 'ewc' && c.scenario === 'class-incremental');
    assert.deepEqual(ewcClass?.params, { lambda: 1e8, fisherEvery: 10, fisherDecay: 0.95 });
    assert.equal(cases.find((c) => c.strategy === 'dgr+distill')?.implementationStrategy, 'dgr');
    assert.equal(cases[0]?.protocol.iterationsPerTask, 2000);
  });

  it('filters and overrides iterations of iterated protocols only; the online suite stays single-pass', () => {
    const quick = benchSuite('three-scenarios-permuted-mnist', { iterationsPerTask: 10, strategies: ['ewc', 'dgr'], scenarios: ['class-incremental'] });
    assert.deepEqual(quick.cases.map((c) => c.strategy), ['ewc', 'dgr']);
    assert.ok(quick.cases.every((c) => c.protocol.iterationsPerTask === 10 && c.protocol.hiddenLayers[0] === 1000));
    const online = benchSuite('online', { iterationsPerTask: 10 });
    assert.ok(online.cases.every((c) => c.protocol.iterationsPerTask === 0 && c.protocol.batchSize === 10 && c.protocol.samplesPerTask === 1000 && !c.protocol.revisits));
    assert.deepEqual([...new Set(online.cases.map((c) => c.dataset))], ['split-mnist', 'permuted-mnist']);
    const seed = benchSuite('seed-figure');
    assert.deepEqual(seed.cases.map((c) => c.strategy), ['finetune', 'l2', 'ewc']);
    assert.ok(seed.cases.every((c) => c.protocol.tasks === 2));
  });

  it('builds a valid pipeline for every case of every suite (names, probe size, params)', () => {
    for (const name of SUITE_NAMES) {
      for (const c of benchSuite(name).cases) {
        const pipeline = pipelineOf(c, 3);
        assert.match(pipeline.name, /^[a-z0-9-]{1,64}$/);
        assert.equal(pipeline.seed, 3);
        assert.equal(pipeline.strategy.name, c.implementationStrategy);
        if (c.protocol.testSamplesPerTask === 0) assert.ok(pipeline.evaluation.probeSize >= 10_000, 'all test images of a task');
        else assert.equal(pipeline.evaluation.probeSize, c.protocol.testSamplesPerTask);
      }
    }
  });
});

describe('bench: report math and tables', () => {
  it('averages R[i][0..i] after each task, and mean/std over seeds', () => {
    assert.deepEqual(averageAccuracyAfterEachTask([[1, 0.5], [0.5, 1]]), [1, 0.75]);
    assert.deepEqual(meanAndStd([1]), { mean: 1, std: 0 });
    const { mean, std } = meanAndStd([0.8, 0.9, 1.0]);
    assert.ok(Math.abs(mean - 0.9) < 1e-12 && Math.abs(std - 0.1) < 1e-12);
    const summaries = summariseRuns([
      run({ strategy: 'ewc', seed: 1, accuracyMatrix: [[1, null], [0.2, 1]] }),
      run({ strategy: 'ewc', seed: 2, accuracyMatrix: [[0.8, null], [0.4, 0.8]] }),
      run({ strategy: 'finetune', accuracyMatrix: [[1, null], [0, 1]] }),
    ]);
    assert.deepEqual(summaries.map((s) => [s.strategy, s.seeds]), [['ewc', [1, 2]], ['finetune', [1]]]);
    const ewc = summaries[0]!;
    assert.deepEqual(ewc.meanAccuracyMatrix.map((r) => r.map((v) => (v === null ? null : Math.round(v * 100) / 100))), [[0.9, null], [0.3, 0.9]]);
    assert.ok(Math.abs(ewc.finalAverageAccuracy.mean - 0.6) < 1e-12);
  });

  it('puts published numbers beside ours with the difference, bold beyond 2 points', () => {
    const published = PUBLISHED_ACCURACY['split-mnist'].ewc!['class-incremental']!;
    const close = (published + 1) / 100;
    const far = (published - 5) / 100;
    const table = accuracyTable([
      run({ strategy: 'ewc', accuracyMatrix: [[close, 0], [close, close]] }),
      run({ strategy: 'dgr', accuracyMatrix: [[1, 0], [far, far]] }),
      run({ strategy: 'replay', accuracyMatrix: [[1, 0], [0.5, 0.5]] }),
    ]);
    assert.match(table, new RegExp(`\\| ewc \\| ${(published + 1).toFixed(1)} \\| ${published.toFixed(1)} \\(\\+1\\.0\\) \\|`));
    const dgrPublished = PUBLISHED_ACCURACY['split-mnist'].dgr!['class-incremental']!;
    assert.match(table, new RegExp(`\\| dgr \\| ${(published - 5).toFixed(1)} \\| ${dgrPublished.toFixed(1)} \\(\\*\\*−`));
    assert.match(table, /\| replay \| 50\.0 \| — \|/);
    const lesser = accuracyTable([run({ strategy: 'ewc', accuracyMatrix: [[1]] }), run({ strategy: 'dgr', accuracyMatrix: [[1]], protocol: { ...run({ strategy: 'x', accuracyMatrix: [[1]] }).protocol, iterationsPerTask: 500 } })]);
    assert.match(lesser, /\| dgr \| 100\.0 \(500 it\.\) \|/);
    assert.match(lesser, /\| ewc \|/);
    assert.match(lesser, /a quicker, lesser run of N iterations per task instead of the protocol's 2000/);
    const quickOnly = run({ strategy: 'ewc', accuracyMatrix: [[1]], protocol: { ...run({ strategy: 'x', accuracyMatrix: [[1]] }).protocol, iterationsPerTask: 500 } });
    assert.match(accuracyTable([quickOnly], 'three-scenarios-split-mnist'), /2000 iterations of 128 per task[\s\S]*\| ewc \| 100\.0 \(500 it\.\) \|/, 'the suite names the protocol even when only quicker runs exist');
    assert.doesNotMatch(accuracyTable([quickOnly]), /it\.\)/, 'without a suite, the longest run is the reference');
    const sampled = run({ strategy: 'ewc', accuracyMatrix: [[1]], protocol: { ...quickOnly.protocol, testSamplesPerTask: 1000 } });
    assert.match(accuracyTable([sampled]), /scored on a seeded sample of 1000 test images per task/);
    const ordered = accuracyTable([run({ strategy: 'joint', accuracyMatrix: [[1]] }), run({ strategy: 'finetune', accuracyMatrix: [[1]] })]);
    assert.ok(ordered.indexOf('| finetune |') < ordered.indexOf('| joint |'), 'rows in the suites\' order, not in the order they ran');
    assert.doesNotMatch(accuracyTable([quickOnly]), /seeded sample/);
    const online = accuracyTable([run({ strategy: 'ewc', accuracyMatrix: [[close]], protocol: benchSuite('online').cases[0]!.protocol })]);
    assert.doesNotMatch(online, /paper/, 'single-pass runs are not set beside numbers of the iterated protocol');
    assert.match(table, /Class-IL \| paper/);
    assert.doesNotMatch(table, /Task-IL/, 'no column for a scenario that did not run');
  });

  it('seed figure: accuracy on A and B after learning B, mean ± std over seeds', () => {
    const table = seedFigureTable([
      run({ strategy: 'ewc', seed: 1, accuracyMatrix: [[0.9, 0.1], [0.8, 0.9]] }),
      run({ strategy: 'ewc', seed: 2, accuracyMatrix: [[0.9, 0.1], [0.6, 0.9]] }),
    ]);
    assert.match(table, /\| ewc \| `\{\}` \| 70\.0 ± 14\.1 \| 90\.0 ± 0\.0 \| 80\.0 ± 7\.1 \|/);
  });

  it('compares implementations row by row, with a dash where one lacks a strategy', () => {
    const table = comparisonTable([
      report('lifelong', [run({ strategy: 'ewc', accuracyMatrix: [[0.5]], samplesPerSecond: 300 }), run({ strategy: 'den', accuracyMatrix: [[0.7]] })]),
      report('avalanche', [run({ strategy: 'ewc', accuracyMatrix: [[0.25]], samplesPerSecond: 900 })]),
    ]);
    assert.match(table, /\| split-mnist \| Class-IL \| ewc \| 20\.0 \| 50\.0 \| 25\.0 \| 300 \| 900 \|/);
    const online = report('lifelong', [run({ strategy: 'ewc', accuracyMatrix: [[0.99]] })]);
    const alone = comparisonTable([{ ...online, suite: 'online' }, report('avalanche', [])]);
    assert.doesNotMatch(alone, /99\.0/, 'a suite only one implementation ran is not compared');
    const single = run({ strategy: 'ewc', accuracyMatrix: [[0.99]], protocol: benchSuite('online').cases[0]!.protocol });
    const singlePass = comparisonTable([{ ...report('lifelong', [single]), suite: 'online' }, { ...report('avalanche', [single]), suite: 'online' }]);
    assert.match(singlePass, /\| ewc \| 99\.0 \| 99\.0 \|/);
    assert.doesNotMatch(singlePass, /paper/, 'single-pass runs are not set beside numbers of the iterated protocol');
    assert.match(table, /\| split-mnist \| Class-IL \| den \| — \| 70\.0 \| — \| 100 \| — \|/);
    assert.match(table, /\| strategy \| paper \| lifelong accuracy \(%\) \| avalanche accuracy \(%\)/);
    assert.match(table, /- paper: van de Ven & Tolias 2019/);
  });

  it('compares three implementations, with the seeds\' spread where a cell has several', () => {
    const table = comparisonTable([
      report('lifelong', [run({ strategy: 'finetune', accuracyMatrix: [[0.9]] }), run({ strategy: 'finetune', seed: 2, accuracyMatrix: [[0.8]] })]),
      report('authors', [run({ strategy: 'finetune', accuracyMatrix: [[0.7]] })]),
      report('avalanche', [run({ strategy: 'finetune', accuracyMatrix: [[0.6]] })]),
    ]);
    assert.match(table, /lifelong accuracy \(%\) \| authors accuracy \(%\) \| avalanche accuracy \(%\)/);
    assert.match(table, /\| split-mnist \| Class-IL \| finetune \| 19\.9 \| 85\.0 ± 7\.1 \[80\.0–90\.0, 2 seeds\] \| 70\.0 \| 60\.0 \|/);
  });

  it('replaces a marked section of a document in place, or appends it', () => {
    const doc = 'intro\n<!-- bench:x -->\nold\n<!-- /bench:x -->\noutro\n';
    assert.equal(replaceMarkedSection(doc, 'x', 'new\n'), 'intro\n<!-- bench:x -->\nnew\n<!-- /bench:x -->\noutro\n');
    assert.equal(replaceMarkedSection('intro\n', 'y', 'table'), 'intro\n\n<!-- bench:y -->\ntable\n<!-- /bench:y -->\n');
  });
});

describe('bench: command line', () => {
  it('parses a suite run and names the offending option otherwise', () => {
    const args = parseBenchArgs(['--suite', 'seed-figure', '--repeats', '3', '--scenarios', 'task,class', '--strategies', 'ewc,dgr+distill']);
    assert.equal(args.mode, 'run');
    assert.equal(args.repeats, 3);
    assert.deepEqual(args.scenarios, ['task-incremental', 'class-incremental']);
    assert.deepEqual(args.strategies, ['ewc', 'dgr+distill']);
    assert.equal(args.out, 'bench-results');
    const refused = (argv: string[], key: string) =>
      assert.throws(() => parseBenchArgs(argv), (e: unknown) => e instanceof ConfigError && e.key === key, argv.join(' '));
    refused(['--suite', 'nope'], '--suite');
    refused(['--suite', 'online', '--repeats', '0'], '--repeats');
    refused(['--suite', 'online', '--scenarios', 'sideways'], '--scenarios');
    refused(['--suite', 'online', '--compare', 'dir'], '--suite');
    refused([], '--suite');
    refused(['--suite', 'online', '--backend', 'gpu9'], '--backend');
    refused(['--suite', 'online', '--test-samples', '0'], '--test-samples');
    assert.equal(parseBenchArgs(['--suite', 'online', '--test-samples', '500']).testSamples, 500);
    const capped = benchSuite('three-scenarios-permuted-mnist', { testSamplesPerTask: 500, iterationsPerTask: 20 }).cases;
    assert.ok(capped.length > 0 && capped.every((c) => c.protocol.testSamplesPerTask === 500 && c.protocol.iterationsPerTask === 20));
    refused(['--suite', 'online', '--pairs', 'shuffled'], '--pairs');
    assert.equal(parseBenchArgs(['--suite', 'online', '--pairs', 'random']).pairs, 'random');
    const paired = benchSuite('online', { pairs: 'random' }).cases;
    assert.ok(paired.every((c) => (c.dataset === 'split-mnist' ? c.protocol.pairs === 'random' : c.protocol.pairs === undefined)));
    assert.ok(benchSuite('three-scenarios-split-mnist').cases.every((c) => c.protocol.pairs === undefined), 'fixed pairs unless asked');
    assert.equal(parseBenchArgs(['--compare', 'dir']).mode, 'compare');
    assert.deepEqual(parseBenchArgs(['--render', 'a.json,b.json']).inputs, ['a.json', 'b.json']);
  });

  it('--module runs a user strategy as one more row, with --params for every scenario or per scenario', () => {
    const file = path.resolve(__dirname, '../../../test/fixtures/user-strategies/anchored-mlp.js');
    const perScenario = parseBenchArgs(['--suite', 'three-scenarios-split-mnist', '--module', file, '--params', '{"task": {"pull": 1}, "class-incremental": {"pull": 3}}']);
    assert.equal(perScenario.module?.path, file);
    assert.deepEqual(perScenario.module?.params('task-incremental'), { pull: 1 });
    assert.deepEqual(perScenario.module?.params('domain-incremental'), {}, 'a scenario left out takes the defaults');
    assert.deepEqual(perScenario.module?.params('class-incremental'), { pull: 3 });
    const everywhere = parseBenchArgs(['--suite', 'online', '--module', file, '--params', '{"pull": 2}']);
    assert.deepEqual(everywhere.module?.params('domain-incremental'), { pull: 2 });
    const refused = (argv: string[], key: string) =>
      assert.throws(() => parseBenchArgs(argv), (e: unknown) => e instanceof ConfigError && e.key === key, argv.join(' '));
    refused(['--suite', 'online', '--params', '{}'], '--params');
    refused(['--suite', 'online', '--module', file, '--params', '[1]'], '--params');
    refused(['--suite', 'online', '--module', file, '--params', '{"task": 3}'], '--params');
    refused(['--suite', 'online', '--module', file, '--params', 'pull=1'], '--params');
    refused(['--render', 'a.json', '--module', file], '--module');

    const descriptor = loadStrategyModule(file);
    const suite = benchSuite('three-scenarios-split-mnist', { strategies: ['ewc', descriptor.name], module: { path: file, descriptor, params: perScenario.module!.params } });
    const rows = suite.cases.filter((c) => c.strategy === descriptor.name);
    assert.deepEqual(rows.map((c) => c.scenario), ['task-incremental', 'domain-incremental', 'class-incremental'], 'one case per scenario, beside the built-ins');
    assert.deepEqual(rows.map((c) => c.params), [{ pull: 1 }, {}, { pull: 3 }]);
    assert.ok(rows.every((c) => c.protocol === suite.cases.find((b) => b.strategy === 'ewc' && b.scenario === c.scenario)?.protocol), 'the same protocol as the built-ins');
    assert.deepEqual(pipelineOf(rows[0]!, 1).strategy, { name: descriptor.name, module: file, params: { pull: 1 } });
  });

  it('--render merges reports: a run done twice counts once (the one with more iterations); another suite is refused', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-render-'));
    const protocol = run({ strategy: 'x', accuracyMatrix: [[1]] }).protocol;
    const report = (runs: BenchRun[], suite = 'three-scenarios-split-mnist'): BenchReport => ({
      format: BENCH_REPORT_FORMAT,
      suite,
      implementation: 'lifelong',
      implementationVersion: '1',
      createdAt: '2026-11-28T00:00:00Z',
      machine: { cpu: 'x', cores: 2, memoryGiB: 1, runtime: 'node', backend: 'wasm' },
      command: 'lifelong bench',
      runs,
    });
    const quick = path.join(dir, 'quick.json');
    const full = path.join(dir, 'full.json');
    fs.writeFileSync(quick, JSON.stringify(report([run({ strategy: 'dgr', accuracyMatrix: [[0.5]], protocol: { ...protocol, iterationsPerTask: 500 } }), run({ strategy: 'den', accuracyMatrix: [[0.6]], protocol: { ...protocol, iterationsPerTask: 500 } })])));
    fs.writeFileSync(full, JSON.stringify(report([run({ strategy: 'dgr', accuracyMatrix: [[0.9]] }), run({ strategy: 'ewc', accuracyMatrix: [[0.2]] })])));
    const out = path.join(dir, 'out');
    const code = await benchCommand(['--render', `${quick},${full}`, '--out', out], { write: () => undefined });
    assert.equal(code, 0);
    const table = fs.readFileSync(path.join(out, 'three-scenarios-split-mnist.md'), 'utf8');
    assert.match(table, /\| dgr \| 90\.0 \|/, 'the 2000-iteration run, not an average with the 500 one');
    assert.match(table, /\| den \| 60\.0 \(500 it\.\) \|/);
    assert.match(table, /\| ewc \| 20\.0 \|/);
    const other = path.join(dir, 'other.json');
    fs.writeFileSync(other, JSON.stringify(report([], 'online')));
    await assert.rejects(benchCommand(['--render', `${full},${other}`, '--out', out], { write: () => undefined }), /one suite/);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a file that is not a bench report, naming it', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-report-'));
    const file = path.join(dir, 'run.json');
    fs.writeFileSync(file, JSON.stringify({ accuracyMatrix: [] }));
    assert.throws(() => readBenchReport(file), (e: unknown) => e instanceof DataFormatError && e.message.includes(file) && /not a bench report/.test(e.message));
    fs.writeFileSync(file, '{');
    assert.throws(() => readBenchReport(file), /cannot read report/);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
