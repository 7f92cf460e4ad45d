import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Kafka, logLevel, type Message } from 'kafkajs';
import type { PipelineConfig } from '../../src/config/pipeline-config';
import type { Sample } from '../../src/core/types';
import { CheckpointStore } from '../../src/engine/checkpoint-store';
import { runPipeline } from '../../src/engine/run-pipeline';
import { controlMessage, encodeJson } from '../../src/kafka';
import { MetricsServer } from '../../src/metrics/http-server';
import { PerRunMetrics } from '../../src/metrics/per-run-metrics';
import { LifelongMetrics } from '../../src/metrics/prometheus';
import { takeSamples } from '../../src/testing/mnist-tasks';
import { PROVISIONING } from '../../dashboards/generate';
import { kafkaBrokers, kafkaSource, uniqueTopicPrefix } from '../helpers/kafka';
import { AlertmanagerProcess, PrometheusProcess, REPO, RULES_FILE } from '../helpers/prometheus';
import { exportedNames, labelValuesQuery, metricNames, setOperands, substituteVariables, withoutThreshold } from '../helpers/promql';

/**
 * A real Prometheus (Debian's 2.42) scrapes two real daemons and evaluates the alert rules:
 * - a Kafka daemon learning a short stream that exercises every series the dashboards and alerts
 *   read: two split-MNIST topics learned by DGR (replay), durable checkpoints, unlabelled requests
 *   and labelled samples of an ended task (prediction latency), malformed messages (dead letters),
 *   labels that flip within a task (concept drift);
 * - `lifelong run --compare` on an embedded permuted-MNIST stream (whose tasks are known up front:
 *   forward transfer), finetune and EWC side by side.
 * Every panel query, variable and annotation of both dashboards and every alert expression then runs
 * through Prometheus's HTTP API: each must name only metrics the daemons export and return data. And
 * the forgetting alert fires for finetune and not for EWC on the same stream, delivered to a real
 * Alertmanager (Debian's 0.25).
 */

const JOB = 'lifelong';

interface DashboardJson {
  readonly title: string;
  readonly panels: readonly { readonly title: string; readonly targets?: readonly { readonly expr?: string }[] }[];
  readonly templating: { readonly list: readonly { readonly name: string; readonly definition?: string }[] };
  readonly annotations?: { readonly list?: readonly { readonly name: string; readonly expr?: string }[] };
}

/** A query to check: where it comes from, and the PromQL that must return data. */
interface Check {
  readonly where: string;
  readonly expr: string;
}

function dashboardChecks(file: string): Check[] {
  const board = JSON.parse(fs.readFileSync(path.join(REPO, PROVISIONING, 'dashboards', file), 'utf8')) as DashboardJson;
  const checks: Check[] = [];
  for (const panel of board.panels) {
    for (const target of panel.targets ?? []) if (target.expr) checks.push({ where: `${board.title} / panel "${panel.title}"`, expr: target.expr });
  }
  for (const variable of board.templating.list) {
    const query = variable.definition ? labelValuesQuery(variable.definition) : undefined;
    if (query) checks.push({ where: `${board.title} / variable ${variable.name}`, expr: query });
  }
  for (const annotation of board.annotations?.list ?? []) {
    if (annotation.expr) for (const part of setOperands(annotation.expr)) checks.push({ where: `${board.title} / annotation "${annotation.name}"`, expr: withoutThreshold(part) });
  }
  return checks;
}

/** Messages of a task topic: labelled samples, every 10th without its label (a prediction request). */
function messages(samples: readonly Sample[], relabel: (y: string) => string = (y) => y): Message[] {
  return samples.map((s, i) => ({ ...encodeJson({ x: s.x, ...(i % 10 === 9 ? {} : { y: relabel(String(s.y)) }), ...(s.id !== undefined ? { id: s.id } : {}) }) }));
}

/** The quickstart's forgetting demo, shortened: 3 permuted-MNIST tasks of 2000 samples, Domain-IL. */
function forgettingPipeline(): PipelineConfig {
  return {
    name: 'forgetting-alert',
    description: 'finetune forgets, EWC does not',
    seed: 1,
    scenario: 'domain-incremental',
    source: { type: 'permuted-mnist', tasks: 3, samplesPerTask: 2000 },
    model: { hiddenLayers: [100, 100], outputUnits: 0 },
    strategy: { name: 'ewc', params: { lambda: 1000 } },
    training: { batchSize: 32, optimizer: 'adam', learningRate: 0.003, stepsPerBatch: 1, batchTimeoutMs: 1000 },
    evaluation: { probeSize: 300, holdoutEvery: 10, endedTaskLabelled: 'evaluate' },
  };
}

