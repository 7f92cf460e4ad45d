import type { BenchSummary } from './bench-report';
import { clamp01, datasetSuffix, hasSpread, panelsByScenario, percent, percentGrid, strategyColour, unique } from './plots';
import { attrs, esc, FONT_SIZE, line, noDataText, num, OUTER_PADDING, svgDocument, text, textWidth, titleText, verticalLabel, WIDTH } from './svg';

/** Average accuracy over the tasks learned so far against tasks learned: one panel per scenario. */
export function averageAccuracyPlot(summaries: readonly BenchSummary[], options: { title?: string } = {}): string {
  const strategies = unique(summaries.map((s) => s.strategy));
  const panels = panelsByScenario(summaries);
  const title = options.title ?? `Average accuracy over the tasks learned so far${datasetSuffix(summaries)}`;
  const columns = Math.max(1, Math.min(panels.length, 3));
  const panelWidth = (WIDTH - 2 * OUTER_PADDING) / columns;
  const panelHeight = 320;
  const top = 40;
  const margin = { left: 56, right: 14, top: 30, bottom: 46 };
  const panelRows = Math.ceil(panels.length / columns);
  const legend = legendLayout(strategies, top + panelRows * panelHeight + 8);
  const height = legend.bottom + OUTER_PADDING;

  const body: string[] = [titleText(title)];
  if (panels.length === 0) body.push(noDataText(top + 40));
  panels.forEach((panel, p) => {
    const x0 = OUTER_PADDING + (p % columns) * panelWidth;
    const y0 = top + Math.floor(p / columns) * panelHeight;
    const plot = {
      left: x0 + margin.left,
      top: y0 + margin.top,
      width: panelWidth - margin.left - margin.right,
      height: panelHeight - margin.top - margin.bottom,
    };
    const tasks = Math.max(1, ...panel.summaries.map((s) => s.averageAccuracyAfterTask.length));
    const inset = 14;
    const xOf = (tasksLearned: number): number =>
      tasks === 1
        ? plot.left + plot.width / 2
        : plot.left + inset + ((tasksLearned - 1) / (tasks - 1)) * (plot.width - 2 * inset);
    const yOf = (fraction: number): number => plot.top + (1 - clamp01(fraction)) * plot.height;

    body.push(`<g class="panel"${attrs({ 'data-scenario': panel.scenario, 'data-dataset': panel.dataset })}>`);
    body.push(text(plot.left + plot.width / 2, y0 + 18, panel.title, { 'text-anchor': 'middle', 'font-weight': 'bold' }));
    body.push(...percentGrid(plot, yOf));
    const tickStep = Math.max(1, Math.ceil(tasks / 10));
    for (let t = 1; t <= tasks; t += tickStep) {
      const x = xOf(t);
      body.push(line(x, plot.top + plot.height, x, plot.top + plot.height + 4, '#333333'));
      body.push(text(x, plot.top + plot.height + 17, String(t), { 'text-anchor': 'middle' }));
    }
    body.push(text(plot.left + plot.width / 2, plot.top + plot.height + 36, 'tasks learned', { 'text-anchor': 'middle' }));
    body.push(verticalLabel(x0 + 14, plot.top + plot.height / 2, 'average accuracy (%)'));

    // Strategies drawn at the same x are nudged apart a little so their error bars stay visible.
    const count = panel.summaries.length;
    const nudge = count > 1 ? Math.min(3, 24 / count) : 0;
    panel.summaries.forEach((summary, k) => {
      const colour = strategyColour(summary.strategy, strategies);
      const dx = (k - (count - 1) / 2) * nudge;
      const points = summary.averageAccuracyAfterTask
        .map((stat, i) => ({ tasksLearned: i + 1, mean: stat.mean, std: stat.std }))
        .filter((point) => Number.isFinite(point.mean));
      const series = `<g class="strategy"${attrs({ 'data-strategy': summary.strategy })}>`;
      body.push(series);
      body.push(
        `<polyline class="series"${attrs({
          'data-strategy': summary.strategy,
          points: points.map((pt) => `${num(xOf(pt.tasksLearned) + dx)},${num(yOf(pt.mean))}`).join(' '),
          fill: 'none',
          stroke: colour,
          'stroke-width': 2,
        })}/>`,
      );
      for (const pt of points) {
        const x = xOf(pt.tasksLearned) + dx;
        if (hasSpread(pt.std)) {
          const low = yOf(pt.mean - pt.std);
          const high = yOf(pt.mean + pt.std);
          body.push(
            `<path class="errorbar"${attrs({
              d: `M${num(x)},${num(low)}V${num(high)}M${num(x - 3)},${num(low)}H${num(x + 3)}M${num(x - 3)},${num(high)}H${num(x + 3)}`,
              stroke: colour,
              'stroke-width': 1.2,
              fill: 'none',
            })}/>`,
          );
        }
        const tooltip = `${summary.strategy} · ${pt.tasksLearned} tasks: ${percent(pt.mean, 1)} %${
          hasSpread(pt.std) ? ` ± ${percent(pt.std, 1)}` : ''
        }`;
        body.push(
          `<circle class="marker"${attrs({ cx: num(x), cy: num(yOf(pt.mean)), r: 3.5, fill: colour })}><title>${esc(tooltip)}</title></circle>`,
        );
      }
      body.push('</g>');
    });
    body.push('</g>');
  });
  body.push(...legend.items);
  return svgDocument(WIDTH, height, body);
}

/** Legend entries (line + marker + name) laid out left to right, wrapping under each other. */
function legendLayout(strategies: readonly string[], top: number): { items: string[]; bottom: number } {
  const items: string[] = [];
  let x = OUTER_PADDING + 8;
  let y = top + 10;
  for (const strategy of strategies) {
    const itemWidth = 30 + textWidth(strategy, FONT_SIZE) + 18;
    if (x + itemWidth > WIDTH - OUTER_PADDING && x > OUTER_PADDING + 8) {
      x = OUTER_PADDING + 8;
      y += 20;
    }
    const colour = strategyColour(strategy, strategies);
    items.push(`<g class="legend-item"${attrs({ 'data-strategy': strategy })}>`);
    items.push(`<line${attrs({ x1: num(x), y1: num(y), x2: num(x + 24), y2: num(y), stroke: colour, 'stroke-width': 2 })}/>`);
    items.push(`<circle class="legend-marker"${attrs({ 'data-strategy': strategy, cx: num(x + 12), cy: num(y), r: 3.5, fill: colour })}/>`);
    items.push(text(x + 30, y + 4, strategy, { class: 'legend-label' }));
    items.push('</g>');
    x += itemWidth;
  }
  return { items, bottom: strategies.length === 0 ? top : y + 10 };
}
