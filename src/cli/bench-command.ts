/**
 * `lifelong bench`: runs a benchmark suite (suites/definitions.ts) through the engine, seed after seed,
 * and writes the JSON report, a markdown table and SVG plots; `--compare DIR` puts reports of
 * several implementations (ours, bench/peers/) side by side; `--render` redraws from reports.
 *
 * The report is rewritten after every run, so a long suite that is interrupted keeps what it did,
 * and `--resume` goes on from there.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { selectBackend, BACKEND_NAMES, type BackendName } from '../backend/backend';
import { DataFormatError, UsageError } from '../core/errors';
import { SCENARIOS, type Scenario } from '../core/types';
import { averageAccuracyAfterTask, BENCH_REPORT_FORMAT, mergeRuns, runKey, summariseRuns, type BenchReport, type BenchRun } from '../suites/bench-report';
import { accuracyHeatmaps } from '../suites/accuracy-heatmaps';
import { averageAccuracyPlot } from '../suites/average-accuracy-plot';
import { seedFigurePlot } from '../suites/seed-figure-plot';
import { describeMachine, runBenchCase } from '../suites/run-bench';
import { benchSuite, SUITE_NAMES, type SuiteName } from '../suites/definitions';
import { comparisonTable, replaceMarkedSection, suiteMarkdown } from '../suites/tables';
import type { EngineEvent } from '../operators/events';
import { loadStrategyModule } from '../strategies/registry';
import { loadDaemonConfig } from '../config/daemon-config';
import { defaultDaemonConfig } from './run-command';
import { SPLIT_PAIRINGS, type SplitPairs } from '../data/task-streams';
import { EXIT_CODES } from './exit-codes';
import { parseCommandArgs } from './parse-command-args';
import type { CommandUsage } from './usage';

export const BENCH_USAGE: CommandUsage = {
  synopsis: `  lifelong bench --suite three-scenarios-split-mnist|three-scenarios-permuted-mnist|online|seed-figure
               [--repeats N] [--report FILE] [--out DIR] [--iterations N] [--test-samples N]
               [--strategies LIST] [--scenarios task,domain,class] [--pairs fixed|random] [--resume]
               [--docs FILE] [--backend NAME] [--module FILE [--params JSON]]
  lifelong bench --compare DIR[,DIR...] [--out DIR] [--docs FILE]
  lifelong bench --render FILE[,FILE...] [--out DIR] [--docs FILE]`,
  description: `bench     runs a benchmark suite through the engine (docs/BENCHMARKS.md): the protocol of van de Ven
          & Tolias 2019, which revisits a task's images within the task (bench mode only; the
          daemon stays single-pass). Writes DIR/SUITE.json (after every run), SUITE.md and SVG plots.
          --repeats N      seeds 1..N (default 1); tables give mean ± std over seeds
          --out DIR        where the report, table and plots go (default bench-results)
          --iterations N   iterations per task instead of the protocol's (a quicker, lesser run)
          --test-samples N score a seeded sample of N test images per task instead of all (an estimate)
          --pairs P        split MNIST's digit pairs: fixed (0,1)...(8,9), the default, or random: a
                           seeded draw per seed, as the authors' code does for seeds >= 1
          --strategies L   only these rows (finetune,l2,ewc,online-ewc,progressive,den,dgr,dgr+distill,replay,joint)
          --resume         keep the runs already in the report and do the rest
          --module FILE    also run the strategy this JS module describes (as strategy.module takes it),
                           as one more row on the same protocol; with --strategies, name its row too
          --params JSON    its strategy.params: an object, or one per scenario
                           ({"task": {...}, "domain": {...}, "class": {...}})
          --docs FILE      also replace the suite's marked section of FILE (docs/BENCHMARKS.md)
          --compare DIRS   reports of several implementations (ours, bench/peers/) side by side,
                           suite by suite; writes OUT/comparison.md
          --render FILES   redraw table and plots from reports (several: merged)
`,
};

interface Output {
  write(text: string): unknown;
}

function usageError(option: string, message: string): UsageError {
  return new UsageError(`bench: --${option} ${message}`, `--${option}`);
}

const SCENARIO_ALIASES: Record<string, Scenario> = { task: 'task-incremental', domain: 'domain-incremental', class: 'class-incremental' };

function parseScenarios(text: string): Scenario[] {
  return text.split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
    const scenario = SCENARIO_ALIASES[s] ?? (SCENARIOS.includes(s as Scenario) ? (s as Scenario) : undefined);
    if (!scenario) throw usageError('scenarios', `expects task, domain or class (comma-separated), got "${s}"`);
    return scenario;
  });
}

function positiveInteger(option: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw usageError(option, `expects a positive integer, got "${text}"`);
  return n;
}

export interface BenchArgs {
  readonly mode: 'run' | 'compare' | 'render';
  readonly suite?: SuiteName;
  readonly repeats: number;
  readonly report?: string;
  readonly out: string;
  readonly iterations?: number;
  /** Test images per task scored after each task instead of all of them (an estimate, cheaper). */
  readonly testSamples?: number;
  readonly strategies?: readonly string[];
  readonly scenarios?: readonly Scenario[];
  readonly pairs?: SplitPairs;
  /** --backend; absent: the daemon configuration's (config/default.json, LIFELONG_BACKEND), as for `lifelong run`. */
  readonly backend?: BackendName;
  readonly resume: boolean;
  readonly docs?: string;
  /** A user's strategy module run as one more row, with its params (all scenarios, or per scenario). */
  readonly module?: { readonly path: string; readonly params: (scenario: Scenario) => Readonly<Record<string, unknown>> };
  /** The directories of --compare, or the report files of --render. */
  readonly inputs: readonly string[];
}

