/**
 * What the plots of `lifelong bench` (average-accuracy-plot, accuracy-heatmaps,
 * seed-figure-plot) share: the strategy colours, the scenario order of panels, the percent
 * axis, and how values are read. The plots are pure functions of a report's runs or summaries
 * (no I/O, no dependencies, same input → same bytes). Accuracies are fractions 0..1 and are
 * drawn as percentages; values outside 0..1 are clamped, NaN points are skipped.
 */
import { SCENARIOS } from '../core/types';
import type { BenchSummary } from './bench-report';
import { attrs, line, num, text } from './svg';
import { BENCH_STRATEGIES } from './definitions';

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

export interface ScenarioPanel {
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
export function panelsByScenario(summaries: readonly BenchSummary[]): ScenarioPanel[] {
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

export function datasetSuffix(summaries: readonly BenchSummary[]): string {
  const datasets = unique(summaries.map((s) => s.dataset));
  return datasets.length === 1 ? ` — ${datasets[0]}` : '';
}

/** Horizontal gridlines and tick labels at 0, 20 … 100 %, plus the axes. */
export function percentGrid(plot: { left: number; top: number; width: number; height: number }, yOf: (fraction: number) => number): string[] {
  const out: string[] = [];
  for (let p = 0; p <= 100; p += 20) {
    const y = yOf(p / 100);
    out.push(`<line class="gridline"${attrs({ x1: num(plot.left), y1: num(y), x2: num(plot.left + plot.width), y2: num(y), stroke: p === 0 ? '#333333' : '#e0e0e0', 'stroke-width': 1 })}/>`);
    out.push(text(plot.left - 6, y + 4, String(p), { class: 'tick-y', 'text-anchor': 'end', 'font-size': 11 }));
  }
  out.push(line(plot.left, plot.top, plot.left, plot.top + plot.height, '#333333'));
  return out;
}

/** A fraction as a percentage with fixed decimals ("87.3"). */
export function percent(fraction: number, decimals: number): string {
  if (!Number.isFinite(fraction)) return 'n/a';
  const text = (fraction * 100).toFixed(decimals);
  return /^-0(\.0*)?$/.test(text) ? text.slice(1) : text;
}

/** True for a std worth an error bar: finite and above float noise (0.95 three times has std ~1e-16). */
export function hasSpread(std: number): boolean {
  return Number.isFinite(std) && std > 1e-9;
}

export function clamp01(value: number): number {
  return Number.isNaN(value) ? 0 : Math.min(1, Math.max(0, value));
}

export function unique<T>(values: readonly T[]): T[] {
  return [...new Set(values)];
}
