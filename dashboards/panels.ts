import * as common from '@grafana/grafana-foundation-sdk/common';
import type * as cog from '@grafana/grafana-foundation-sdk/cog';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { DataqueryBuilder, PromQueryFormat } from '@grafana/grafana-foundation-sdk/prometheus';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as table from '@grafana/grafana-foundation-sdk/table';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';

/** The Prometheus data source every panel reads: the dashboard's `datasource` variable. */
export const DATASOURCE: common.DataSourceRef = { type: 'prometheus', uid: '${datasource}' };

/** A range query drawn as a time series, one series per `legend`. */
export function query(expr: string, legend: string): DataqueryBuilder {
  return new DataqueryBuilder().expr(expr).legendFormat(legend).range();
}

/** A time series panel of `queries`, in `unit` ("percentunit" for ratios 0..1). */
export function timeSeries(title: string, description: string, unit: string, queries: readonly DataqueryBuilder[], width = 12): timeseries.PanelBuilder {
  const panel = new timeseries.PanelBuilder().title(title).description(description).datasource(DATASOURCE).unit(unit).height(8).span(width).lineWidth(2).fillOpacity(10).showPoints(common.VisibilityMode.Never);
  for (const q of queries) panel.withTarget(q);
  return panel;
}

/** A ratio 0..1 shown as a percentage on a fixed 0..100% axis. */
export function ratioSeries(title: string, description: string, queries: readonly DataqueryBuilder[], width = 12): timeseries.PanelBuilder {
  return timeSeries(title, description, 'percentunit', queries, width).min(0).max(1);
}

/** One number per series (latest value), coloured by `steps` thresholds. */
export function singleStat(title: string, description: string, unit: string, expr: string, legend: string, steps: readonly dashboard.Threshold[], width = 6): stat.PanelBuilder {
  return new stat.PanelBuilder()
    .title(title)
    .description(description)
    .datasource(DATASOURCE)
    .unit(unit)
    .height(8)
    .span(width)
    .colorMode(common.BigValueColorMode.Background)
    .graphMode(common.BigValueGraphMode.Area)
    .thresholds(new dashboard.ThresholdsConfigBuilder().mode(dashboard.ThresholdsMode.Absolute).steps([...steps]))
    .withTarget(query(expr, legend));
}

/**
 * The accuracy matrix R[learned][evaluated] as a grid: an instant query pivoted by Grafana's
 * "grouping to matrix" transformation, each cell coloured by accuracy. Grafana's heatmap panel
 * buckets numeric axes over time; a table with coloured cells is its heatmap of two categorical axes.
 */
export function accuracyMatrix(title: string, description: string, expr: string): table.PanelBuilder {
  return new table.PanelBuilder()
    .title(title)
    .description(description)
    .datasource(DATASOURCE)
    .unit('percentunit')
    .decimals(1)
    .min(0)
    .max(1)
    .height(8)
    .span(12)
    .colorScheme(new dashboard.FieldColorBuilder().mode(dashboard.FieldColorModeId.ContinuousRdYlGr))
    .cellOptions({ type: common.TableCellDisplayMode.ColorBackground })
    .withTarget(new DataqueryBuilder().expr(expr).instant().format(PromQueryFormat.Table).legendFormat('__auto'))
    .withTransformation({ id: 'groupingToMatrix', options: { rowField: 'learned_task', columnField: 'evaluated_task', valueField: 'Value', emptyValue: 'null' } });
}

/** A table of instant values, one row per series, the labels as columns. */
export function instantTable(title: string, description: string, targets: readonly { expr: string; ref: string }[], width = 24): table.PanelBuilder {
  const panel = new table.PanelBuilder().title(title).description(description).datasource(DATASOURCE).height(8).span(width);
  for (const t of targets) panel.withTarget(new DataqueryBuilder().expr(t.expr).instant().format(PromQueryFormat.Table).refId(t.ref));
  return panel
    .withTransformation({ id: 'merge', options: {} })
    .withTransformation({ id: 'organize', options: { excludeByName: { Time: true } } });
}

/** A dashboard variable listing the values of `label` on `metric{selector}`. */
export function labelVariable(name: string, label: string, metric: string, selector: string, description: string): dashboard.QueryVariableBuilder {
  const definition = `label_values(${metric}${selector ? `{${selector}}` : ''}, ${label})`;
  return new dashboard.QueryVariableBuilder(name)
    .label(label)
    .description(description)
    .datasource(DATASOURCE)
    .query({ query: definition, refId: 'PrometheusVariableQueryEditor-VariableQuery' })
    .definition(definition)
    .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
    .sort(dashboard.VariableSort.AlphabeticalAsc)
    .multi(true)
    .includeAll(true)
    .allValue('.*')
    .current({ text: 'All', value: '$__all' });
}

/**
 * What every lifelong dashboard shares: tags, time zone, crosshair, read-only (generated: edits go
 * to the TypeScript), and the datasource variable first.
 */
export function lifelongDashboard(title: string, uid: string, description: string, refresh: string, from: string): dashboard.DashboardBuilder {
  return new dashboard.DashboardBuilder(title)
    .uid(uid)
    .description(`${description} Generated by dashboards/ (npm run dashboards): do not edit the JSON.`)
    .tags(['lifelong', 'continual-learning'])
    .refresh(refresh)
    .time({ from, to: 'now' })
    .timezone('browser')
    .tooltip(dashboard.DashboardCursorSync.Crosshair)
    .readonly()
    .withVariable(datasourceVariable());
}

export function datasourceVariable(): dashboard.DatasourceVariableBuilder {
  return new dashboard.DatasourceVariableBuilder('datasource').label('Prometheus').type('prometheus').current({ text: 'Prometheus', value: 'prometheus' });
}

/** Events from a PromQL expression: each sample of `expr` (a series above 0) marks the time. */
export function eventAnnotation(name: string, colour: string, expr: string, title: string, text: string): dashboard.AnnotationQueryBuilder {
  return new dashboard.AnnotationQueryBuilder()
    .name(name)
    .datasource(DATASOURCE)
    .enable(true)
    .iconColor(colour)
    .expr(expr)
    .step('10s')
    .titleFormat(title)
    .textFormat(text)
    .tagKeys('task');
}

export type PanelRow = readonly cog.Builder<dashboard.Panel>[];
