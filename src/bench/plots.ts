/**
 * The plots of `lifelong bench`, drawn as standalone SVG text: pure functions of a report's runs
 * or summaries (no I/O, no dependencies, same input → same bytes). Accuracies are fractions 0..1
 * and are drawn as percentages; values outside 0..1 are clamped, NaN points are skipped, so no
 * coordinate is ever NaN.
 */
import { SCENARIOS } from '../core/types';
import { groupRuns, meanAndStd, type BenchRun, type BenchSummary } from './bench-report';
import { BENCH_STRATEGIES } from './suites';

const WIDTH = 900;
const OUTER_PADDING = 12;
const FONT_SIZE = 12;
/** Rough advance of one character in sans-serif at 1 px font size: sizes legends and titles. */
const CHAR_WIDTH_EM = 0.6;

/** The strategies whose colour is fixed (the bench rows, in the registry's order), so a strategy looks the same in every plot and report. */
const KNOWN_STRATEGIES: readonly string[] = BENCH_STRATEGIES;
const KNOWN_COLOURS: readonly string[] = [
  '#7f7f7f', // finetune: grey, the lower bound
  '#bcbd22', // l2
  '#1f77b4', // ewc
  '#17becf', // online-ewc
  '#9467bd', // progressive
  '#8c564b', // den
  '#2ca02c', // dgr
  '#005a32', // dgr+distill
  '#ff7f0e', // replay
  '#111111', // joint: black, the upper bound
];
/** Colours for strategies not in KNOWN_STRATEGIES, in order of appearance (cycled past the end). */
const EXTRA_COLOURS: readonly string[] = [
  '#d62728',
  '#e377c2',
  '#7b4173',
  '#637939',
  '#843c39',
  '#3182bd',
  '#e6550d',
  '#31a354',
];
const TASK_A_COLOUR = '#4e79a7';
const TASK_B_COLOUR = '#f28e2b';
const NULL_CELL_COLOUR = '#d9d9d9';
/** ColorBrewer "Blues" (9 classes): white → dark blue, darker = higher accuracy. */
const SEQUENTIAL_BLUES: readonly string[] = [
  '#f7fbff',
  '#deebf7',
  '#c6dbef',
  '#9ecae1',
  '#6baed6',
  '#4292c6',
  '#2171b5',
  '#08519c',
  '#08306b',
];

/**
 * The colour of a strategy: fixed for the known names (finetune, l2, ewc, online-ewc, progressive,
 * den, dgr, dgr+distill, replay, joint); another name gets the next extra colour by its rank among
 * the unknown names of `appearanceOrder` (the strategies of a report in order of appearance), so
 * plots drawn from the same report agree.
 */
export function strategyColour(name: string, appearanceOrder: readonly string[] = [name]): string {
  const known = KNOWN_STRATEGIES.indexOf(name);
  if (known >= 0) return KNOWN_COLOURS[known] as string;
  const unknown = unique(appearanceOrder.filter((n) => !KNOWN_STRATEGIES.includes(n)));
  const rank = unknown.indexOf(name);
  const index = rank >= 0 ? rank : unknown.length;
  return EXTRA_COLOURS[index % EXTRA_COLOURS.length] as string;
}

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

