import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as tf from '@tensorflow/tfjs';
import { LifelongMetrics } from '../../src/metrics/prometheus';
import { MetricsServer } from '../../src/metrics/http-server';
import { PerRunMetrics } from '../../src/metrics/per-run-metrics';
import { AccuracyMatrix } from '../../src/metrics/continual';
import { DriftTracker } from '../../src/metrics/drift';
import { InvariantError, LifelongError } from '../../src/core/errors';
import { parseExposition, type Series } from '../helpers/exposition';



function values(all: Series[], name: string, labels: Record<string, string> = {}): number[] {
  return all
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .map((s) => s.value);
}

function value(all: Series[], name: string, labels: Record<string, string> = {}): number {
  const found = values(all, name, labels);
  assert.equal(found.length, 1, `expected one ${name}${JSON.stringify(labels)}, found ${found.length}`);
  return found[0] as number;
}

interface Response {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

function get(url: string, agent?: http.Agent, method = 'GET'): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { agent, method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('LifelongMetrics', () => {
  it('exports the tensor count at each scrape, so a leak shows on a dashboard', async () => {
    const m = new LifelongMetrics();
    const before = value(parseExposition(await m.metrics()), 'lifelong_tensors', {});
    assert.equal(before, tf.memory().numTensors);
    const held = [tf.zeros([2]), tf.ones([3])];
    try {
      assert.equal(value(parseExposition(await m.metrics()), 'lifelong_tensors', {}), (before as number) + 2);
    } finally {
      tf.dispose(held);
    }
    assert.equal(value(parseExposition(await m.metrics()), 'lifelong_tensors', {}), before);
  });

  it('lets two instances, default metrics included, coexist with separate values', async () => {
    const a = new LifelongMetrics();
    const b = new LifelongMetrics();
    a.countSamples('digits-0-1', 'trained', 5);
    b.countSamples('digits-0-1', 'trained', 2);
    const sa = parseExposition(await a.metrics());
    const sb = parseExposition(await b.metrics());
    assert.equal(value(sa, 'lifelong_samples_total', { task: 'digits-0-1', kind: 'trained' }), 5);
    assert.equal(value(sb, 'lifelong_samples_total', { task: 'digits-0-1', kind: 'trained' }), 2);
    for (const s of [sa, sb]) {
      assert.ok(values(s, 'lifelong_process_cpu_user_seconds_total').length === 1, 'default metrics prefixed');
      assert.ok(s.every((x) => x.name.startsWith('lifelong_')), 'every name has the prefix');
    }
    assert.match(a.contentType, /^text\/plain; version=0\.0\.4/);
  });

  it('counts samples by task and kind, rejects unknown kinds and bad counts', async () => {
    const m = new LifelongMetrics({ defaultMetrics: false });
    m.countSamples('t', 'trained', 3);
    m.countSamples('t', 'trained');
    m.countSamples('t', 'held-out', 2);
    m.countSamples('t', 'evaluated', 0);
    m.countSamples(undefined, 'rejected');
    const s = parseExposition(await m.metrics());
    assert.equal(value(s, 'lifelong_samples_total', { task: 't', kind: 'trained' }), 4);
    assert.equal(value(s, 'lifelong_samples_total', { task: 't', kind: 'held-out' }), 2);
    assert.equal(value(s, 'lifelong_samples_total', { task: 't', kind: 'evaluated' }), 0);
    assert.equal(value(s, 'lifelong_samples_total', { task: '', kind: 'rejected' }), 1);
    assert.throws(() => m.countSamples('t', 'bogus' as never), LifelongError);
    assert.throws(() => m.countSamples('t', 'trained', -1), LifelongError);
    assert.throws(() => m.countSamples('t', 'trained', 1.5), LifelongError);
  });

  it('counts rejections by reason', async () => {
    const m = new LifelongMetrics({ defaultMetrics: false });
    m.countRejection('non-finite-update', 32);
    m.countRejection('bad-json');
    m.countRejection('bad-json');
    const s = parseExposition(await m.metrics());
    assert.equal(value(s, 'lifelong_rejections_total', { reason: 'non-finite-update' }), 32);
    assert.equal(value(s, 'lifelong_rejections_total', { reason: 'bad-json' }), 2);
  });

  it('exports the newest maxTasks tasks: older ones lose their gauges, their counts move to task="_other"', async () => {
    const m = new LifelongMetrics({ defaultMetrics: false, maxTasks: 2 });
    const names = ['t0', 't1', 't2', 't3'];
    const matrix = new AccuracyMatrix();
    for (const [i, task] of names.entries()) {
      m.setCurrentTask(task, i);
      m.countSamples(task, 'trained', 10 + i);
      m.countSamples(task, 'rejected', 1);
      m.setPrequential(task, 0.5, 0.5);
      m.setLoss(task, 0.1);
      matrix.setRow(i, names.slice(0, i + 1).map(() => 0.9));
      m.setAccuracyMatrix(names, matrix);
      m.setParametersAfterTask(task, 100);
      m.setStrategyDiagnostics(names.slice(0, i + 1).map((t) => ({ name: 'units_added', help: 'units added per task', labels: { task: t }, value: 1 })));
    }
    m.countSamples('t0', 'evaluated', 5); // a retired task's later samples count under _other too
    m.countSamples(undefined, 'rejected'); // the unknown task takes no place
    const s = parseExposition(await m.metrics());
    const tasksOf = (name: string, label = 'task') => [...new Set(s.filter((x) => x.name === name).map((x) => x.labels[label]))].sort();
    assert.deepEqual(tasksOf('lifelong_samples_total'), ['', '_other', 't2', 't3']);
    assert.equal(value(s, 'lifelong_samples_total', { task: '_other', kind: 'trained' }), 10 + 11);
    assert.equal(value(s, 'lifelong_samples_total', { task: '_other', kind: 'rejected' }), 2);
    assert.equal(value(s, 'lifelong_samples_total', { task: '_other', kind: 'evaluated' }), 5);
    assert.equal(value(s, 'lifelong_samples_total', { task: 't3', kind: 'trained' }), 13);
    for (const gauge of ['lifelong_prequential_accuracy_ratio', 'lifelong_training_loss', 'lifelong_task_accuracy_ratio', 'lifelong_parameters_after_task', 'lifelong_strategy_units_added']) {
      assert.deepEqual(tasksOf(gauge), ['t2', 't3'], gauge);
    }
    assert.deepEqual(tasksOf('lifelong_accuracy_matrix_ratio', 'learned_task'), ['t2', 't3']);
    assert.deepEqual(tasksOf('lifelong_accuracy_matrix_ratio', 'evaluated_task'), ['t2', 't3']);
    assert.equal(values(s, 'lifelong_accuracy_matrix_ratio').length, 3, 'R[2][2], R[3][2], R[3][3]');
    assert.equal(value(s, 'lifelong_average_accuracy_ratio'), 0.9, 'what the matrix implies is computed over every task');
  });

  it('publishes the accuracy matrix and the metrics derived from it', async () => {
    const m = new LifelongMetrics({ defaultMetrics: false });
    const before = parseExposition(await m.metrics());
    for (const name of ['average_accuracy', 'backward_transfer', 'forward_transfer', 'average_forgetting']) {
      assert.deepEqual(values(before, `lifelong_${name}_ratio`), [], `${name} absent while unknown`);
    }
    const names = ['t0', 't1', 't2'];
    const matrix = new AccuracyMatrix();
    matrix.setBaseline(1, 0.1);
    matrix.setBaseline(2, 0.2);
    matrix.setRow(0, [0.9, 0.1, null]);
    m.setAccuracyMatrix(names, matrix);
    let s = parseExposition(await m.metrics());
    assert.equal(value(s, 'lifelong_average_accuracy_ratio'), 0.9);
    assert.deepEqual(values(s, 'lifelong_backward_transfer_ratio'), [], 'BWT unknown after one task');
    assert.equal(values(s, 'lifelong_accuracy_matrix_ratio').length, 2, 'null entry not exported');

    matrix.setRow(1, [0.95, 0.8, 0.3]);
    matrix.setRow(2, [0.6, 0.6, 0.9]);
    m.setAccuracyMatrix(names, matrix);
    s = parseExposition(await m.metrics());
    assert.equal(values(s, 'lifelong_accuracy_matrix_ratio').length, 8);
    assert.equal(value(s, 'lifelong_accuracy_matrix_ratio', { learned_task: 't1', evaluated_task: 't0' }), 0.95);
    assert.equal(value(s, 'lifelong_accuracy_matrix_ratio', { learned_task: 't2', evaluated_task: 't2' }), 0.9);
    assert.equal(value(s, 'lifelong_task_accuracy_ratio', { task: 't0' }), 0.6);
    assert.equal(value(s, 'lifelong_average_accuracy_ratio'), matrix.averageAccuracy());
    assert.equal(value(s, 'lifelong_backward_transfer_ratio'), matrix.backwardTransfer());
    assert.equal(value(s, 'lifelong_forward_transfer_ratio'), matrix.forwardTransfer());
    assert.equal(value(s, 'lifelong_average_forgetting_ratio'), matrix.averageForgetting());
    const forgetting = matrix.forgetting();
    assert.equal(value(s, 'lifelong_forgetting_ratio', { task: 't0' }), forgetting[0]);
    assert.equal(value(s, 'lifelong_forgetting_ratio', { task: 't1' }), forgetting[1]);
    assert.deepEqual(values(s, 'lifelong_forgetting_ratio', { task: 't2' }), []);

    assert.throws(() => m.setAccuracyMatrix(['t0', 't1'], matrix), /task index 2/);
    s = parseExposition(await m.metrics());
    assert.equal(values(s, 'lifelong_accuracy_matrix_ratio').length, 8, 'a refused update changes nothing');
  });

  it('publishes drift with task names, prequential, loss, task, backend, version and step times', async () => {
    const m = new LifelongMetrics({ defaultMetrics: false });
    const tracker = new DriftTracker();
    tracker.snapshot(0, new Map([['dense_1', Float32Array.from([3, 4])], ['head', Float32Array.from([1])]]));
    m.setDrift(tracker.drift(new Map([['dense_1', Float32Array.from([0, 0])], ['head', Float32Array.from([1, 2])]])), ['first']);
    m.setPrequential('first', 0.75, 0.7);
    m.setLoss('first', 0.25);
    m.setCurrentTask('first', 0);
    m.setCurrentTask('second', 1);
    m.setTasksLearned(1);
    m.setBackend('cpu');
    m.setBackend('wasm');
    m.setModelVersion(42);
    m.setParameters(1234);
    m.observeTrainingStep(0.003);
    m.observeTrainingStep(20);
    assert.throws(() => m.observeTrainingStep(-1), LifelongError);
    const s = parseExposition(await m.metrics());
    assert.equal(value(s, 'lifelong_semantic_drift', { layer: 'dense_1', since_task: 'first' }), 5);
    assert.equal(value(s, 'lifelong_semantic_drift_relative', { layer: 'dense_1', since_task: 'first' }), 1);
    assert.deepEqual(values(s, 'lifelong_semantic_drift', { layer: 'head' }), [], 'grown layer not exported');
    assert.equal(value(s, 'lifelong_prequential_accuracy_ratio', { task: 'first' }), 0.75);
    assert.equal(value(s, 'lifelong_prequential_fading_accuracy_ratio', { task: 'first' }), 0.7);
    assert.equal(value(s, 'lifelong_training_loss', { task: 'first' }), 0.25);
    assert.deepEqual(values(s, 'lifelong_current_task_info'), [1]);
    assert.equal(value(s, 'lifelong_current_task_info', { task: 'second' }), 1);
    assert.equal(value(s, 'lifelong_current_task_index'), 1);
    assert.equal(value(s, 'lifelong_tasks_learned'), 1);
    assert.deepEqual(values(s, 'lifelong_backend_info'), [1]);
    assert.equal(value(s, 'lifelong_backend_info', { backend: 'wasm' }), 1);
    assert.equal(value(s, 'lifelong_model_version'), 42);
    assert.equal(value(s, 'lifelong_parameters'), 1234);
    assert.equal(value(s, 'lifelong_training_step_duration_seconds_count'), 2);
    assert.equal(value(s, 'lifelong_training_step_duration_seconds_bucket', { le: '0.001' }), 0);
    assert.equal(value(s, 'lifelong_training_step_duration_seconds_bucket', { le: '0.005' }), 1);
    assert.equal(value(s, 'lifelong_training_step_duration_seconds_bucket', { le: '10' }), 1);
    assert.equal(value(s, 'lifelong_training_step_duration_seconds_bucket', { le: '+Inf' }), 2);

    // A new drift result replaces the old one; without names since_task is the index.
    m.setDrift([{ layer: 'dense_2', sinceTask: 3, l2: 0.5, relative: null }]);
    const s2 = parseExposition(await m.metrics());
    assert.deepEqual(values(s2, 'lifelong_semantic_drift', { layer: 'dense_1' }), []);
    assert.equal(value(s2, 'lifelong_semantic_drift', { layer: 'dense_2', since_task: '3' }), 0.5);
  });

  it("publishes a strategy's diagnostics as lifelong_strategy_* gauges, replacing series that disappeared", async () => {
    const m = new LifelongMetrics({ defaultMetrics: false });
    m.setParametersAfterTask('first', 100);
    m.setParametersAfterTask('second', 250);
    m.setStrategyDiagnostics([
      { name: 'den_units', help: 'Units per layer.', labels: { layer: 'hidden-1' }, value: 110 },
      { name: 'den_units', help: 'Units per layer.', labels: { layer: 'hidden-2' }, value: 90 },
      { name: 'generator_loss', help: 'Loss of the generator.', value: 0.5 },
      { name: 'Not-A-Metric', help: 'invalid name', value: 1 },
    ]);
    m.setStrategyDiagnostics([
      { name: 'den_units', help: 'Units per layer.', labels: { layer: 'hidden-1', unexpected: 'x' }, value: 120 },
    ]);
    const s = parseExposition(await m.metrics());
    assert.equal(value(s, 'lifelong_parameters_after_task', { task: 'first' }), 100);
    assert.equal(value(s, 'lifelong_parameters_after_task', { task: 'second' }), 250);
    assert.equal(value(s, 'lifelong_strategy_den_units', { layer: 'hidden-1' }), 120);
    assert.deepEqual(values(s, 'lifelong_strategy_den_units', { layer: 'hidden-2' }), [], 'a vanished series is removed');
    assert.deepEqual(values(s, 'lifelong_strategy_den_units', { unexpected: 'x' }), [], 'labels outside the first set are dropped');
    assert.equal(value(s, 'lifelong_strategy_generator_loss'), 0.5, 'a name absent from a later call keeps its last value');
    assert.ok(!s.some((x) => x.name.toLowerCase().includes('not')), 'an invalid name is not exported');
  });
});

/** Fails fast instead of hanging the run when a close never completes. */
async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

describe('MetricsServer', () => {
  let metrics: LifelongMetrics;
  let server: MetricsServer | undefined;
  beforeEach(() => {
    metrics = new LifelongMetrics({ defaultMetrics: false });
  });
  afterEach(async () => {
    const closing = server?.close();
    server = undefined;
    if (closing !== undefined) await withDeadline(closing, 3000, 'close()');
  });

  it('serves /metrics and /healthz on an ephemeral port, 404 elsewhere', async () => {
    let healthy = true;
    server = new MetricsServer({
      metrics,
      health: () => ({ healthy, details: { task: 'digits-0-1' } }),
    });
    const port = await server.start('127.0.0.1', 0);
    assert.ok(port > 0);
    assert.equal(server.port, port);
    metrics.countSamples('digits-0-1', 'predicted', 7);
    const base = `http://127.0.0.1:${port}`;

    const scrape = await get(`${base}/metrics`);
    assert.equal(scrape.status, 200);
    assert.equal(scrape.headers['content-type'], metrics.contentType);
    assert.equal(value(parseExposition(scrape.body), 'lifelong_samples_total', { task: 'digits-0-1', kind: 'predicted' }), 7);

    const ok = await get(`${base}/healthz`);
    assert.equal(ok.status, 200);
    assert.match(ok.headers['content-type'] ?? '', /^application\/json/);
    const okBody = JSON.parse(ok.body);
    assert.equal(okBody.status, 'ok');
    assert.equal(okBody.task, 'digits-0-1');
    assert.equal(typeof okBody.uptimeSeconds, 'number');

    healthy = false;
    const sick = await get(`${base}/healthz`);
    assert.equal(sick.status, 503);
    assert.equal(JSON.parse(sick.body).status, 'unhealthy');

    assert.equal((await get(`${base}/nope`)).status, 404);
    assert.equal((await get(`${base}/`)).status, 404);
    assert.equal((await get(`${base}/metrics`, undefined, 'POST')).status, 405);
    assert.equal((await get(`${base}/metrics?x=1`)).status, 200);
  });

  it('answers 503 when the health check throws, 200 with no health check', async () => {
    server = new MetricsServer({
      metrics,
      health: () => {
        throw new Error('engine stalled');
      },
    });
    const port = await server.start();
    const res = await get(`http://127.0.0.1:${port}/healthz`);
    assert.equal(res.status, 503);
    assert.equal(JSON.parse(res.body).error, 'engine stalled');
    await server.close();

    server = new MetricsServer({ metrics });
    const port2 = await server.start();
    assert.equal((await get(`http://127.0.0.1:${port2}/healthz`)).status, 200);
  });

  it('closes twice safely and promptly despite a keep-alive client', async () => {
    server = new MetricsServer({ metrics, closeGraceMs: 5000 });
    const port = await server.start();
    const agent = new http.Agent({ keepAlive: true });
    try {
      assert.equal((await get(`http://127.0.0.1:${port}/metrics`, agent)).status, 200);
      assert.equal(Object.keys(agent.freeSockets).length, 1, 'the client keeps its connection open');
      const started = Date.now();
      await withDeadline(server.close(), 3000, 'close()');
      await withDeadline(server.close(), 3000, 'second close()');
      const elapsed = Date.now() - started;
      assert.ok(elapsed < 1000, `close took ${elapsed} ms`);
      await assert.rejects(get(`http://127.0.0.1:${port}/metrics`));
    } finally {
      agent.destroy();
    }
  });

  it('cuts a hung request at the close deadline', async () => {
    server = new MetricsServer({ metrics, health: () => new Promise(() => undefined), closeGraceMs: 200 });
    const port = await server.start();
    const hung = get(`http://127.0.0.1:${port}/healthz`).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 50));
    const started = Date.now();
    await withDeadline(server.close(), 3000, 'close() with a hung request');
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 150 && elapsed < 1500, `close took ${elapsed} ms`);
    assert.ok((await hung) instanceof Error, 'the hung request was cut');
  });