function parsePairs(value: string): SplitPairs {
  if (!(SPLIT_PAIRINGS as readonly string[]).includes(value)) throw usageError('pairs', `expects ${SPLIT_PAIRINGS.join(' or ')}, got "${value}"`);
  return value as SplitPairs;
}

/** Parses `lifelong bench` arguments; throws UsageError naming the option. */
export function parseBenchArgs(args: readonly string[]): BenchArgs {
  const values = parseCommandArgs(args, {
    suite: { type: 'string' },
    repeats: { type: 'string' },
    report: { type: 'string' },
    out: { type: 'string' },
    iterations: { type: 'string' },
    'test-samples': { type: 'string' },
    strategies: { type: 'string' },
    scenarios: { type: 'string' },
    pairs: { type: 'string' },
    backend: { type: 'string' },
    resume: { type: 'boolean', default: false },
    docs: { type: 'string' },
    module: { type: 'string' },
    params: { type: 'string' },
    compare: { type: 'string' },
    render: { type: 'string' },
  });
  const modes = [values.suite, values.compare, values.render].filter((v) => v !== undefined).length;
  if (modes !== 1) throw usageError('suite', 'or --compare DIR or --render FILE[,FILE]: exactly one of them');
  if (values.suite !== undefined && !SUITE_NAMES.includes(values.suite as SuiteName)) {
    throw usageError('suite', `expects one of ${SUITE_NAMES.join(', ')}, got "${values.suite}"`);
  }
  if (values.params !== undefined && values.module === undefined) throw usageError('params', 'goes with --module FILE');
  if (values.module !== undefined && values.suite === undefined) throw usageError('module', 'goes with --suite NAME');
  const backend = values.backend as BackendName | undefined;
  if (backend !== undefined && !BACKEND_NAMES.includes(backend)) throw usageError('backend', `expects one of ${BACKEND_NAMES.join(', ')}, got "${backend}"`);
  return {
    mode: values.compare !== undefined ? 'compare' : values.render !== undefined ? 'render' : 'run',
    ...(values.suite !== undefined ? { suite: values.suite as SuiteName } : {}),
    repeats: positiveInteger('repeats', values.repeats, 1),
    ...(values.report !== undefined ? { report: values.report } : {}),
    out: values.out ?? 'bench-results',
    ...(values.iterations !== undefined ? { iterations: positiveInteger('iterations', values.iterations, 1) } : {}),
    ...(values['test-samples'] !== undefined ? { testSamples: positiveInteger('test-samples', values['test-samples'], 1) } : {}),
    ...(values.strategies !== undefined ? { strategies: values.strategies.split(',').map((s) => s.trim()).filter(Boolean) } : {}),
    ...(values.scenarios !== undefined ? { scenarios: parseScenarios(values.scenarios) } : {}),
    ...(values.pairs !== undefined ? { pairs: parsePairs(values.pairs) } : {}),
    ...(backend !== undefined ? { backend } : {}),
    resume: values.resume ?? false,
    ...(values.docs !== undefined ? { docs: values.docs } : {}),
    ...(values.module !== undefined ? { module: { path: path.resolve(values.module), params: parseModuleParams(values.params) } } : {}),
    inputs: (values.compare ?? values.render ?? '').split(',').map((s) => s.trim()).filter(Boolean),
  };
}

/**
 * --params: one object for every scenario, or an object keyed by scenario (task, domain, class, or
 * the full names) giving each its own; a scenario it leaves out runs with the strategy's defaults.
 */
