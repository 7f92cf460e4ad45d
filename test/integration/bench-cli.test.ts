import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { BenchReport } from '../../src/suites/bench-report';
import { benchCommand } from '../../src/cli/bench-command';

/** Runs `lifelong bench ARGS` in-process and returns what it printed. */
async function bench(args: string[]): Promise<string> {
  let printed = '';
  const code = await benchCommand(args, { write: (text: string) => (printed += text) });
  assert.equal(code, 0, printed);
  return printed;
}

const readReport = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8')) as BenchReport;

describe('lifelong bench (CLI, end to end on real MNIST, a few iterations)', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifelong-bench-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('seed-figure: writes the report, table and plot; --resume redoes nothing; --docs fills a marked section', async () => {
    const out = path.join(dir, 'seed');
    const docs = path.join(dir, 'BENCHMARKS.md');
    fs.writeFileSync(docs, '# Benchmarks\n\nhand-written text stays\n');
    const printed = await bench(['--suite', 'seed-figure', '--iterations', '4', '--out', out, '--docs', docs]);
    const report = readReport(path.join(out, 'seed-figure.json'));
    assert.equal(report.implementation, 'lifelong');
    assert.deepEqual(report.runs.map((r) => r.strategy), ['finetune', 'l2', 'ewc']);
    for (const run of report.runs) {
      assert.deepEqual(run.tasks, ['permuted-mnist-1', 'permuted-mnist-2']);
      assert.equal(run.accuracyMatrix.length, 2);
      assert.ok(run.accuracyMatrix.flat().every((a) => a !== null && a >= 0 && a <= 1));
      assert.equal(run.samplesTrained, 2 * 4 * 128, 'iterations x batch per task, revisits counted');
      assert.equal(run.protocol.iterationsPerTask, 4);
      assert.ok(run.samplesPerSecond > 0 && run.wallSeconds > 0);
    }
    const table = fs.readFileSync(path.join(out, 'seed-figure.md'), 'utf8');
    for (const strategy of ['finetune', 'l2', 'ewc']) assert.match(table, new RegExp(`\\| ${strategy} \\|`));
    assert.match(fs.readFileSync(path.join(out, 'seed-figure.svg'), 'utf8'), /^<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    const doc = fs.readFileSync(docs, 'utf8');
    assert.match(doc, /hand-written text stays/);
    assert.match(doc, /<!-- bench:seed-figure -->[\s\S]*\| ewc \|[\s\S]*<!-- \/bench:seed-figure -->/);
    assert.match(printed, /\[3\/3\] permuted-mnist domain-incremental ewc seed 1/);
    assert.match(printed, /\[3\/3\] ewc domain-incremental seed 1: task 2\/2 done, average \d+\.\d%/, 'progress after each task');

    const resumed = await bench(['--suite', 'seed-figure', '--iterations', '4', '--out', out, '--resume']);
    assert.doesNotMatch(resumed, /\[\d\/3\]/, 'every run was already in the report');
    const resumedReport = readReport(path.join(out, 'seed-figure.json'));
    assert.equal(resumedReport.runs.length, 3);
    assert.deepEqual(resumedReport.command.split(' ; ').map((c) => c.includes('--resume')), [false, true], 'a resumed report names both commands');
  });

  it('three-scenarios-split-mnist subset: task-incremental structure and memory strategies run, plots and --compare work', async () => {
    const out = path.join(dir, 'split');
    await bench(['--suite', 'three-scenarios-split-mnist', '--iterations', '3', '--strategies', 'finetune,progressive,dgr+distill', '--scenarios', 'task', '--out', out]);
    const file = path.join(out, 'three-scenarios-split-mnist.json');
    const report = readReport(file);
    assert.deepEqual(report.runs.map((r) => `${r.strategy}/${r.implementationStrategy}/${r.scenario}`), [
      'finetune/finetune/task-incremental',
      'progressive/progressive/task-incremental',
      'dgr+distill/dgr/task-incremental',
    ]);
    for (const run of report.runs) {
      assert.equal(run.accuracyMatrix.length, 5);
      assert.equal(run.averageAccuracyAfterTask.length, 5);
      assert.equal(run.finalAverageAccuracy, run.averageAccuracyAfterTask[4]);
    }
    const progressive = report.runs[1]!;
    assert.ok(progressive.parameters > report.runs[0]!.parameters, 'a column per task');
    for (const name of ['three-scenarios-split-mnist.md', 'three-scenarios-split-mnist-average-accuracy.svg', 'three-scenarios-split-mnist-accuracy-matrices.svg']) {
      assert.ok(fs.statSync(path.join(out, name)).size > 100, name);
    }

    // A peer's report beside ours: same format, another implementation.
    const compare = path.join(dir, 'compare');
    fs.mkdirSync(compare);
    fs.copyFileSync(file, path.join(compare, 'ours.json'));
    const peer = { ...report, implementation: 'peer', runs: report.runs.filter((r) => r.strategy === 'finetune').map((r) => ({ ...r, samplesPerSecond: 12345 })) };
    fs.writeFileSync(path.join(compare, 'peer.json'), JSON.stringify(peer));
    fs.writeFileSync(path.join(compare, 'notes.json'), '{"not": "a report"}');
    const printed = await bench(['--compare', compare, '--out', compare]);
    // Both ran 3 iterations per task: each cell says it is a quicker run than the suite's protocol.
    assert.match(printed, /\| split-mnist \| Task-IL \| finetune \| 87\.2 \| [\d.]+ \(3 it\.\) \| [\d.]+ \(3 it\.\) \| \d+ \| 12345 \|/);
    assert.match(printed, /\| split-mnist \| Task-IL \| progressive \| — \| [\d.]+ \(3 it\.\) \| — \| \d+ \| — \|/);
    assert.ok(fs.existsSync(path.join(compare, 'comparison.md')));

    // Redraw from the report alone.
    const redrawn = path.join(dir, 'redrawn');
    await bench(['--render', file, '--out', redrawn]);
    assert.equal(
      fs.readFileSync(path.join(redrawn, 'three-scenarios-split-mnist-accuracy-matrices.svg'), 'utf8'),
      fs.readFileSync(path.join(out, 'three-scenarios-split-mnist-accuracy-matrices.svg'), 'utf8'),
    );
  });
});
