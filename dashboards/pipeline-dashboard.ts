import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { accuracyMatrix, eventAnnotation, lifelongDashboard, labelVariable, query, ratioSeries, singleStat, timeSeries } from './panels';
import { PIPELINE, PIPELINE_TASK, quantile, RATE } from './queries';

/** "Lifelong pipeline": one pipeline (or a comparison) learning, forgetting and drifting, and its operations. */
export function pipelineDashboard(): dashboard.DashboardBuilder {
  const board = lifelongDashboard('Lifelong pipeline', 'lifelong-pipeline', 'One lifelong pipeline: accuracy, forgetting and transfer as it learns its tasks, drift, model growth and the daemon\'s operations.', '10s', 'now-1h')
    .withVariable(labelVariable('job', 'job', 'lifelong_samples_total', '', 'Prometheus job of the pipeline(s).'))
    .withVariable(labelVariable('instance', 'instance', 'lifelong_samples_total', 'job=~"$job"', 'The daemon (host:port of its /metrics): one pipeline each.'))
    .withVariable(labelVariable('strategy', 'strategy', 'lifelong_samples_total', 'job=~"$job",instance=~"$instance"', 'Only in `lifelong run --compare` runs: the strategy of each run. All matches a pipeline without comparison too.'))
    .withVariable(labelVariable('task', 'task', 'lifelong_samples_total', 'job=~"$job",instance=~"$instance"', 'Tasks of the panels drawn per task.'))
    .annotation(eventAnnotation('Concept drift', 'red', `increase(lifelong_concept_drift_total{${PIPELINE_TASK}}[1m]) > 0`, 'Concept drift ({{detector}})', 'task {{task}}'))
    .annotation(eventAnnotation('Task started', 'blue', `changes(lifelong_current_task_index{${PIPELINE}}[1m]) > 0`, 'New task', 'the pipeline began its next task'));

  board.withRow(new dashboard.RowBuilder('Learning and forgetting'));
  board.withPanel(ratioSeries('Accuracy per task', 'Latest accuracy on each task\'s held-out probe (lifelong_task_accuracy_ratio): a task that drops after later tasks is being forgotten.', [query(`lifelong_task_accuracy_ratio{${PIPELINE_TASK}}`, '{{task}} {{strategy}}')]));
  board.withPanel(accuracyMatrix('Accuracy matrix (learned task × evaluated task)', 'R[i][j] (lifelong_accuracy_matrix_ratio): accuracy on the probe of the evaluated task (columns) after learning the learned task (rows). Below the diagonal: what was kept; above: forward transfer.', `lifelong_accuracy_matrix_ratio{${PIPELINE}}`));
  board.withPanel(ratioSeries('Forgetting per task', 'Best earlier probe accuracy minus the current one (lifelong_forgetting_ratio, Chaudhry et al. 2018). The alert LifelongForgetting fires above 0.1.', [query(`lifelong_forgetting_ratio{${PIPELINE_TASK}}`, '{{task}} {{strategy}}')], 8));
  board.withPanel(ratioSeries('Average accuracy and forgetting', 'ACC: mean probe accuracy over the tasks learned so far; mean forgetting over the earlier tasks.', [
    query(`lifelong_average_accuracy_ratio{${PIPELINE}}`, 'ACC {{strategy}}'),
    query(`lifelong_average_forgetting_ratio{${PIPELINE}}`, 'forgetting {{strategy}}'),
  ], 8));
  board.withPanel(timeSeries('Backward and forward transfer', 'BWT (negative: forgetting) and FWT (accuracy on a task before training on it, above a fresh model), Lopez-Paz & Ranzato 2017.', 'percentunit', [
    query(`lifelong_backward_transfer_ratio{${PIPELINE}}`, 'BWT {{strategy}}'),
    query(`lifelong_forward_transfer_ratio{${PIPELINE}}`, 'FWT {{strategy}}'),
  ], 8));
  board.withPanel(ratioSeries('Prequential accuracy', 'Test-then-train accuracy: each sample predicted before it is trained on; cumulative and fading-factor (recent) estimates.', [
    query(`lifelong_prequential_accuracy_ratio{${PIPELINE_TASK}}`, '{{task}} cumulative {{strategy}}'),
    query(`lifelong_prequential_fading_accuracy_ratio{${PIPELINE_TASK}}`, '{{task}} fading {{strategy}}'),
  ]));
  board.withPanel(timeSeries('Training loss', 'Loss of the last training step of each task (without penalty terms).', 'none', [query(`lifelong_training_loss{${PIPELINE_TASK}}`, '{{task}} {{strategy}}')]));

  board.withRow(new dashboard.RowBuilder('Drift'));
  board.withPanel(timeSeries('Semantic drift per layer', 'L2 distance of each layer\'s weights now from the end of an earlier task, relative to their norm then (lifelong_semantic_drift_relative).', 'percentunit', [query(`lifelong_semantic_drift_relative{${PIPELINE}}`, '{{layer}} since {{since_task}} {{strategy}}')]));
  board.withPanel(timeSeries('Concept drift: detector error estimate', 'The detector\'s current estimate of each task\'s prequential error (lifelong_prequential_error_estimate); confirmed drifts are the red annotations.', 'percentunit', [query(`lifelong_prequential_error_estimate{${PIPELINE_TASK}}`, '{{task}} {{strategy}}')]));
  board.withPanel(timeSeries('Input drift (PSI)', 'Population stability index of each task\'s recent inputs against its reference window (lifelong_input_drift_psi): above 0.25 is a significant shift.', 'none', [query(`lifelong_input_drift_psi{${PIPELINE_TASK}}`, '{{task}} {{strategy}}')]));
  board.withPanel(ratioSeries('Label drift', 'Total-variation distance of each task\'s recent label distribution from its reference (lifelong_label_drift_ratio).', [query(`lifelong_label_drift_ratio{${PIPELINE_TASK}}`, '{{task}} {{strategy}}')]));

  board.withRow(new dashboard.RowBuilder('Model'));
  board.withPanel(timeSeries('Parameters over time', 'Trainable parameters in use (lifelong_parameters): grows with Progressive columns, DEN units and growing heads; classes known per head (lifelong_classes).', 'short', [
    query(`lifelong_parameters{${PIPELINE}}`, 'parameters {{strategy}}'),
    query(`lifelong_classes{${PIPELINE}}`, 'classes {{task}} {{strategy}}'),
  ]));
  board.withPanel(timeSeries('Replay label entropy (DGR)', 'Entropy in bits of the labels the previous solver gives replayed inputs (lifelong_strategy_replay_label_entropy). Falling towards 0: replay collapsed onto one class (alert LifelongReplayCollapse).', 'none', [query(`lifelong_strategy_replay_label_entropy{${PIPELINE}}`, 'entropy {{strategy}}')]));

  board.withRow(new dashboard.RowBuilder('Operations'));
  board.withPanel(timeSeries('Throughput', 'Samples per second by what the engine did with them (lifelong_samples_total).', 'ops', [query(`sum by (kind, strategy) (rate(lifelong_samples_total{${PIPELINE}}[${RATE}]))`, '{{kind}} {{strategy}}')], 8));
  board.withPanel(timeSeries('Training step latency', 'Percentiles of lifelong_training_step_duration_seconds (forward, backward, update).', 's', [0.5, 0.95, 0.99].map((q) => query(quantile(q, 'lifelong_training_step_duration_seconds', PIPELINE, ['strategy']), `p${q * 100} {{strategy}}`)), 8));
  board.withPanel(timeSeries('Prediction latency', 'Percentiles of lifelong_prediction_duration_seconds: time to answer one batch of predictions made apart from training.', 's', [0.5, 0.95, 0.99].map((q) => query(quantile(q, 'lifelong_prediction_duration_seconds', PIPELINE, ['strategy']), `p${q * 100} {{strategy}}`)), 8));
  board.withPanel(timeSeries('Consumer lag per topic', 'Messages behind the log end of each topic being read (lifelong_kafka_consumer_lag).', 'short', [query(`lifelong_kafka_consumer_lag{${PIPELINE}}`, '{{topic}} {{strategy}}')], 8));
  board.withPanel(timeSeries('Dead letters by reason', 'Samples rejected per second, by reason (lifelong_rejections_total); on Kafka each goes to the dead-letter topic with this reason.', 'ops', [query(`sum by (reason) (rate(lifelong_rejections_total{${PIPELINE}}[${RATE}]))`, '{{reason}}')], 8));
  board.withPanel(singleStat('Checkpoint age', 'Seconds since the last durable checkpoint (lifelong_checkpoint_last_success_timestamp_seconds); the alert LifelongCheckpointStale fires after 15 minutes while training.', 's', `time() - lifelong_checkpoint_last_success_timestamp_seconds{${PIPELINE}}`, '{{instance}} {{strategy}}', [
    { value: null, color: 'green' },
    { value: 300, color: 'orange' },
    { value: 900, color: 'red' },
  ], 8));
  board.withPanel(timeSeries('Tensors held', 'Tensors the backend holds (lifelong_tensors): flat while the daemon runs, unless tensors leak.', 'short', [query(`lifelong_tensors{job=~"$job",instance=~"$instance"}`, '{{instance}}')], 8));
  return board;
}
