/**
 * The benchmark suites of `lifelong bench`: which strategies run on which stream, with which
 * protocol and hyperparameters, and the numbers the literature published for them.
 *
 * Protocol and hyperparameters: van de Ven & Tolias 2019, "Three scenarios for continual
 * learning" (arXiv 1904.07734), and its code's param_values (Dec 2019), summarised in
 * ../shared/reference/protocols.md.
 */
import { SCENARIOS, type Scenario } from '../core/types';
import type { SplitPairs } from '../data/task-streams';
import type { StrategyDescriptor } from '../strategies/descriptor';
import { builtinStrategies } from '../strategies/registry';
import type { BenchDataset, BenchProtocol } from './bench-report';

/** One run to do: a strategy (row label) on a scenario of a dataset, under a protocol. */
export interface BenchCase {
  readonly dataset: BenchDataset;
  readonly scenario: Scenario;
  /** Row label, shared with the peers' reports: finetune, ewc, dgr+distill... */
  readonly strategy: string;
  /** The registry name it runs as. */
  readonly implementationStrategy: string;
  readonly params: Readonly<Record<string, unknown>>;
  readonly protocol: BenchProtocol;
  /** The JS module of a user's strategy (`lifelong bench --module`); absent for built-ins. */
  readonly module?: string;
}

/** A user's strategy run as one more row of a suite, with its parameters per scenario. */
export interface ModuleRow {
  readonly path: string;
  readonly descriptor: StrategyDescriptor;
  readonly params: (scenario: Scenario) => Readonly<Record<string, unknown>>;
}

export interface BenchSuite {
  readonly name: string;
  readonly description: string;
  /** Every run of one seed, in the order they run. */
  readonly cases: readonly BenchCase[];
}

const STRATEGIES = builtinStrategies();

/** Bench rows that are a strategy under other parameters (paramsOf), listed after it. */
const VARIANTS: Readonly<Record<string, readonly string[]>> = { dgr: ['dgr+distill'] };

/** Every strategy the three-scenario suites run (the registry's, with their variants), in table order. */
export const BENCH_STRATEGIES: readonly string[] = STRATEGIES.names().flatMap((name) => [name, ...(VARIANTS[name] ?? [])]);

/** van de Ven & Tolias 2019: MLP, Adam, batch 128, iterations per task. */
const VAN_DE_VEN_PROTOCOL: Record<BenchDataset, BenchProtocol> = {
  'split-mnist': {
    tasks: 5,
    hiddenLayers: [400, 400],
    optimizer: 'adam',
    learningRate: 1e-3,
    batchSize: 128,
    iterationsPerTask: 2000,
    samplesPerTask: 0,
    stepsPerBatch: 1,
    revisits: true,
    testSamplesPerTask: 0,
  },
  'permuted-mnist': {
    tasks: 10,
    hiddenLayers: [1000, 1000],
    optimizer: 'adam',
    learningRate: 1e-4,
    batchSize: 128,
    iterationsPerTask: 5000,
    samplesPerTask: 0,
    stepsPerBatch: 1,
    revisits: true,
    testSamplesPerTask: 0,
  },
};

/** EWC lambda and online-EWC lambda / gamma of the paper's code, per dataset and scenario. */
const EWC_HYPERPARAMETERS: Record<BenchDataset, Record<Scenario, { ewc: number; online: number; gamma: number }>> = {
  'split-mnist': {
    'task-incremental': { ewc: 1e7, online: 1e8, gamma: 0.8 },
    'domain-incremental': { ewc: 1e6, online: 1e8, gamma: 0.7 },
    'class-incremental': { ewc: 1e8, online: 1e9, gamma: 0.8 },
  },
  'permuted-mnist': {
    'task-incremental': { ewc: 500, online: 500, gamma: 0.8 },
    'domain-incremental': { ewc: 500, online: 1000, gamma: 0.9 },
    'class-incremental': { ewc: 1, online: 5, gamma: 1.0 },
  },
};

/**
 * The paper measures the Fisher once, over the task's training set at the end-of-task weights.
 * The strategy streams it: measured on every 10th batch, averaged over the last ~20 measurements
 * (decay 0.95), i.e. over about the last 200 iterations (2 epochs of a split-MNIST task), where the
 * weights are nearly the final ones, at a tenth of the cost of measuring every batch.
 */
const ITERATED_FISHER = { fisherEvery: 10, fisherDecay: 0.95 } as const;

/**
 * Hyperparameters per strategy. EWC's follow the paper. The others have no published value on
 * this protocol and keep lifelong's defaults, except: DGR's generator is the paper's VAE (latent
 * 100, hidden layers as the solver's, trained once per solver step at the solver's learning rate:
 * the strategy's defaults); replay keeps 2000 samples, the exemplar budget of the paper's iCaRL;
 * joint needs no end-of-task passes, since the protocol already revisits every task's data.
 */
