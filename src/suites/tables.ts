/**
 * Markdown for bench reports: a suite's accuracy beside the published numbers, its speed, the
 * seed figure's numbers, and implementations side by side (`lifelong bench --compare`). Pure.
 */
import { SCENARIOS, type Scenario } from '../core/types';
import { groupRuns, meanAndStd, mergeRuns, summariseRuns, type BenchDataset, type BenchReport, type BenchRun, type BenchSummary } from './bench-report';
import { BENCH_STRATEGIES, PUBLISHED_ACCURACY, SUITE_NAMES, benchSuite, type SuiteName } from './definitions';

const SCENARIO_COLUMNS: Record<Scenario, string> = {
  'task-incremental': 'Task-IL',
  'domain-incremental': 'Domain-IL',
  'class-incremental': 'Class-IL',
};

/** Points of accuracy within which we count as reproducing a published number. */
export const REPRODUCTION_TOLERANCE = 2;

function percent(value: number, digits = 1): string {
  return Number.isFinite(value) ? (100 * value).toFixed(digits) : '—';
}

function meanStd({ mean, std }: { readonly mean: number; readonly std: number }, seeds: number): string {
  return seeds > 1 ? `${percent(mean)} ± ${percent(std)}` : percent(mean);
}

/** Several seeds' lowest and highest final accuracy and their count, after the mean ± std: " [86.1–93.0, 5 seeds]". */
function spread(runs: readonly BenchRun[]): string {
  if (runs.length < 2) return '';
  const finals = runs.map((r) => r.finalAverageAccuracy);
  return ` [${percent(Math.min(...finals))}–${percent(Math.max(...finals))}, ${runs.length} seeds]`;
}

/** Rows in the suites' order (finetune first, joint last); strategies of no suite after them. */
function strategyOrder(strategy: string): number {
  const index = (BENCH_STRATEGIES as readonly string[]).indexOf(strategy);
  return index < 0 ? BENCH_STRATEGIES.length : index;
}

function datasetsOf(summaries: readonly BenchSummary[]): BenchDataset[] {
  return [...new Set(summaries.map((s) => s.dataset))];
}

/** "87.2 (−0.1)": the published number and our distance to it, in bold beyond the tolerance. */
function publishedCell(published: number | undefined, ours: number): string {
  if (published === undefined) return '—';
  const delta = 100 * ours - published;
  const text = Math.abs(delta) < 0.05 ? '0.0' : `${delta >= 0 ? '+' : '−'}${Math.abs(delta).toFixed(1)}`;
  return `${published.toFixed(1)} (${Math.abs(delta) > REPRODUCTION_TOLERANCE ? `**${text}**` : text})`;
}

/**
 * The iterations per task a suite's protocol asks for on a dataset, so that a run with fewer is
 * marked even when no run of the protocol's length exists; the longest run's for an unknown suite.
 */
function protocolIterations(suite: string | undefined, dataset: BenchDataset, runs: readonly BenchRun[]): number {
  const defined = (SUITE_NAMES as readonly string[]).includes(suite ?? '') ? benchSuite(suite as SuiteName).cases.find((c) => c.dataset === dataset)?.protocol.iterationsPerTask : undefined;
  return Math.max(defined ?? 0, ...runs.filter((r) => r.dataset === dataset).map((r) => r.protocol.iterationsPerTask));
}

/**
 * Final average accuracy per strategy (rows) and scenario (columns), mean ± std over seeds, with
 * the published number and our difference where the paper has one.
 */