function parseModuleParams(text: string | undefined): (scenario: Scenario) => Readonly<Record<string, unknown>> {
  if (text === undefined) return () => ({});
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw usageError('params', `is not JSON: ${(error as Error).message}`);
  }
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObject(parsed)) throw usageError('params', `must be a JSON object, got ${text}`);
  const keys = Object.keys(parsed);
  const byScenario = keys.length > 0 && keys.every((k) => k in SCENARIO_ALIASES || SCENARIOS.includes(k as Scenario));
  if (!byScenario) return () => parsed;
  const perScenario = new Map<Scenario, Record<string, unknown>>();
  for (const [key, value] of Object.entries(parsed)) {
    if (!isObject(value)) throw usageError('params', `for scenario ${key} must be a JSON object, got ${JSON.stringify(value)}`);
    perScenario.set(SCENARIO_ALIASES[key] ?? (key as Scenario), value);
  }
  return (scenario) => perScenario.get(scenario) ?? {};
}

/** Reads a bench report, refusing anything that is not one (a clear error naming the file). */
export function readBenchReport(file: string): BenchReport {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    throw new DataFormatError(`bench: cannot read report ${file}: ${(error as Error).message}`, { cause: error });
  }
  const report = parsed as Partial<BenchReport>;
  if (report.format !== BENCH_REPORT_FORMAT || !Array.isArray(report.runs) || typeof report.suite !== 'string') {
    throw new DataFormatError(`bench: ${file} is not a bench report (format "${String(report.format)}", expected "${BENCH_REPORT_FORMAT}")`);
  }
  return report as BenchReport;
}

function writeFile(file: string, text: string): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const temporary = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(temporary, text);
  fs.renameSync(temporary, file); // a reader (or a crash) never sees half a report
}

/** Writes the markdown and plots of a report into `out`; returns the files written. */
export function renderReport(report: BenchReport, out: string): string[] {
  const files: string[] = [];
  const put = (name: string, text: string) => {
    const file = path.join(out, name);
    writeFile(file, text);
    files.push(file);
  };
  put(`${report.suite}.md`, suiteMarkdown(report));
  const summaries = summariseRuns(report.runs);
  if (report.suite === 'seed-figure') {
    put(`${report.suite}.svg`, seedFigurePlot(report.runs, { title: 'Two permuted-MNIST tasks: accuracy after learning B' }));
  } else {
    put(`${report.suite}-average-accuracy.svg`, averageAccuracyPlot(summaries, { title: `${report.suite}: average accuracy over the tasks learned so far` }));
    put(`${report.suite}-accuracy-matrices.svg`, accuracyHeatmaps(summaries, { title: `${report.suite}: accuracy on task j after learning task i` }));
  }
  return files;
}

function updateDocs(file: string, key: string, content: string): void {
  const before = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  writeFile(file, replaceMarkedSection(before, key, content));
}

function mergeReports(reports: readonly BenchReport[]): BenchReport {
  const first = reports[0] as BenchReport;
  for (const r of reports) {
    if (r.suite !== first.suite || r.implementation !== first.implementation) {
      throw new UsageError(`bench: --render merges reports of one suite and implementation; got ${first.suite}/${first.implementation} and ${r.suite}/${r.implementation}`, '--render');
    }
  }
  return { ...first, command: reports.map((r) => r.command).filter((c, i, all) => all.indexOf(c) === i).join(' ; '), runs: mergeRuns(reports.flatMap((r) => r.runs)) };
}


