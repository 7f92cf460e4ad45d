import assert from 'node:assert/strict';
import { PrometheusProcess } from '../helpers/prometheus';
import { LifelongMetrics } from '../../src/metrics/prometheus';
import { MetricsServer } from '../../src/metrics/http-server';
import { PerRunMetrics } from '../../src/metrics/per-run-metrics';

/**
 * A real Prometheus (the Debian `prometheus` package, 2.42) scrapes the real MetricsServer every
 * second; the test reads the scraped values back through Prometheus's query API.
 */
describe('Prometheus scraping the metrics endpoint (integration)', function () {
  this.timeout(90_000);

  const metrics = new LifelongMetrics();
  const server = new MetricsServer({ metrics });
  // A second target, as \`lifelong run --compare\` serves it: two runs under their strategy labels.
  const compared = new PerRunMetrics({ labelByStrategy: true });
  const comparedServer = new MetricsServer({ metrics: compared });
  let prometheus: PrometheusProcess | undefined;

  const waitFor = <T>(what: string, check: () => Promise<T | undefined>): Promise<T> => (prometheus as PrometheusProcess).waitFor(what, check);
  const query = (promql: string) => (prometheus as PrometheusProcess).query(promql);

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
    const targetPort = await server.start('127.0.0.1', 0);
    const comparedPort = await comparedServer.start('127.0.0.1', 0);
    prometheus = await PrometheusProcess.start({ jobs: { lifelong: [`127.0.0.1:${targetPort}`], 'lifelong-compare': [`127.0.0.1:${comparedPort}`] } });
  });

  after(async () => {
    await prometheus?.stop();
    await server.close();
    await comparedServer.close();
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