  it('refuses a port already in use with a LifelongError', async () => {
    server = new MetricsServer({ metrics });
    const port = await server.start();
    const second = new MetricsServer({ metrics });
    await assert.rejects(second.start('127.0.0.1', port), LifelongError);
    await second.close();
  });
});

describe('PerRunMetrics (lifelong run and its --compare runs on one /metrics)', () => {
  /** The HELP lines of an exposition, by metric name: one per family in a valid exposition. */
  function helpCounts(text: string): Map<string, number> {
    const counts = new Map<string, number>();
    for (const line of text.split('\n')) {
      const name = /^# HELP (\S+) /.exec(line)?.[1];
      if (name !== undefined) counts.set(name, (counts.get(name) ?? 0) + 1);
    }
    return counts;
  }

  it('labels a strategy on every series of a LifelongMetrics given one, and none without', async () => {
    const labelled = new LifelongMetrics({ defaultMetrics: false, strategy: 'ewc' });
    labelled.countSamples('t', 'trained', 2);
    labelled.setBackend('wasm');
    labelled.observeTrainingStep(0.01);
    const series = parseExposition(await labelled.metrics());
    assert.ok(series.length > 0);
    for (const s of series) assert.equal(s.labels['strategy'], 'ewc', `${s.name} ${JSON.stringify(s.labels)}`);
    assert.equal(value(series, 'lifelong_samples_total', { task: 't', kind: 'trained', strategy: 'ewc' }), 2);

    const plain = new LifelongMetrics({ defaultMetrics: false });
    plain.countSamples('t', 'trained', 2);
    assert.ok(parseExposition(await plain.metrics()).every((s) => !('strategy' in s.labels)));
  });

  it('publishes each run under its strategy, side by side, the finished run at its final values', async () => {
    const runs = new PerRunMetrics({ labelByStrategy: true });
    const ewc = runs.startRun('ewc');
    ewc.countSamples('digits-0-1', 'trained', 100);
    ewc.setParameters(1000);
    ewc.observeTrainingStep(0.002);
    const finetune = runs.startRun('finetune');
    finetune.countSamples('digits-0-1', 'trained', 30);
    finetune.setParameters(900);
    finetune.observeTrainingStep(0.2);

    const text = await runs.metrics();
    const series = parseExposition(text);
    assert.equal(value(series, 'lifelong_samples_total', { task: 'digits-0-1', kind: 'trained', strategy: 'ewc' }), 100);
    assert.equal(value(series, 'lifelong_samples_total', { task: 'digits-0-1', kind: 'trained', strategy: 'finetune' }), 30);
    assert.equal(value(series, 'lifelong_parameters', { strategy: 'ewc' }), 1000);
    assert.equal(value(series, 'lifelong_parameters', { strategy: 'finetune' }), 900);
    assert.equal(value(series, 'lifelong_training_step_duration_seconds_bucket', { le: '0.005', strategy: 'ewc' }), 1);
    assert.equal(value(series, 'lifelong_training_step_duration_seconds_bucket', { le: '0.005', strategy: 'finetune' }), 0);
    for (const [name, n] of helpCounts(text)) assert.equal(n, 1, `${name} has ${n} HELP lines`);

    // Process metrics are the process's, not a run's: once, without a strategy label.
    const process = series.filter((s) => s.name.startsWith('lifelong_process_') || s.name.startsWith('lifelong_nodejs_') || s.name === 'lifelong_tensors');
    assert.ok(process.length > 0, 'process metrics served');
    assert.ok(process.every((s) => !('strategy' in s.labels)));
    assert.equal(values(series, 'lifelong_process_cpu_user_seconds_total').length, 1);
    assert.equal(values(series, 'lifelong_process_start_time_seconds').length, 1);
    assert.ok(series.filter((s) => !process.includes(s)).every((s) => s.labels['strategy'] === 'ewc' || s.labels['strategy'] === 'finetune'));
    assert.match(runs.contentType, /^text\/plain; version=0\.0\.4/);
  });

  it('without comparisons serves the one run unlabelled, and refuses runs that would share series', async () => {
    const single = new PerRunMetrics({ labelByStrategy: false });
    single.startRun('ewc').countSamples('t', 'trained', 4);
    const series = parseExposition(await single.metrics());
    assert.equal(value(series, 'lifelong_samples_total', { task: 't', kind: 'trained' }), 4);
    assert.ok(series.every((s) => !('strategy' in s.labels)));
    assert.throws(() => single.startRun('finetune'), InvariantError);

    const labelled = new PerRunMetrics({ labelByStrategy: true });
    labelled.startRun('ewc');
    assert.throws(() => labelled.startRun('ewc'), InvariantError);
  });
});
