import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { instantTable, lifelongDashboard, labelVariable, query, ratioSeries, timeSeries } from './panels';
import { FLEET, RATE } from './queries';

/** "Lifelong fleet": every pipeline side by side, one row per daemon (Prometheus target). */
export function fleetDashboard(): dashboard.DashboardBuilder {
  const board = lifelongDashboard('Lifelong fleet', 'lifelong-fleet', 'Every lifelong pipeline at a glance: which learn, which forget, which lag.', '30s', 'now-6h')
    .withVariable(labelVariable('job', 'job', 'lifelong_samples_total', '', 'Prometheus jobs of the pipelines.'))
    .link(new dashboard.DashboardLinkBuilder('Lifelong pipeline').type(dashboard.DashboardLinkType.Dashboards).tags(['lifelong']).asDropdown(false).includeVars(true).keepTime(true));

  board.withPanel(instantTable('Pipelines', 'One row per daemon and strategy: up, tasks learned, average accuracy, average forgetting, throughput, consumer lag, checkpoint age.', [
    { ref: 'up', expr: `up{${FLEET}}` },
    { ref: 'tasks', expr: `lifelong_tasks_learned{${FLEET}}` },
    { ref: 'acc', expr: `lifelong_average_accuracy_ratio{${FLEET}}` },
    { ref: 'forgetting', expr: `lifelong_average_forgetting_ratio{${FLEET}}` },
    { ref: 'samples_per_s', expr: `sum by (job, instance, strategy) (rate(lifelong_samples_total{${FLEET}}[5m]))` },
    { ref: 'lag', expr: `sum by (job, instance, strategy) (lifelong_kafka_consumer_lag{${FLEET}})` },
    { ref: 'checkpoint_age_s', expr: `time() - lifelong_checkpoint_last_success_timestamp_seconds{${FLEET}}` },
  ]));
  board.withPanel(ratioSeries('Average accuracy', 'ACC of each pipeline (lifelong_average_accuracy_ratio).', [query(`lifelong_average_accuracy_ratio{${FLEET}}`, '{{instance}} {{strategy}}')]));
  board.withPanel(ratioSeries('Worst forgetting', 'The most forgotten task of each pipeline (max of lifelong_forgetting_ratio).', [query(`max by (job, instance, strategy) (lifelong_forgetting_ratio{${FLEET}})`, '{{instance}} {{strategy}}')]));
  board.withPanel(timeSeries('Throughput', 'Samples per second of each pipeline.', 'ops', [query(`sum by (instance, strategy) (rate(lifelong_samples_total{${FLEET}}[${RATE}]))`, '{{instance}} {{strategy}}')], 8));
  board.withPanel(timeSeries('Consumer lag', 'Messages behind the log ends, over every topic of each pipeline.', 'short', [query(`sum by (instance, strategy) (lifelong_kafka_consumer_lag{${FLEET}})`, '{{instance}} {{strategy}}')], 8));
  board.withPanel(timeSeries('Concept drifts', 'Confirmed concept drifts per pipeline over the last hour.', 'short', [query(`sum by (instance, strategy) (increase(lifelong_concept_drift_total{${FLEET}}[1h]))`, '{{instance}} {{strategy}}')], 8));
  board.withPanel(timeSeries('Training step p95', '95th percentile of the training step of each pipeline.', 's', [query(`histogram_quantile(0.95, sum by (instance, strategy, le) (rate(lifelong_training_step_duration_seconds_bucket{${FLEET}}[${RATE}])))`, '{{instance}} {{strategy}}')], 12));
  board.withPanel(timeSeries('Dead letters', 'Rejected samples per second of each pipeline.', 'ops', [query(`sum by (instance) (rate(lifelong_rejections_total{${FLEET}}[${RATE}]))`, '{{instance}}')], 12));
  return board;
}
