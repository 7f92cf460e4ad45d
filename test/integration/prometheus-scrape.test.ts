import { freePort } from '../helpers/ports';
import { findBinary } from '../helpers/prometheus';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LifelongMetrics } from '../../src/metrics/prometheus';
import { MetricsServer } from '../../src/metrics/http-server';
import { PerRunMetrics } from '../../src/metrics/per-run-metrics';

/**
 * A real Prometheus (the Debian `prometheus` package, 2.42) scrapes the real MetricsServer every
 * second; the test reads the scraped values back through Prometheus's query API.
 */

const WAIT_MS = 30_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface VectorSample {
  readonly metric: Record<string, string>;
  readonly value: [number, string];
}

describe('Prometheus scraping the metrics endpoint (integration)', function () {
  this.timeout(90_000);

  const metrics = new LifelongMetrics();
  const server = new MetricsServer({ metrics });
  // A second target, as \`lifelong run --compare\` serves it: two runs under their strategy labels.
  const compared = new PerRunMetrics({ labelByStrategy: true });
  const comparedServer = new MetricsServer({ metrics: compared });
  let tmp: string | undefined;
  let prometheus: ChildProcess | undefined;
  let prometheusLog = '';
  let prometheusExit: string | undefined;
  let api = '';

  /** Polls until `check` returns a value (not undefined) or the bounded wait ends. */
  async function waitFor<T>(what: string, check: () => Promise<T | undefined>): Promise<T> {
    const deadline = Date.now() + WAIT_MS;
    let lastError: unknown;
    while (Date.now() < deadline) {
      if (prometheusExit !== undefined) {
        assert.fail(`prometheus exited (${prometheusExit}) while waiting for ${what}:\n${prometheusLog}`);
      }
      try {
        const result = await check();
        if (result !== undefined) return result;
      } catch (error) {
        lastError = error;
      }
      await sleep(250);
    }
    return assert.fail(`timed out after ${WAIT_MS} ms waiting for ${what} (last error: ${String(lastError)})\n${prometheusLog}`);
  }

  async function query(promql: string): Promise<VectorSample[]> {
    const res = await fetch(`${api}/api/v1/query?query=${encodeURIComponent(promql)}`);
    const body = (await res.json()) as { status: string; data?: { result: VectorSample[] }; error?: string };
    assert.equal(body.status, 'success', `query ${promql} failed: ${body.error}`);
    return body.data?.result ?? [];
  }

  /** The scraped value of the series with these labels, once Prometheus has it at `expected`. */
  function scrapedValue(promql: string, labels: Record<string, string>, expected: number): Promise<number> {
    return waitFor(`${promql}${JSON.stringify(labels)} = ${expected}`, async () => {
      const match = (await query(promql)).find((s) => Object.entries(labels).every(([k, v]) => s.metric[k] === v));
      if (match === undefined) return undefined;
      const v = Number(match.value[1]);
      return v === expected ? v : undefined;
    });
  }

  before(async () => {
    const binary = findBinary('prometheus', 'prometheus');
    const targetPort = await server.start('127.0.0.1', 0);
    const comparedPort = await comparedServer.start('127.0.0.1', 0);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lifelong-prom-'));
    const config = [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      '  evaluation_interval: 1s',
      'scrape_configs:',
      '  - job_name: lifelong',
      '    static_configs:',
      `      - targets: ['127.0.0.1:${targetPort}']`,
      '  - job_name: lifelong-compare',
      '    static_configs:',
      `      - targets: ['127.0.0.1:${comparedPort}']`,
      '',
    ].join('\n');
    fs.writeFileSync(path.join(tmp, 'prom.yml'), config);
    const promPort = await freePort();
    api = `http://127.0.0.1:${promPort}`;
    prometheus = spawn(
      binary,
      [
        `--config.file=${path.join(tmp, 'prom.yml')}`,
        `--storage.tsdb.path=${path.join(tmp, 'data')}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const keepLog = (chunk: Buffer): void => {
      prometheusLog = (prometheusLog + chunk.toString()).slice(-8000);
    };
    prometheus.stdout?.on('data', keepLog);
    prometheus.stderr?.on('data', keepLog);
    prometheus.once('exit', (code, signal) => (prometheusExit = `code ${code}, signal ${signal}`));
    prometheus.once('error', (error) => (prometheusExit = `spawn error: ${error.message}`));
    await waitFor('prometheus to be ready', async () => ((await fetch(`${api}/-/ready`)).ok ? true : undefined));
  });

  after(async () => {
    const child = prometheus;
    if (child !== undefined && prometheusExit === undefined) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    await server.close();
    await comparedServer.close();
    if (tmp !== undefined) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('scrapes lifelong_samples_total with the values the engine counted', async () => {
    const started = Date.now();
    metrics.countSamples('digits-0-1', 'trained', 7);
    metrics.countSamples('digits-0-1', 'held-out', 3);
    metrics.setCurrentTask('digits-0-1', 0);

    const trained = await scrapedValue('lifelong_samples_total', { job: 'lifelong', task: 'digits-0-1', kind: 'trained' }, 7);
    assert.equal(trained, 7);
    const heldOut = await scrapedValue('lifelong_samples_total', { task: 'digits-0-1', kind: 'held-out' }, 3);
    assert.equal(heldOut, 3);
    const up = await query('up{job="lifelong"}');
    assert.equal(up.length, 1);
    assert.equal(up[0]?.value[1], '1', 'the target is up');
    const info = await query('lifelong_current_task_info');
    assert.deepEqual(info.map((s) => s.metric['task']), ['digits-0-1']);
    console.log(`      first scrape visible after ${Date.now() - started} ms`);
  });

  it('sees later increments on the following scrapes', async () => {
    metrics.countSamples('digits-0-1', 'trained', 5);
    metrics.countSamples('digits-2-3', 'predicted', 2);
    assert.equal(await scrapedValue('lifelong_samples_total', { task: 'digits-0-1', kind: 'trained' }, 12), 12);
    assert.equal(await scrapedValue('lifelong_samples_total', { task: 'digits-2-3', kind: 'predicted' }, 2), 2);
  });

  it('scrapes the runs of a comparison side by side, one series per strategy', async () => {
    compared.startRun('ewc').countSamples('compare-0-1', 'trained', 40);
    compared.startRun('finetune').countSamples('compare-0-1', 'trained', 25);
    const labels = { job: 'lifelong-compare', task: 'compare-0-1', kind: 'trained' };
    assert.equal(await scrapedValue('lifelong_samples_total', { ...labels, strategy: 'ewc' }, 40), 40);
    assert.equal(await scrapedValue('lifelong_samples_total', { ...labels, strategy: 'finetune' }, 25), 25);
    const byStrategy = await query('sum by (strategy) (lifelong_samples_total{job="lifelong-compare"})');
    assert.deepEqual(Object.fromEntries(byStrategy.map((s) => [s.metric['strategy'], Number(s.value[1])])), { ewc: 40, finetune: 25 });
    const up = await query('up{job="lifelong-compare"}');
    assert.equal(up[0]?.value[1], '1', 'the exposition of the merged runs is valid: the target is up');
  });
});