function paramsOf(dataset: BenchDataset, scenario: Scenario, strategy: string, protocol: BenchProtocol): { name: string; params: Record<string, unknown> } {
  const ewc = EWC_HYPERPARAMETERS[dataset][scenario];
  switch (strategy) {
    case 'ewc':
      return { name: 'ewc', params: { lambda: ewc.ewc, ...ITERATED_FISHER } };
    case 'online-ewc':
      return { name: 'online-ewc', params: { lambda: ewc.online, gamma: ewc.gamma, ...ITERATED_FISHER } };
    case 'dgr':
      return { name: 'dgr', params: { latent: 100, generatorHidden: [...protocol.hiddenLayers] } };
    case 'dgr+distill':
      return { name: 'dgr', params: { latent: 100, generatorHidden: [...protocol.hiddenLayers], distill: true } };
    case 'replay':
      return { name: 'replay', params: { budget: 2000 } };
    case 'joint':
      return { name: 'joint', params: { epochs: 0 } };
    default:
      return { name: strategy, params: {} };
  }
}

function casesOf(dataset: BenchDataset, protocol: BenchProtocol, strategies: readonly string[], paramsFor = paramsOf): BenchCase[] {
  const cases: BenchCase[] = [];
  for (const scenario of SCENARIOS) {
    for (const strategy of strategies) {
      const { name, params } = paramsFor(dataset, scenario, strategy, protocol);
      const { capabilities } = STRATEGIES.describe(name);
      if (!capabilities.scenarios.includes(scenario)) continue;
      // The literature evaluates these in Task-IL only; they would infer the task otherwise.
      if (capabilities.needsTaskIdentity && scenario !== 'task-incremental') continue;
      cases.push({ dataset, scenario, strategy, implementationStrategy: name, params, protocol });
    }
  }
  return cases;
}

/**
 * Single pass: each sample once, micro-batches of 10, one step each, 1000 samples per task. The
 * EWC lambdas of the iterated protocol assume a Fisher measured on a model trained for 2000
 * iterations (confident, tiny gradients); after 100 small steps the Fisher is far larger, so the
 * online suite uses the single-pass calibration of the split-MNIST pipelines (lambda 1e4).
 */
function onlineParams(dataset: BenchDataset, scenario: Scenario, strategy: string, protocol: BenchProtocol): { name: string; params: Record<string, unknown> } {
  const gamma = EWC_HYPERPARAMETERS[dataset][scenario].gamma;
  if (strategy === 'ewc') return { name: 'ewc', params: { lambda: 1e4 } };
  if (strategy === 'online-ewc') return { name: 'online-ewc', params: { lambda: 1e4, gamma } };
  if (strategy === 'replay') return { name: 'replay', params: { budget: 1000 } };
  if (strategy === 'joint') return { name: 'joint', params: { epochs: 1 } };
  return paramsOf(dataset, scenario, strategy, protocol);
}

function onlineProtocol(dataset: BenchDataset): BenchProtocol {
  return {
    ...VAN_DE_VEN_PROTOCOL[dataset],
    tasks: dataset === 'split-mnist' ? 5 : 10,
    learningRate: 1e-3,
    batchSize: 10,
    iterationsPerTask: 0,
    samplesPerTask: 1000,
    revisits: false,
    // Ten permuted tasks scored on all 10,000 test images after each of them would cost more
    // than the 1000-sample training itself.
    testSamplesPerTask: dataset === 'split-mnist' ? 0 : 2000,
  };
}

/**
 * The seed's comparison (Kirkpatrick et al. 2017, Fig. 2A): two permuted-MNIST tasks in one
 * 10-way head, no penalty vs L2 vs EWC; accuracy on A and on B after learning B.
 */
const SEED_FIGURE_PROTOCOL: BenchProtocol = {
  tasks: 2,
  hiddenLayers: [400, 400],
  optimizer: 'adam',
  learningRate: 1e-4,
  batchSize: 128,
  iterationsPerTask: 1000,
  samplesPerTask: 0,
  stepsPerBatch: 1,
  revisits: true,
  testSamplesPerTask: 0,
};

const SEED_FIGURE_PARAMS: Record<string, Record<string, unknown>> = {
  finetune: {},
  l2: { lambda: 1 },
  ewc: { lambda: 500 },
};

export const SUITE_NAMES = ['three-scenarios-split-mnist', 'three-scenarios-permuted-mnist', 'online', 'seed-figure'] as const;
export type SuiteName = (typeof SUITE_NAMES)[number];