/** Small multiples of the mean accuracy matrices: one T×T heatmap per (scenario, strategy). */
export function accuracyHeatmaps(summaries: readonly BenchSummary[], options: { title?: string } = {}): string {
  const strategies = unique(summaries.map((s) => s.strategy));
  const panels = panelsByScenario(summaries);
  const title = options.title ?? `Accuracy on task j after learning task i (mean over seeds)${datasetSuffix(summaries)}`;
  const size = Math.max(1, ...summaries.map(matrixSize));
  const cell = size <= 5 ? 34 : size <= 10 ? 28 : Math.max(12, Math.floor(560 / size));
  const valueFontSize = Math.max(7, Math.min(11, Math.round(cell * 0.36)));
  const gridLeft = 38; // room for the rotated "after task i" label and the row ticks
  const gridTop = 52; // room for the title, the "task j" label and the column ticks
  const titleFontSize = 12;
  const severalDatasets = unique(summaries.map((s) => s.dataset)).length > 1;
  const titles = summaries.map((s) => `${s.strategy} · ${s.scenario}${severalDatasets ? ` · ${s.dataset}` : ''}`);
  // Bold text runs wider than the plain estimate.
  const titleWidth = Math.max(0, ...titles.map((t) => 18 + textWidth(t, titleFontSize) * 1.1));
  const blockWidth = Math.max(gridLeft + size * cell + 8, titleWidth) + 20;
  const blockHeight = gridTop + size * cell + 18;
  const perRow = Math.max(1, Math.floor((WIDTH - 2 * OUTER_PADDING) / blockWidth));
  const width = Math.max(WIDTH, Math.ceil(blockWidth + 2 * OUTER_PADDING));
  // Rows are scenarios and columns strategies when every strategy fits on a line; else each
  // scenario's heatmaps wrap onto as many lines as they need.
  const aligned = strategies.length <= perRow;
  const slots: { summary: BenchSummary; title: string; row: number; column: number }[] = [];
  let row = 0;
  for (const panel of panels) {
    panel.summaries.forEach((summary, k) => {
      const column = aligned ? strategies.indexOf(summary.strategy) : k % perRow;
      const wrappedLine = aligned ? 0 : Math.floor(k / perRow);
      slots.push({ summary, title: titles[summaries.indexOf(summary)] as string, row: row + wrappedLine, column });
    });
    row += aligned ? 1 : Math.ceil(panel.summaries.length / perRow);
  }
  const top = 40;
  const scaleTop = top + row * blockHeight + 10;
  const height = scaleTop + 44 + OUTER_PADDING;

  const body: string[] = [titleText(title)];
  if (slots.length === 0) body.push(noDataText(top + 40));
  for (const slot of slots) {
    const { summary } = slot;
    const n = matrixSize(summary);
    const x0 = OUTER_PADDING + slot.column * blockWidth;
    const y0 = top + slot.row * blockHeight;
    // Left-aligned in the block: the swatch, then the title, with the grid under them.
    const gridX = x0 + gridLeft;
    const gridY = y0 + gridTop;
    const centre = gridX + (n * cell) / 2;
    body.push(
      `<g class="heatmap"${attrs({ 'data-strategy': summary.strategy, 'data-scenario': summary.scenario, 'data-dataset': summary.dataset, 'data-size': n })}>`,
    );
    body.push(
      `<rect class="strategy-swatch"${attrs({
        'data-strategy': summary.strategy,
        x: num(x0 + 4),
        y: num(y0 + 5),
        width: 10,
        height: 10,
        fill: strategyColour(summary.strategy, strategies),
      })}/>`,
    );
    body.push(text(x0 + 18, y0 + 14, slot.title, { class: 'heatmap-title', 'font-weight': 'bold', 'font-size': titleFontSize }));
    body.push(text(centre, y0 + 31, 'task j', { 'text-anchor': 'middle', 'font-size': 11 }));
    body.push(verticalLabel(gridX - 26, gridY + (n * cell) / 2, 'after task i', 11));
    for (let k = 0; k < n; k += 1) {
      body.push(text(gridX + (k + 0.5) * cell, gridY - 5, String(k + 1), { class: 'tick-column', 'text-anchor': 'middle', 'font-size': 10 }));
      body.push(text(gridX - 4, gridY + (k + 0.5) * cell + 3.5, String(k + 1), { class: 'tick-row', 'text-anchor': 'end', 'font-size': 10 }));
    }
    for (let i = 0; i < n; i += 1) {
      for (let j = 0; j < n; j += 1) {
        const value = summary.meanAccuracyMatrix[i]?.[j];
        const measured = typeof value === 'number' && Number.isFinite(value);
        const fill = measured ? sequentialColour(value) : NULL_CELL_COLOUR;
        const x = gridX + j * cell;
        const y = gridY + i * cell;
        body.push(
          `<rect class="cell"${attrs({
            'data-row': i,
            'data-column': j,
            'data-value': measured ? num(value, 6) : 'none',
            x: num(x),
            y: num(y),
            width: cell,
            height: cell,
            fill,
            stroke: '#ffffff',
            'stroke-width': 1,
          })}/>`,
        );
        if (measured) {
          body.push(
            text(x + cell / 2, y + cell / 2 + valueFontSize * 0.35, String(Math.round(value * 100)), {
              class: 'cell-value',
              'data-row': i,
              'data-column': j,
              'text-anchor': 'middle',
              'font-size': valueFontSize,
              fill: luminance(fill) < 0.5 ? '#ffffff' : '#1a1a1a',
            }),
          );
        }
      }
    }
    body.push('</g>');
  }
  body.push(...colourScaleLegend(scaleTop));
  return svgDocument(width, height, body);
}

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

