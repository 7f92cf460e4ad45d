import { freePort } from '../helpers/ports';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from '../../src/cli/main';
import { parseExposition } from '../helpers/exposition';

const REPO = path.resolve(__dirname, '../../..');


/** A small copy of a shipped pipeline: same keys, fewer samples. */
function shrink(file: string, dir: string, samplesPerTask: number, tasks: number): string {
  const config = JSON.parse(fs.readFileSync(path.join(REPO, 'pipelines', file), 'utf8'));
  config.source.samplesPerTask = samplesPerTask;
  config.source.tasks = tasks;
  config.training.stepsPerBatch = 1;
  config.evaluation.probeSize = 200;
  const out = path.join(dir, file);
  fs.writeFileSync(out, JSON.stringify(config));
  return out;
}

describe('lifelong run (CLI, end to end on embedded MNIST)', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifelong-cli-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('runs the split-MNIST EWC class-incremental pipeline, writes the report and serves /metrics while it runs', async () => {
    const pipeline = shrink('split-mnist-ewc-class.json', dir, 1500, 5);
    const report = path.join(dir, 'r.json');
    const port = await freePort();
    const scrapes: string[] = [];
    let running = true;
    const run = main(['run', '--pipeline', pipeline, '--report', report, '--metrics-port', String(port)]).finally(() => {
      running = false;
    });
    // Scrape the live endpoint until the run ends.
    while (running) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/metrics`);
        if (res.ok) scrapes.push(await res.text());
        const health = await fetch(`http://127.0.0.1:${port}/healthz`);
        assert.equal(health.status, 200);
      } catch {
        // not listening yet, or closed at the end
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(await run, 0);

    const json = JSON.parse(fs.readFileSync(report, 'utf8'));
    for (const key of ['pipeline', 'strategy', 'scenario', 'backend', 'tasks', 'accuracyMatrix', 'averageAccuracy', 'backwardTransfer', 'forwardTransfer', 'forgetting', 'samplesTrained', 'durationSeconds', 'samplesPerSecond', 'parameters']) {
      assert.ok(key in json, `report lacks ${key}`);
    }
    assert.equal(json.strategy, 'ewc');
    assert.equal(json.scenario, 'class-incremental');
    assert.equal(json.tasks.length, 5);
    assert.equal(json.accuracyMatrix.length, 5);
    assert.equal(json.samplesTrained, 5 * 1500);
    assert.ok(json.accuracyMatrix[4][4] > 0.9, 'the last task is learned');
    assert.ok(json.samplesPerSecond > 0);

    const during = scrapes.find((s) => /lifelong_samples_total\{task="split-mnist-[0-9-]+",kind="trained"\} [1-9]/.test(s));
    assert.ok(during, `no scrape showed trained samples (${scrapes.length} scrapes)`);
    const last = scrapes[scrapes.length - 1] as string;
    for (const name of [
      'lifelong_samples_total',
      'lifelong_task_accuracy_ratio',
      'lifelong_accuracy_matrix_ratio',
      'lifelong_forgetting_ratio',
      'lifelong_average_accuracy_ratio',
      'lifelong_backward_transfer_ratio',
      'lifelong_prequential_accuracy_ratio',
      'lifelong_semantic_drift',
      'lifelong_parameters',
      'lifelong_training_step_duration_seconds_bucket',
      'lifelong_current_task_index',
      'lifelong_backend_info',
    ]) {
      assert.ok(scrapes.some((s) => s.includes(`${name}`)), `no scrape has ${name}`);
    }
    assert.ok(last.includes('lifelong_backend_info{backend="'), 'backend exported');
  });

  it('with --compare, serves every run on /metrics under its strategy label, the finished run at its final counts', async () => {
    const pipeline = shrink('quickstart.json', dir, 600, 2);
    const report = path.join(dir, 'compare.json');
    const port = await freePort();
    const scrapes: string[] = [];
    let running = true;
    const run = main(['run', '--pipeline', pipeline, '--compare', 'finetune', '--report', report, '--metrics-port', String(port)]).finally(() => {
      running = false;
    });
    while (running) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/metrics`);
        if (res.ok) scrapes.push(await res.text());
      } catch {
        // not listening yet, or closed at the end
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(await run, 0);
    const json = JSON.parse(fs.readFileSync(report, 'utf8'));
    assert.equal(json.strategy, 'ewc');
    assert.deepEqual(json.comparisons.map((c: { strategy: string }) => c.strategy), ['finetune']);

    const trained = (text: string, strategy: string): number =>
      parseExposition(text)
        .filter((s) => s.name === 'lifelong_samples_total' && s.labels['kind'] === 'trained' && s.labels['strategy'] === strategy)
        .reduce((sum, s) => sum + s.value, 0);
    const both = scrapes.filter((text) => trained(text, 'finetune') > 0);
    assert.ok(both.length > 0, `no scrape showed finetune training (${scrapes.length} scrapes)`);
    for (const text of both) {
      assert.equal(trained(text, 'ewc'), json.samplesTrained, 'the first run stays at its final count while the second runs');
      assert.ok(!/^lifelong_samples_total\{(?![^}]*strategy=)/m.test(text), 'every sample series has a strategy label');
    }
    const last = parseExposition(both[both.length - 1] as string);
    for (const strategy of ['ewc', 'finetune']) {
      assert.ok(last.some((s) => s.name === 'lifelong_parameters' && s.labels['strategy'] === strategy), `lifelong_parameters of ${strategy}`);
    }
  });

  it('rejects a pipeline with a misspelt key, naming the key and the file, and exits 3 (bad config)', async () => {
    const config = JSON.parse(fs.readFileSync(path.join(REPO, 'pipelines', 'quickstart.json'), 'utf8'));
    config.training.batchsize = 10;
    const file = path.join(dir, 'bad.json');
    fs.writeFileSync(file, JSON.stringify(config));
    const errors: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string) => {
      errors.push(String(chunk));
      return true;
    }) as typeof process.stderr.write;
    try {
      assert.equal(await main(['run', '--pipeline', file, '--no-metrics']), 3, 'exit code 3: bad config');
    } finally {
      process.stderr.write = write;
    }
    assert.match(errors.join(''), /training\.batchsize/);
    assert.match(errors.join(''), /bad\.json/);
  });
});