/** `lifelong bench ...`; returns the exit code. */
export async function benchCommand(args: readonly string[], out: Output = process.stdout, signal?: AbortSignal): Promise<number> {
  const options = parseBenchArgs(args);
  if (options.mode === 'compare') {
    const reports = options.inputs.flatMap(reportsIn);
    if (reports.length === 0) throw usageError('compare', `found no bench report (*.json with format ${BENCH_REPORT_FORMAT}) in ${options.inputs.join(', ')}`);
    const table = comparisonTable(reports);
    writeFile(path.join(options.out, 'comparison.md'), table);
    if (options.docs) updateDocs(options.docs, 'comparison', table);
    out.write(table);
    return EXIT_CODES.success;
  }
  if (options.mode === 'render') {
    const report = mergeReports(options.inputs.map(readBenchReport));
    for (const file of renderReport(report, options.out)) out.write(`wrote ${file}\n`);
    if (options.docs) updateDocs(options.docs, report.suite, suiteMarkdown(report));
    return EXIT_CODES.success;
  }

  const suite = benchSuite(options.suite as SuiteName, {
    ...(options.iterations !== undefined ? { iterationsPerTask: options.iterations } : {}),
    ...(options.testSamples !== undefined ? { testSamplesPerTask: options.testSamples } : {}),
    ...(options.strategies ? { strategies: options.strategies } : {}),
    ...(options.scenarios ? { scenarios: options.scenarios } : {}),
    ...(options.pairs ? { pairs: options.pairs } : {}),
    ...(options.module ? { module: { ...options.module, descriptor: loadStrategyModule(options.module.path) } } : {}),
  });
  if (suite.cases.length === 0) throw usageError('strategies', `and --scenarios leave no run in suite ${suite.name}`);
  const reportFile = options.report ?? path.join(options.out, `${suite.name}.json`);
  // The daemon's configuration decides, as for `lifelong run`: one setting (CI's LIFELONG_BACKEND=wasm) pins both.
  const backend = await selectBackend(loadDaemonConfig(defaultDaemonConfig(), options.backend ? { backend: options.backend } : {}).backend, () => undefined);
  const previous = options.resume && fs.existsSync(reportFile) ? readBenchReport(reportFile) : undefined;
  if (previous && previous.suite !== suite.name) throw usageError('resume', `${reportFile} holds suite ${previous.suite}, not ${suite.name}`);
  // runKey ignores the pairing: a resumed report must hold one, or its cells would mix them.
  if (previous?.runs.some((r) => r.dataset === 'split-mnist' && (r.protocol.pairs ?? 'fixed') !== (options.pairs ?? 'fixed'))) throw usageError('resume', `${reportFile} holds runs with other digit pairs than --pairs ${options.pairs ?? 'fixed'}`);
  const runs: BenchRun[] = [...(previous?.runs ?? [])];
  const done = new Set(runs.map(runKey));
  const report = (): BenchReport => ({
    format: BENCH_REPORT_FORMAT,
    suite: suite.name,
    implementation: 'lifelong',
    implementationVersion: packageVersion(),
    createdAt: new Date().toISOString(),
    machine: describeMachine(backend.name),
    // A resumed report was written by several commands: keep them all, so the table names each.
    command: [...new Set([...(previous?.command.split(' ; ') ?? []), `lifelong bench ${args.join(' ')}`])].join(' ; '),
    runs,
  });
  out.write(`${suite.description}\n${suite.cases.length} runs per seed, seeds 1..${options.repeats}, backend ${backend.name}; report: ${reportFile}\n`);
  const total = suite.cases.length * options.repeats;
  let index = 0;
  for (let seed = 1; seed <= options.repeats; seed++) {
    for (const c of suite.cases) {
      index += 1;
      if (done.has(runKey({ ...c, seed }))) continue;
      if (signal?.aborted) return EXIT_CODES.interrupted;
      const started = Date.now();
      // A run can take most of an hour: say where it is after each task.
      const onEvent = (event: EngineEvent) => {
        if (event.kind !== 'task-outcome') return;
        const average = 100 * averageAccuracyAfterTask(event.probeAccuracy, event.task.index);
        out.write(`  [${index}/${total}] ${c.strategy} ${c.scenario} seed ${seed}: task ${event.task.index + 1}/${c.protocol.tasks} done, average ${average.toFixed(1)}%, ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
      };
      const run = await runBenchCase(c, seed, { backend: backend.name, onEvent, ...(signal ? { signal } : {}) });
      runs.push(run);
      writeFile(reportFile, JSON.stringify(report(), null, 1));
      out.write(
        `[${index}/${total}] ${c.dataset} ${c.scenario} ${c.strategy} seed ${seed}: ${(100 * run.finalAverageAccuracy).toFixed(1)}% ` +
          `(after each task: ${run.averageAccuracyAfterTask.map((a) => (100 * a).toFixed(1)).join(' ')}), ${run.wallSeconds.toFixed(0)} s, ${run.samplesPerSecond.toFixed(0)} samples/s\n`,
      );
    }
  }
  const final = report();
  writeFile(reportFile, JSON.stringify(final, null, 1));
  for (const file of renderReport(final, options.out)) out.write(`wrote ${file}\n`);
  if (options.docs) updateDocs(options.docs, suite.name, suiteMarkdown(final));
  out.write(suiteMarkdown(final));
  return EXIT_CODES.success;
}

/** The bench reports among a directory's *.json files (each read once; other JSON is skipped). */
function reportsIn(dir: string): BenchReport[] {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw usageError('compare', `expects a directory of bench reports, got ${dir}`);
  return fs
    .readdirSync(dir)
    .filter((name) => name.endsWith('.json'))
    .sort()
    .flatMap((name) => {
      try {
        const parsed = JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')) as Partial<BenchReport>;
        return parsed.format === BENCH_REPORT_FORMAT && Array.isArray(parsed.runs) ? [parsed as BenchReport] : [];
      } catch {
        return [];
      }
    });
}

function packageVersion(): string {
  try {
    return (JSON.parse(fs.readFileSync(path.resolve(__dirname, '../../../package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