// ---------------------------------------------------------------------------------------------
// Layout helpers

interface ScenarioPanel {
  readonly scenario: string;
  readonly dataset: string;
  readonly title: string;
  readonly summaries: readonly BenchSummary[];
}

/**
 * The summaries by scenario, scenarios in the fixed order task → domain → class-incremental (then
 * any other in order of appearance); a report with several datasets gets one panel per (dataset,
 * scenario), so the lines of two datasets never share a panel.
 */
function panelsByScenario(summaries: readonly BenchSummary[]): ScenarioPanel[] {
  const datasets = unique(summaries.map((s) => s.dataset as string));
  const present = unique(summaries.map((s) => s.scenario as string));
  const scenarios = [...SCENARIOS.filter((s) => present.includes(s)), ...present.filter((s) => !(SCENARIOS as readonly string[]).includes(s))];
  const panels: ScenarioPanel[] = [];
  for (const scenario of scenarios) {
    for (const dataset of datasets) {
      const members = summaries.filter((s) => s.scenario === scenario && s.dataset === dataset);
      if (members.length === 0) continue;
      panels.push({ scenario, dataset, title: datasets.length > 1 ? `${scenario} · ${dataset}` : scenario, summaries: members });
    }
  }
  return panels;
}

/** Side of a summary's square heatmap: rows learned, tasks named, columns measured. */
function matrixSize(summary: BenchSummary): number {
  return Math.max(summary.tasks.length, summary.meanAccuracyMatrix.length, ...summary.meanAccuracyMatrix.map((r) => r.length));
}

function datasetSuffix(summaries: readonly BenchSummary[]): string {
  const datasets = unique(summaries.map((s) => s.dataset));
  return datasets.length === 1 ? ` — ${datasets[0]}` : '';
}

