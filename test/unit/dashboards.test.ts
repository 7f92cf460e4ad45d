import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PROVISIONING, provisioningFiles, staleFiles } from '../../dashboards/generate';
import { REPO } from '../helpers/prometheus';
import { exportedNames, labelValuesQuery, metricNames, setOperands, withoutThreshold } from '../helpers/promql';

interface PanelJson {
  readonly type: string;
  readonly title: string;
  readonly datasource?: { readonly uid?: string };
  readonly targets?: readonly { readonly expr?: string }[];
}

/** The Grafana dashboards as code (dashboards/, npm run dashboards). */
describe('Grafana dashboards (generated provisioning files)', () => {
  const dashboard = (name: string) => JSON.parse(fs.readFileSync(path.join(REPO, PROVISIONING, 'dashboards', name), 'utf8')) as {
    uid: string;
    panels: PanelJson[];
    templating: { list: { name: string }[] };
    annotations: { list: { name: string; expr?: string }[] };
  };

  it('the committed files are what the code generates, byte for byte (npm run dashboards regenerates them)', () => {
    assert.deepEqual(staleFiles(REPO), [], 'run `npm run dashboards` and commit the result');
    assert.deepEqual([...provisioningFiles()], [...provisioningFiles()], 'generation is deterministic');
  });

  it('the pipeline dashboard has the issue\'s panels, pipeline and task variables, and concept drifts as annotations', () => {
    const board = dashboard('lifelong-pipeline.json');
    assert.deepEqual(board.templating.list.map((v) => v.name), ['datasource', 'job', 'instance', 'strategy', 'task']);
    const exprs = board.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? ''));
    for (const metric of [
      'lifelong_task_accuracy_ratio', 'lifelong_accuracy_matrix_ratio', 'lifelong_forgetting_ratio', 'lifelong_average_accuracy_ratio',
      'lifelong_backward_transfer_ratio', 'lifelong_forward_transfer_ratio', 'lifelong_prequential_accuracy_ratio', 'lifelong_semantic_drift_relative',
      'lifelong_parameters', 'lifelong_samples_total', 'lifelong_training_step_duration_seconds_bucket', 'lifelong_prediction_duration_seconds_bucket',
      'lifelong_kafka_consumer_lag', 'lifelong_rejections_total', 'lifelong_checkpoint_last_success_timestamp_seconds',
    ]) {
      assert.ok(exprs.some((e) => e.includes(`${metric}{`)), `a panel reads ${metric}`);
    }
    assert.ok(board.annotations.list.some((a) => a.expr?.includes('lifelong_concept_drift_total')), 'concept drifts are annotations');
    for (const panel of board.panels.filter((p) => p.type !== 'row')) {
      assert.equal(panel.datasource?.uid, '${datasource}', `${panel.title} reads the selected Prometheus`);
      assert.ok((panel.targets ?? []).length > 0, `${panel.title} has a query`);
    }
    assert.equal(new Set(board.panels.map((p) => p.title)).size, board.panels.length, 'titles are unique');
  });

  it('the fleet dashboard shows every pipeline side by side', () => {
    const board = dashboard('lifelong-fleet.json');
    assert.equal(board.uid, 'lifelong-fleet');
    assert.deepEqual(board.templating.list.map((v) => v.name), ['datasource', 'job']);
    assert.ok(board.panels.length >= 6);
  });
});

describe('PromQL of the dashboard and alert query test (helpers/promql)', () => {
  it('splits at top-level set operators, makes thresholds answer 0/1, finds metric names, reads variable queries', () => {
    assert.deepEqual(
      setOperands('time() - a{x="and b"} > 900 unless on (job, instance) sum by (job) (increase(b[15m])) == 0'),
      ['time() - a{x="and b"} > 900', 'sum by (job) (increase(b[15m])) == 0'],
    );
    assert.equal(withoutThreshold('max_over_time(a[6h]) - a > 0.1'), 'max_over_time(a[6h]) - a > bool 0.1');
    assert.equal(withoutThreshold('rate(a{le="0.5"}[1m])'), 'rate(a{le="0.5"}[1m])');
    assert.deepEqual(metricNames('histogram_quantile(0.95, sum by (le) (rate(lifelong_x_bucket{job=~"a"}[1m]))) / up'), ['lifelong_x_bucket', 'up']);
    assert.equal(labelValuesQuery('label_values(lifelong_samples_total{job=~"$job"}, instance)'), 'group by (instance) (lifelong_samples_total{job=~"$job"})');
    assert.deepEqual([...exportedNames('# TYPE lifelong_a histogram\n# TYPE lifelong_b_total counter\n')].sort(), ['lifelong_a_bucket', 'lifelong_a_count', 'lifelong_a_sum', 'lifelong_b_total', 'up']);
  });
});