export function accuracyTable(runs: readonly BenchRun[], suite?: string): string {
  const summaries = summariseRuns(runs);
  const out: string[] = [];
  for (const dataset of datasetsOf(summaries)) {
    const ofDataset = summaries.filter((s) => s.dataset === dataset);
    const scenarios = SCENARIOS.filter((scenario) => ofDataset.some((s) => s.scenario === scenario));
    // The dataset's protocol: that of its longest runs, at the iterations the suite asks for (quicker cells say so).
    const reference = protocolIterations(suite, dataset, runs);
    // Runs scored on part of the test set (--test-samples, or the online suite's permuted probes).
    const sampled = [...new Set(runs.filter((r) => r.dataset === dataset && r.protocol.testSamplesPerTask > 0).map((r) => r.protocol.testSamplesPerTask))];
    const protocol = runs.filter((r) => r.dataset === dataset).reduce<BenchRun | undefined>((a, r) => (!a || r.protocol.iterationsPerTask > a.protocol.iterationsPerTask ? r : a), undefined)?.protocol;
    // The papers' numbers are for their iterated protocol: a single-pass table has no column for them.
    const published = protocol && protocol.iterationsPerTask > 0 ? PUBLISHED_ACCURACY[dataset] : {};
    const withPaper = scenarios.filter((scenario) => ofDataset.some((s) => published[s.strategy]?.[scenario] !== undefined));
    const strategies = [...new Set(ofDataset.map((s) => s.strategy))].sort((a, b) => strategyOrder(a) - strategyOrder(b));
    const seeds = Math.max(...ofDataset.map((s) => s.seeds.length));
    out.push(`**${dataset}**, average accuracy (%) over all tasks after the last one, ${seeds > 1 ? `mean ± std over ${seeds} seeds` : '1 seed'}` +
      (protocol ? `; ${protocol.iterationsPerTask > 0 ? `${reference} iterations of ${protocol.batchSize} per task` : `one pass, ${protocol.samplesPerTask || 'all'} samples per task, batches of ${protocol.batchSize}`}` : '') +
      (sampled.length ? `; scored on a seeded sample of ${sampled.join('/')} test images per task` : '') +
      (runs.some((r) => r.dataset === dataset && r.protocol.pairs === 'random') ? '; digit pairs drawn at random per seed (--pairs random)' : '') +
      (withPaper.length ? '; paper: van de Ven & Tolias 2019 (our difference in brackets, bold beyond 2 points)' : '') + '\n');
    const header = ['strategy', ...scenarios.flatMap((sc) => (withPaper.includes(sc) ? [SCENARIO_COLUMNS[sc], 'paper'] : [SCENARIO_COLUMNS[sc]]))];
    out.push(`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`);
    let quicker = false;
    for (const strategy of strategies) {
      const cells = [strategy];
      for (const scenario of scenarios) {
        const s = ofDataset.find((x) => x.strategy === strategy && x.scenario === scenario);
        // A cell run with fewer iterations than the dataset's protocol says so.
        const iterations = Math.min(...runs.filter((r) => r.dataset === dataset && r.strategy === strategy && r.scenario === scenario).map((r) => r.protocol.iterationsPerTask));
        const lesser = iterations < reference ? ` (${iterations} it.)` : '';
        quicker ||= lesser !== '';
        cells.push(s ? `${meanStd(s.finalAverageAccuracy, s.seeds.length)}${lesser}` : '—');
        if (withPaper.includes(scenario)) cells.push(s ? publishedCell(published[strategy]?.[scenario], s.finalAverageAccuracy.mean) : '—');
      }
      out.push(`| ${cells.join(' | ')} |`);
    }
    if (quicker) out.push('', `(N it.): a quicker, lesser run of N iterations per task instead of the protocol's ${reference}.`);
    out.push('');
  }
  return out.join('\n');
}

/** Wall time, throughput and size of every (strategy, scenario), means over seeds. */
export function speedTable(runs: readonly BenchRun[]): string {
  const lines = ['| dataset | scenario | strategy | seeds | wall time per run (s) | samples/s | samples per run | parameters |', '|---|---|---|---:|---:|---:|---:|---:|'];
  for (const group of groupRuns(runs)) {
    const s = summariseRuns(group)[0] as BenchSummary;
    const samples = meanAndStd(group.map((r) => r.samplesTrained)).mean;
    lines.push(`| ${s.dataset} | ${SCENARIO_COLUMNS[s.scenario]} | ${s.strategy} | ${s.seeds.length} | ${s.wallSeconds.mean.toFixed(0)} | ${s.samplesPerSecond.mean.toFixed(0)} | ${samples.toFixed(0)} | ${s.parameters} |`);
  }
  return lines.join('\n') + '\n';
}

/** The seed's comparison: accuracy on task A and task B after learning B (row 2 of R). */
export function seedFigureTable(runs: readonly BenchRun[]): string {
  const lines = ['| strategy | params | task A after B | task B after B | average |', '|---|---|---:|---:|---:|'];
  for (const mine of groupRuns(runs)) {
    const s = summariseRuns(mine)[0] as BenchSummary;
    const a = meanAndStd(mine.map((r) => r.accuracyMatrix[1]?.[0] ?? Number.NaN));
    const b = meanAndStd(mine.map((r) => r.accuracyMatrix[1]?.[1] ?? Number.NaN));
    const params = JSON.stringify(mine[0]?.params ?? {});
    lines.push(`| ${s.strategy} | \`${params}\` | ${meanStd(a, mine.length)} | ${meanStd(b, mine.length)} | ${meanStd(s.finalAverageAccuracy, mine.length)} |`);
  }
  return lines.join('\n') + '\n';
}

/** The whole markdown of one suite report: what ran, the accuracy tables, speed. */
export function suiteMarkdown(report: BenchReport): string {
  const m = report.machine;
  const head = [
    `Suite \`${report.suite}\`, ${report.implementation} ${report.implementationVersion}, ${report.createdAt.slice(0, 10)}; ${m.cpu}, ${m.cores} cores, ${m.runtime}, backend ${m.backend}.`,
    `Command: \`${report.command}\``,
    '',
  ];
  const accuracy = report.suite === 'seed-figure' ? seedFigureTable(report.runs) : accuracyTable(report.runs, report.suite);
  return [...head, accuracy, speedTable(report.runs)].join('\n');
}

