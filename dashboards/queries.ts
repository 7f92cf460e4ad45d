/**
 * PromQL of the dashboards. A pipeline is a Prometheus target: its job and instance labels; the
 * daemon adds strategy="NAME" only to the runs of `lifelong run --compare`, and a series without
 * the label matches strategy=~"$strategy" when the variable is All (.*).
 */

/** The selected pipeline(s), and strategy where a comparison labels one. */
export const PIPELINE = 'job=~"$job",instance=~"$instance",strategy=~"$strategy"';
/** The same, restricted to the selected tasks. */
export const PIPELINE_TASK = `${PIPELINE},task=~"$task"`;
/** The selected jobs of the fleet dashboard. */
export const FLEET = 'job=~"$job"';

/** The rate window Grafana picks from the scrape interval and the panel's resolution. */
export const RATE = '$__rate_interval';

/** p-quantile of a histogram over the selected series, per the labels in `by`. */
export function quantile(q: number, histogram: string, selector: string, by: readonly string[] = []): string {
  return `histogram_quantile(${q}, sum by (${[...by, 'le'].join(', ')}) (rate(${histogram}_bucket{${selector}}[${RATE}])))`;
}
