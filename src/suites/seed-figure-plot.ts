import { groupRuns, meanAndStd, type BenchRun } from './bench-report';
import { clamp01, hasSpread, percent, percentGrid, strategyColour, unique } from './plots';
import { attrs, esc, noDataText, num, OUTER_PADDING, svgDocument, text, titleText, verticalLabel, WIDTH } from './svg';

const TASK_A_COLOUR = '#4e79a7';
const TASK_B_COLOUR = '#f28e2b';

/**
 * The classic EWC figure for a two-task run: per strategy, the accuracy on task A and on task B
 * after learning B (row 1 of the accuracy matrix), mean over seeds with ±std error bars.
 */
export function seedFigurePlot(runs: readonly BenchRun[], options: { title?: string } = {}): string {
  const strategies = unique(runs.map((r) => r.strategy));
  const contexts = unique(runs.map((r) => `${r.dataset} · ${r.scenario}`));
  const bars = groupRuns(runs).map((group) => {
    const first = group[0] as BenchRun;
    const afterB = (column: number): number[] =>
      group.map((r) => r.accuracyMatrix[1]?.[column]).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
    const taskA = afterB(0);
    const taskB = afterB(1);
    return {
      strategy: first.strategy,
      context: `${first.dataset} · ${first.scenario}`,
      seeds: group.length,
      taskA: { values: taskA.length, ...meanAndStd(taskA) },
      taskB: { values: taskB.length, ...meanAndStd(taskB) },
    };
  });
  const title = options.title ?? `Accuracy on tasks A and B after learning B${contexts.length === 1 ? ` — ${contexts[0]}` : ''}`;
  const height = 460;
  const plot = { left: OUTER_PADDING + 56, top: 70, width: WIDTH - 2 * OUTER_PADDING - 56 - 12, height: 300 };
  const yOf = (fraction: number): number => plot.top + (1 - clamp01(fraction)) * plot.height;

  const body: string[] = [titleText(title)];
  // Legend: task A / task B, top right.
  const legendX = plot.left + plot.width - 150;
  [
    { label: 'task A', colour: TASK_A_COLOUR },
    { label: 'task B', colour: TASK_B_COLOUR },
  ].forEach((item, k) => {
    const x = legendX + k * 75;
    body.push(`<rect class="legend-swatch"${attrs({ x: num(x), y: 42, width: 12, height: 12, fill: item.colour })}/>`);
    body.push(text(x + 16, 52, item.label, { class: 'legend-label' }));
  });
  body.push(...percentGrid(plot, yOf));
  body.push(verticalLabel(OUTER_PADDING + 14, plot.top + plot.height / 2, 'accuracy after learning task B (%)'));
  if (bars.length === 0) body.push(noDataText(plot.top + plot.height / 2));

  const groupWidth = plot.width / Math.max(1, bars.length);
  const barWidth = Math.min(48, groupWidth * 0.32);
  const valueFontSize = barWidth >= 30 ? 11 : 9;
  bars.forEach((group, g) => {
    const centre = plot.left + (g + 0.5) * groupWidth;
    body.push(`<g class="bar-group"${attrs({ 'data-strategy': group.strategy, 'data-seeds': group.seeds })}>`);
    const tasks = [
      { task: 'A', stat: group.taskA, colour: TASK_A_COLOUR, x: centre - barWidth - 2 },
      { task: 'B', stat: group.taskB, colour: TASK_B_COLOUR, x: centre + 2 },
    ];
    for (const bar of tasks) {
      const barCentre = bar.x + barWidth / 2;
      if (bar.stat.values === 0) {
        body.push(text(barCentre, plot.top + plot.height - 4, 'n/a', { 'text-anchor': 'middle', 'font-size': valueFontSize, fill: '#666666' }));
        continue;
      }
      const barTop = yOf(bar.stat.mean);
      body.push(
        `<rect class="bar"${attrs({
          'data-task': bar.task,
          'data-strategy': group.strategy,
          x: num(bar.x),
          y: num(barTop),
          width: num(barWidth),
          height: num(plot.top + plot.height - barTop),
          fill: bar.colour,
        })}><title>${esc(`${group.strategy} · task ${bar.task}: ${percent(bar.stat.mean, 1)} %${bar.stat.values > 1 ? ` ± ${percent(bar.stat.std, 1)}` : ''} (${bar.stat.values} seeds)`)}</title></rect>`,
      );
      let labelBottom = barTop;
      if (bar.stat.values >= 2 && hasSpread(bar.stat.std)) {
        const low = yOf(bar.stat.mean - bar.stat.std);
        const high = yOf(bar.stat.mean + bar.stat.std);
        const cap = Math.min(5, barWidth / 4);
        body.push(
          `<path class="errorbar"${attrs({
            'data-task': bar.task,
            'data-strategy': group.strategy,
            d: `M${num(barCentre)},${num(low)}V${num(high)}M${num(barCentre - cap)},${num(low)}H${num(barCentre + cap)}M${num(barCentre - cap)},${num(high)}H${num(barCentre + cap)}`,
            stroke: '#222222',
            'stroke-width': 1.2,
            fill: 'none',
          })}/>`,
        );
        labelBottom = Math.min(labelBottom, high);
      }
      body.push(
        text(barCentre, labelBottom - 4, percent(bar.stat.mean, 1), {
          class: 'bar-value',
          'data-task': bar.task,
          'text-anchor': 'middle',
          'font-size': valueFontSize,
        }),
      );
    }
    const labelY = plot.top + plot.height + 18;
    body.push(text(centre, labelY, group.strategy, { 'text-anchor': 'middle', 'font-weight': 'bold' }));
    // The strategy's colour as a short underline: ties the group to the other plots' colours.
    body.push(
      `<rect class="strategy-swatch"${attrs({
        'data-strategy': group.strategy,
        x: num(centre - 12),
        y: num(labelY + 4),
        width: 24,
        height: 4,
        fill: strategyColour(group.strategy, strategies),
      })}/>`,
    );
    let extraY = labelY + 20;
    if (contexts.length > 1) {
      body.push(text(centre, extraY, group.context, { 'text-anchor': 'middle', 'font-size': 10, fill: '#444444' }));
      extraY += 14;
    }
    body.push(text(centre, extraY, `${group.seeds} seed${group.seeds === 1 ? '' : 's'}`, { 'text-anchor': 'middle', 'font-size': 10, fill: '#444444' }));
    body.push('</g>');
  });
  return svgDocument(WIDTH, height, body);
}