/**
 * Implementations side by side, suite by suite (only suites that more than one implementation
 * ran): final average accuracy and samples per second per (dataset, scenario, strategy), one
 * column pair per implementation. A cell from a run with fewer iterations than the suite's
 * protocol says how many.
 */
export function comparisonTable(reports: readonly BenchReport[]): string {
  const out: string[] = [];
  for (const suite of [...new Set(reports.map((r) => r.suite))]) {
    const ofSuite = reports.filter((r) => r.suite === suite);
    // Ours first, then the peers by name.
    const implementations = [...new Set(ofSuite.map((r) => r.implementation))].sort((a, b) => Number(b === 'lifelong') - Number(a === 'lifelong') || a.localeCompare(b));
    if (implementations.length < 2) continue;
    const runsOf = new Map(implementations.map((name) => [name, mergeRuns(ofSuite.filter((r) => r.implementation === name).flatMap((r) => r.runs))]));
    const allRuns = [...runsOf.values()].flat();
    const rows = new Map<string, { dataset: BenchDataset; scenario: Scenario; strategy: string }>();
    for (const runs of runsOf.values()) for (const r of runs) rows.set(`${r.dataset}|${r.scenario}|${r.strategy}`, { dataset: r.dataset, scenario: r.scenario, strategy: r.strategy });
    const keys = [...rows.values()].sort(
      (a, b) => a.dataset.localeCompare(b.dataset) || SCENARIOS.indexOf(a.scenario) - SCENARIOS.indexOf(b.scenario) || strategyOrder(a.strategy) - strategyOrder(b.strategy),
    );
    // The paper's number beside the implementations, for protocols it published on (iterated ones: not the online suite).
    const publishedFor = (key: { dataset: BenchDataset; scenario: Scenario; strategy: string }): number | undefined =>
      protocolIterations(suite, key.dataset, allRuns) > 0 ? PUBLISHED_ACCURACY[key.dataset][key.strategy]?.[key.scenario] : undefined;
    const withPaper = keys.some((key) => publishedFor(key) !== undefined);
    const header = ['dataset', 'scenario', 'strategy', ...(withPaper ? ['paper'] : []), ...implementations.map((i) => `${i} accuracy (%)`), ...implementations.map((i) => `${i} samples/s`)];
    out.push(`Suite \`${suite}\`:`, '', `| ${header.join(' | ')} |`, `|${header.map((_, i) => (i < 3 ? '---' : '---:')).join('|')}|`);
    for (const key of keys) {
      const groups = implementations.map((i) => (runsOf.get(i) ?? []).filter((r) => r.dataset === key.dataset && r.scenario === key.scenario && r.strategy === key.strategy));
      const accuracy = groups.map((g) => {
        const s = summariseRuns(g)[0];
        if (!s) return '—';
        const iterations = Math.min(...g.map((r) => r.protocol.iterationsPerTask));
        return `${meanStd(s.finalAverageAccuracy, s.seeds.length)}${spread(g)}${iterations < protocolIterations(suite, key.dataset, allRuns) ? ` (${iterations} it.)` : ''}`;
      });
      const speed = groups.map((g) => (g.length ? meanAndStd(g.map((r) => r.samplesPerSecond)).mean.toFixed(0) : '—'));
      const paper = withPaper ? [publishedFor(key)?.toFixed(1) ?? '—'] : [];
      out.push(`| ${[key.dataset, SCENARIO_COLUMNS[key.scenario], key.strategy, ...paper, ...accuracy, ...speed].join(' | ')} |`);
    }
    out.push('', ...(withPaper ? ['- paper: van de Ven & Tolias 2019, mean over 10 seeds (random digit pairs for seeds ≥ 1 in split MNIST)'] : []), ...[...new Set(ofSuite.map((r) => `- ${r.implementation}: ${r.machine.runtime}, backend ${r.machine.backend}; \`${r.command}\``))], '');
  }
  return out.length ? out.join('\n') : 'No suite was run by more than one implementation.\n';
}

/**
 * Replaces the text between `<!-- bench:KEY -->` and `<!-- /bench:KEY -->` in a document, or
 * appends the marked section when it is not there yet.
 */
export function replaceMarkedSection(document: string, key: string, content: string): string {
  const open = `<!-- bench:${key} -->`;
  const close = `<!-- /bench:${key} -->`;
  const start = document.indexOf(open);
  const end = document.indexOf(close);
  const block = `${open}\n${content.trimEnd()}\n${close}`;
  if (start >= 0 && end > start) return document.slice(0, start) + block + document.slice(end + close.length);
  return `${document.trimEnd()}\n\n${block}\n`;
}