/** Horizontal gridlines and tick labels at 0, 20 … 100 %, plus the axes. */
function percentGrid(plot: { left: number; top: number; width: number; height: number }, yOf: (fraction: number) => number): string[] {
  const out: string[] = [];
  for (let p = 0; p <= 100; p += 20) {
    const y = yOf(p / 100);
    out.push(`<line class="gridline"${attrs({ x1: num(plot.left), y1: num(y), x2: num(plot.left + plot.width), y2: num(y), stroke: p === 0 ? '#333333' : '#e0e0e0', 'stroke-width': 1 })}/>`);
    out.push(text(plot.left - 6, y + 4, String(p), { class: 'tick-y', 'text-anchor': 'end', 'font-size': 11 }));
  }
  out.push(line(plot.left, plot.top, plot.left, plot.top + plot.height, '#333333'));
  return out;
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

function colourScaleLegend(top: number): string[] {
  const left = OUTER_PADDING + 8;
  const barWidth = 220;
  const stops = SEQUENTIAL_BLUES.map(
    (colour, k) => `<stop${attrs({ offset: num(k / (SEQUENTIAL_BLUES.length - 1), 4), 'stop-color': colour })}/>`,
  ).join('');
  return [
    `<defs><linearGradient id="accuracy-scale" x1="0" y1="0" x2="1" y2="0">${stops}</linearGradient></defs>`,
    text(left, top + 10, 'accuracy (%)', { 'font-size': 11 }),
    `<rect${attrs({ x: left + 80, y: top, width: barWidth, height: 12, fill: 'url(#accuracy-scale)', stroke: '#999999', 'stroke-width': 0.5 })}/>`,
    ...[0, 50, 100].map((p) => text(left + 80 + (p / 100) * barWidth, top + 26, String(p), { 'text-anchor': 'middle', 'font-size': 10 })),
    `<rect${attrs({ x: left + 80 + barWidth + 30, y: top, width: 12, height: 12, fill: NULL_CELL_COLOUR })}/>`,
    text(left + 80 + barWidth + 48, top + 10, 'not measured', { 'font-size': 11 }),
  ];
}

/** The sequential scale at a fraction 0..1 (clamped): piecewise-linear through SEQUENTIAL_BLUES. */
function sequentialColour(fraction: number): string {
  const position = clamp01(fraction) * (SEQUENTIAL_BLUES.length - 1);
  const lower = Math.min(Math.floor(position), SEQUENTIAL_BLUES.length - 2);
  const t = position - lower;
  const a = hexToRgb(SEQUENTIAL_BLUES[lower] as string);
  const b = hexToRgb(SEQUENTIAL_BLUES[lower + 1] as string);
  const mix = a.map((channel, c) => Math.round(channel + ((b[c] as number) - channel) * t));
  return `#${mix.map((channel) => channel.toString(16).padStart(2, '0')).join('')}`;
}

function hexToRgb(hex: string): number[] {
  return [1, 3, 5].map((offset) => parseInt(hex.slice(offset, offset + 2), 16));
}

/** Relative luminance 0..1 of an sRGB colour: picks white or dark text on a heatmap cell. */
function luminance(hex: string): number {
  const [r, g, b] = hexToRgb(hex).map((channel) => {
    const c = channel / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  }) as [number, number, number];
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

// ---------------------------------------------------------------------------------------------
// SVG text helpers

function svgDocument(width: number, height: number, body: readonly string[]): string {
  const w = num(width);
  const h = num(height);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif" font-size="${FONT_SIZE}">`,
    `<rect width="${w}" height="${h}" fill="#ffffff"/>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

function titleText(title: string): string {
  return text(WIDTH / 2, 24, title, { class: 'plot-title', 'text-anchor': 'middle', 'font-size': 16, 'font-weight': 'bold' });
}

function noDataText(y: number): string {
  return text(WIDTH / 2, y, 'no runs to plot', { 'text-anchor': 'middle', fill: '#666666' });
}

function verticalLabel(x: number, y: number, label: string, fontSize = FONT_SIZE): string {
  return text(x, y, label, { 'text-anchor': 'middle', transform: `rotate(-90 ${num(x)} ${num(y)})`, 'font-size': fontSize });
}

function text(x: number, y: number, content: string, extra: Record<string, string | number> = {}): string {
  return `<text${attrs({ x: num(x), y: num(y), ...extra })}>${esc(content)}</text>`;
}

function line(x1: number, y1: number, x2: number, y2: number, stroke: string): string {
  return `<line${attrs({ x1: num(x1), y1: num(y1), x2: num(x2), y2: num(y2), stroke, 'stroke-width': 1 })}/>`;
}

function attrs(values: Record<string, string | number>): string {
  return Object.entries(values)
    .map(([name, value]) => ` ${name}="${esc(typeof value === 'number' ? num(value) : value)}"`)
    .join('');
}

/** Escapes text for XML content and attribute values; drops the control characters XML forbids. */
function esc(value: string): string {
  return value
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

/** A coordinate or value as short text; a non-finite number (callers avoid them) never reaches the SVG as NaN. */
function num(value: number, decimals = 2): string {
  if (!Number.isFinite(value)) return '0';
  const scale = 10 ** decimals;
  const rounded = Math.round(value * scale) / scale;
  return Object.is(rounded, -0) ? '0' : String(rounded);
}

/** A fraction as a percentage with fixed decimals ("87.3"). */
function percent(fraction: number, decimals: number): string {
  if (!Number.isFinite(fraction)) return 'n/a';
  const text = (fraction * 100).toFixed(decimals);
  return /^-0(\.0*)?$/.test(text) ? text.slice(1) : text;
}

/** True for a std worth an error bar: finite and above float noise (0.95 three times has std ~1e-16). */
function hasSpread(std: number): boolean {
  return Number.isFinite(std) && std > 1e-9;
}

function clamp01(value: number): number {
  return Number.isNaN(value) ? 0 : Math.min(1, Math.max(0, value));
}

function textWidth(content: string, fontSize: number): number {
  return content.length * fontSize * CHAR_WIDTH_EM;
}

function unique<T>(values: readonly T[]): T[] {
  return [...new Set(values)];
}