/** A suite, with optional overrides (fewer iterations or test images for a quick look; a subset of strategies or scenarios). */
export function benchSuite(
  name: SuiteName,
  overrides: {
    readonly iterationsPerTask?: number;
    readonly testSamplesPerTask?: number;
    readonly strategies?: readonly string[];
    readonly scenarios?: readonly Scenario[];
    /**
     * split-mnist's digit pairs: random draws them per seed, as the authors' code does for every
     * seed >= 1 (the paper's numbers average over such draws); the suites' default is fixed.
     */
    readonly pairs?: SplitPairs;
    /** A user's strategy, run beside the built-ins on the same protocol in every scenario it supports. */
    readonly module?: ModuleRow;
  } = {},
): BenchSuite {
  const suite = buildSuite(name);
  const cases = [...suite.cases, ...(overrides.module ? moduleCases(suite.cases, overrides.module) : [])]
    .filter((c) => !overrides.strategies || overrides.strategies.includes(c.strategy))
    .filter((c) => !overrides.scenarios || overrides.scenarios.includes(c.scenario))
    .map((c) =>
      overrides.iterationsPerTask !== undefined && c.protocol.iterationsPerTask > 0 ? { ...c, protocol: { ...c.protocol, iterationsPerTask: overrides.iterationsPerTask } } : c,
    )
    .map((c) => (overrides.testSamplesPerTask !== undefined ? { ...c, protocol: { ...c.protocol, testSamplesPerTask: overrides.testSamplesPerTask } } : c))
    .map((c) => (overrides.pairs !== undefined && c.dataset === 'split-mnist' ? { ...c, protocol: { ...c.protocol, pairs: overrides.pairs } } : c));
  return { ...suite, cases };
}

/** The module's row: one case per dataset and scenario the suite runs, under that scenario's protocol. */
function moduleCases(cases: readonly BenchCase[], row: ModuleRow): BenchCase[] {
  const seen = new Set<string>();
  const out: BenchCase[] = [];
  for (const c of cases) {
    const key = `${c.dataset}/${c.scenario}`;
    if (seen.has(key) || !row.descriptor.capabilities.scenarios.includes(c.scenario)) continue;
    seen.add(key);
    const { name } = row.descriptor;
    out.push({ dataset: c.dataset, scenario: c.scenario, strategy: name, implementationStrategy: name, params: row.params(c.scenario), protocol: c.protocol, module: row.path });
  }
  return out;
}

function buildSuite(name: SuiteName): BenchSuite {
  switch (name) {
    case 'three-scenarios-split-mnist':
      return {
        name,
        description: 'Split MNIST, 5 tasks, Task-/Domain-/Class-IL, protocol of van de Ven & Tolias 2019 (2000 iterations of 128 per task)',
        cases: casesOf('split-mnist', VAN_DE_VEN_PROTOCOL['split-mnist'], BENCH_STRATEGIES),
      };
    case 'three-scenarios-permuted-mnist':
      return {
        name,
        description: 'Permuted MNIST, 10 tasks, Task-/Domain-/Class-IL, protocol of van de Ven & Tolias 2019 (5000 iterations of 128 per task)',
        cases: casesOf('permuted-mnist', VAN_DE_VEN_PROTOCOL['permuted-mnist'], BENCH_STRATEGIES),
      };
    case 'online':
      return {
        name,
        description: 'Single pass: 1000 samples per task, micro-batches of 10, one gradient step each; split and permuted MNIST',
        cases: [
          ...casesOf('split-mnist', onlineProtocol('split-mnist'), BENCH_STRATEGIES, onlineParams),
          ...casesOf('permuted-mnist', onlineProtocol('permuted-mnist'), BENCH_STRATEGIES, onlineParams),
        ],
      };
    case 'seed-figure':
      return {
        name,
        description: 'Two permuted-MNIST tasks in one head (Kirkpatrick et al. 2017, Fig. 2A): no penalty vs L2 vs EWC',
        cases: Object.entries(SEED_FIGURE_PARAMS).map(([strategy, params]) => ({
          dataset: 'permuted-mnist' as const,
          scenario: 'domain-incremental' as const,
          strategy,
          implementationStrategy: strategy,
          params,
          protocol: SEED_FIGURE_PROTOCOL,
        })),
      };
  }
}

/**
 * Published average accuracy (%) after the last task, van de Ven & Tolias 2019 as quoted in
 * protocols.md (rounded): "None" is finetune, "Offline" joint. Missing: not published there.
 */
export const PUBLISHED_ACCURACY: Readonly<Record<BenchDataset, Readonly<Record<string, Partial<Record<Scenario, number>>>>>> = {
  'split-mnist': {
    finetune: { 'task-incremental': 87.2, 'domain-incremental': 59.2, 'class-incremental': 19.9 },
    joint: { 'task-incremental': 99.7, 'domain-incremental': 98.4, 'class-incremental': 97.9 },
    ewc: { 'task-incremental': 98.6, 'domain-incremental': 64.0, 'class-incremental': 20.0 },
    'online-ewc': { 'task-incremental': 99.1, 'domain-incremental': 64.3, 'class-incremental': 20.0 },
    // Synaptic Intelligence: no built-in, the example user strategy (examples/strategies/), run with --module.
    si: { 'task-incremental': 99.1, 'domain-incremental': 65.4, 'class-incremental': 20.0 },
    dgr: { 'task-incremental': 99.5, 'domain-incremental': 95.7, 'class-incremental': 90.8 },
    'dgr+distill': { 'task-incremental': 99.6, 'domain-incremental': 96.8, 'class-incremental': 91.8 },
  },
  'permuted-mnist': {
    ewc: { 'class-incremental': 25 },
    'online-ewc': { 'class-incremental': 34 },
    si: { 'class-incremental': 29 },
    dgr: { 'class-incremental': 92 },
    'dgr+distill': { 'class-incremental': 96 },
  },
};