describe('dashboards and alerts against a real Prometheus scraping real daemons (integration)', function () {
  this.timeout(300_000);
  let prometheus: PrometheusProcess;
  let alertmanager: AlertmanagerProcess | undefined;
  const servers: MetricsServer[] = [];
  let tmp: string | undefined;
  const abort = new AbortController();
  let kafkaRun: Promise<unknown> | undefined;
  let failure: unknown;
  const kafkaMetrics = new LifelongMetrics();
  const compared = new PerRunMetrics({ labelByStrategy: true });
  /** host:port of the two daemons' /metrics. */
  const targets: string[] = [];

  before(async () => {
    const brokers = await kafkaBrokers();
    const prefix = uniqueTopicPrefix('dashboards');
    const [first, second] = [`${prefix}.split-mnist-0-1`, `${prefix}.split-mnist-2-3`];
    const { samples } = await takeSamples({ dataset: 'split-mnist', tasks: 2, samplesPerTask: 600, seed: 5, scenario: 'class-incremental' });
    const ofTask = (name: string) => samples.filter((s) => s.task === name);
    const [zeroOne, twoThree] = [ofTask('split-mnist-0-1'), ofTask('split-mnist-2-3')];
    assert.equal(zeroOne.length, 600);

    const kafka = new Kafka({ brokers, clientId: `${prefix}-producer`, logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    const send = async (topic: string, batch: readonly Message[]) => {
      for (let i = 0; i < batch.length; i += 200) await producer.send({ topic, messages: batch.slice(i, i + 200) });
    };
    try {
      // Task 0-1: 300 samples, then 200 whose labels flip (the concept changes within the task),
      // then malformed messages, then its end; task 2-3; then labelled samples of the ended 0-1.
      await send(first, [
        ...messages(zeroOne.slice(0, 300)),
        ...messages(zeroOne.slice(300, 500), (y) => (y === '0' ? '1' : '0')),
        { value: Buffer.from('{not json') },
        { value: Buffer.from('{"x": [1, 2, 3], "y": "0"}') },
        { ...controlMessage() },
      ]);
      await send(second, [...messages(twoThree.slice(0, 400)), { ...controlMessage() }]);
      await send(first, messages(zeroOne.slice(500, 600)));
    } finally {
      await producer.disconnect();
    }

    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lifelong-dashboards-'));
    const pipeline: PipelineConfig = {
      name: 'dashboard-queries',
      description: 'every series of the dashboards and alerts',
      seed: 3,
      scenario: 'class-incremental',
      source: kafkaSource(brokers, prefix, { maxQueued: 2000, commitIntervalMs: 500 }),
      model: { hiddenLayers: [64], outputUnits: 4 },
      strategy: { name: 'dgr', params: { generatorHidden: [64], latent: 16 } },
      training: { batchSize: 32, optimizer: 'adam', learningRate: 0.003, stepsPerBatch: 1, batchTimeoutMs: 100 },
      evaluation: { probeSize: 100, holdoutEvery: 10, endedTaskLabelled: 'evaluate' },
    };
    const kafkaServer = new MetricsServer({ metrics: kafkaMetrics });
    const comparedServer = new MetricsServer({ metrics: compared });
    servers.push(kafkaServer, comparedServer);
    targets.push(`127.0.0.1:${await kafkaServer.start('127.0.0.1', 0)}`, `127.0.0.1:${await comparedServer.start('127.0.0.1', 0)}`);
    alertmanager = await AlertmanagerProcess.start();
    prometheus = await PrometheusProcess.start({ jobs: { [JOB]: targets }, ruleFiles: [RULES_FILE], alertmanager: alertmanager.address });

    kafkaRun = runPipeline({
      pipeline,
      backend: 'test',
      metrics: kafkaMetrics,
      signal: abort.signal,
      durable: { store: new CheckpointStore(path.join(tmp, 'checkpoints'), 2), everySamples: 100, everySeconds: 0, fresh: true },
    });
    kafkaRun.catch((error: unknown) => (failure = error));
    // As `lifelong run --pipeline P --compare finetune` does: one run after the other on the same
    // stream, each publishing under its strategy label; /metrics keeps serving the finished runs.
    for (const strategy of [{ name: 'finetune', params: {} }, { name: 'ewc', params: { lambda: 1000 } }]) {
      await runPipeline({ pipeline: forgettingPipeline(), backend: 'test', metrics: compared.startRun(strategy.name), strategyOverride: strategy });
    }

    // Both daemons done with their streams, and all of it scraped.
    await prometheus.waitFor('the streams learned and scraped', async () => {
      if (failure !== undefined) assert.fail(`the Kafka daemon failed: ${(failure as Error).stack}`);
      const learned = await prometheus.query(`lifelong_tasks_learned{job="${JOB}"}`);
      const evaluated = await prometheus.query(`sum(lifelong_samples_total{job="${JOB}",kind="evaluated"}) >= 90`);
      const tasks = Object.fromEntries(learned.map((s) => [s.metric['strategy'] ?? 'dgr', Number(s.value[1])]));
      return tasks['dgr'] === 2 && tasks['finetune'] === 3 && tasks['ewc'] === 3 && evaluated.length > 0 ? true : undefined;
    }, 180_000);
    // A few more scrapes and rule evaluations over the final state.
    await new Promise((r) => setTimeout(r, 3000));
  });

  after(async () => {
    abort.abort();
    await kafkaRun?.catch(() => undefined);
    await prometheus?.stop();
    await alertmanager?.stop();
    for (const server of servers) await server.close();
    if (tmp !== undefined) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('every panel, variable, annotation and alert expression names exported metrics only, and returns data', async () => {
    // What the daemons serve on /metrics, as Prometheus scrapes it.
    const expositions = await Promise.all(targets.map(async (target) => (await fetch(`http://${target}/metrics`)).text()));
    const exported = new Set(expositions.flatMap((text) => [...exportedNames(text)]));
    const alertChecks: Check[] = (await prometheus.rules())
      .filter((rule) => rule.type === 'alerting')
      .flatMap((rule) => setOperands(rule.query).map((part) => ({ where: `alert ${rule.name}`, expr: withoutThreshold(part) })));
    assert.ok(alertChecks.length >= 12, `the rules file's alerts were loaded: ${alertChecks.map((c) => c.where).join(', ')}`);
    const checks = [...dashboardChecks('lifelong-pipeline.json'), ...dashboardChecks('lifelong-fleet.json'), ...alertChecks];

    const problems: string[] = [];
    let answered = 0;
    for (const check of checks) {
      const unexported = metricNames(check.expr).filter((name) => !exported.has(name));
      if (unexported.length > 0) {
        problems.push(`${check.where}: names ${unexported.join(', ')}, which the daemon does not export\n    ${check.expr}`);
        continue;
      }
      const expr = substituteVariables(check.expr, JOB);
      const result = await prometheus.query(expr);
      if (result.length === 0) problems.push(`${check.where}: no data\n    ${expr}`);
      else answered += 1;
    }
    console.log(`      ${answered} of ${checks.length} queries returned data`);
    assert.deepEqual(problems, [], `queries failing:\n${problems.join('\n')}`);
  });

  it('the forgetting alert fires for finetune and not for EWC on the same stream; Alertmanager receives it', async () => {
    const forgetting = await prometheus.query(`max by (strategy) (lifelong_forgetting_ratio{job="${JOB}",strategy!=""})`);
    const worst = Object.fromEntries(forgetting.map((s) => [s.metric['strategy'], Number(s.value[1])]));
    console.log(`      worst forgetting: finetune ${worst['finetune']?.toFixed(3)}, ewc ${worst['ewc']?.toFixed(3)}`);
    const received = await prometheus.waitFor('Alertmanager to receive LifelongForgetting for finetune', async () => {
      const hit = alertmanager!.received.find((a) => a.labels['alertname'] === 'LifelongForgetting' && a.labels['strategy'] === 'finetune' && a.status === 'firing');
      return hit;
    });
    assert.ok(received.annotations['runbook'], 'the alert carries its runbook line');
    const firing = (await prometheus.alerts()).filter((a) => a.labels['alertname'] === 'LifelongForgetting' && a.state === 'firing');
    assert.ok(firing.some((a) => a.labels['strategy'] === 'finetune'));
    assert.deepEqual(firing.filter((a) => a.labels['strategy'] === 'ewc'), [], 'EWC keeps its tasks: no forgetting alert');
    assert.equal(alertmanager!.received.some((a) => a.labels['alertname'] === 'LifelongForgetting' && a.labels['strategy'] === 'ewc'), false);
  });
});
