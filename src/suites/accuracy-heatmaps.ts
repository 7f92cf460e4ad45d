import type { BenchSummary } from './bench-report';
import { clamp01, datasetSuffix, panelsByScenario, strategyColour, unique } from './plots';
import { attrs, noDataText, num, OUTER_PADDING, svgDocument, text, textWidth, titleText, verticalLabel, WIDTH } from './svg';

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

/** Side of a summary's square heatmap: rows learned, tasks named, columns measured. */
function matrixSize(summary: BenchSummary): number {
  return Math.max(summary.tasks.length, summary.meanAccuracyMatrix.length, ...summary.meanAccuracyMatrix.map((r) => r.length));
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
