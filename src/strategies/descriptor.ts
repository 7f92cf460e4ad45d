import { StrategyError } from '../core/errors';
import { SCENARIOS, type Scenario } from '../core/types';
import type { ParamSpec } from './params';
import type { StrategyFactory } from './strategy';

/** The families of README's table; `custom` is a user's module that does not say. */
export type StrategyFamily = 'baseline' | 'regularization' | 'structure' | 'hybrid' | 'memory' | 'custom';

/** What a strategy can do: config validation, the bench, checkStrategy and `lifelong strategies` read it. */
export interface StrategyCapabilities {
  /** Scenarios it learns and answers in. */
  readonly scenarios: readonly Scenario[];
  /**
   * One column or subnetwork per task: at its best when told the task at test time (Task-IL).
   * Without the task identity it infers the task, which runs but is not the protocol the method
   * was published with; the bench suites evaluate such a strategy in Task-IL only.
   */
  readonly needsTaskIdentity: boolean;
  /** Keeps raw input samples (features, label) in memory and in its checkpoints. */
  readonly storesRawSamples: boolean;
  /** Keeps every sample of a finite stream: refused for live (Kafka) sources. */
  readonly needsFiniteStream: boolean;
  /**
   * Scenarios it runs in but is known to keep little of earlier tasks in, each with the measured
   * evidence (e.g. EWC in Class-IL: "19.7% on split MNIST, 5 tasks"). `lifelong run` warns at
   * start when a pipeline pairs the strategy with one of them (scenarioWarning). Absent: none.
   */
  readonly keepsLittleIn?: Readonly<Partial<Record<Scenario, string>>>;
}

/** A strategy as the registry knows it: how to build it, its parameters, what it can do. */
export interface StrategyDescriptor {
  /** The name a pipeline's strategy.name uses. */
  readonly name: string;
  readonly family: StrategyFamily;
  /** One line: the method and its reference. */
  readonly summary: string;
  readonly create: StrategyFactory;
  /** Every key of strategy.params, with its default and doc (the spec the factory validates with). */
  readonly params: Readonly<Record<string, ParamSpec>>;
  readonly capabilities: StrategyCapabilities;
}

/** What a strategy is assumed to do unless its descriptor says otherwise. */
export const DEFAULT_CAPABILITIES: StrategyCapabilities = Object.freeze({
  scenarios: SCENARIOS,
  needsTaskIdentity: false,
  storesRawSamples: false,
  needsFiniteStream: false,
});

/** A descriptor as written: everything but name and create has a default. */
export interface StrategyDefinition {
  readonly name: string;
  readonly create: StrategyFactory;
  /** Default `custom`. */
  readonly family?: StrategyFamily;
  readonly summary?: string;
  /** The documented keys of strategy.params; default none. */
  readonly params?: Readonly<Record<string, ParamSpec>>;
  /** Each one missing is DEFAULT_CAPABILITIES'. */
  readonly capabilities?: Partial<StrategyCapabilities>;
}

/**
 * A complete, frozen descriptor; checks what plain JavaScript could get wrong. A user's module
 * exports one as `strategy` (README "Your own strategy").
 */
export function defineStrategy(definition: StrategyDefinition): StrategyDescriptor {
  const { name, create } = definition;
  if (typeof name !== 'string' || name === '') throw new StrategyError(`a strategy descriptor needs a name, got ${JSON.stringify(name)}`);
  if (typeof create !== 'function') throw new StrategyError(`strategy descriptor "${name}" needs a create function (options) => Strategy`);
  const capabilities = { ...DEFAULT_CAPABILITIES, ...definition.capabilities };
  const unknown = capabilities.scenarios.filter((s) => !SCENARIOS.includes(s));
  if (capabilities.scenarios.length === 0 || unknown.length > 0) {
    throw new StrategyError(`strategy descriptor "${name}": capabilities.scenarios must list some of ${SCENARIOS.join(', ')}, got ${JSON.stringify(capabilities.scenarios)}`);
  }
  const weak = Object.keys(capabilities.keepsLittleIn ?? {}).filter((s) => !SCENARIOS.includes(s as Scenario));
  if (weak.length > 0) throw new StrategyError(`strategy descriptor "${name}": capabilities.keepsLittleIn has keys ${JSON.stringify(weak)}, not scenarios (${SCENARIOS.join(', ')})`);
  for (const [key, spec] of Object.entries(definition.params ?? {})) {
    if (typeof spec?.doc !== 'string' || spec.doc === '') throw new StrategyError(`strategy descriptor "${name}": parameter ${key} has no doc`);
  }
  return Object.freeze({
    name,
    family: definition.family ?? 'custom',
    summary: definition.summary ?? '',
    create,
    params: Object.freeze({ ...definition.params }),
    capabilities: Object.freeze({
      ...capabilities,
      scenarios: Object.freeze([...capabilities.scenarios]),
      ...(capabilities.keepsLittleIn ? { keepsLittleIn: Object.freeze({ ...capabilities.keepsLittleIn }) } : {}),
    }),
  });
}

/**
 * The start-up warning for a strategy configured for a scenario it is known to keep little in
 * (capabilities.keepsLittleIn), naming the strategies of `others` that suit it better: those
 * that run in it without that caveat, need no task identity and take a live stream. Undefined
 * when there is nothing to warn about.
 */
export function scenarioWarning(descriptor: StrategyDescriptor, scenario: Scenario, others: readonly StrategyDescriptor[]): string | undefined {
  const evidence = descriptor.capabilities.keepsLittleIn?.[scenario];
  if (evidence === undefined) return undefined;
  const better = others
    .filter((d) => d.name !== descriptor.name && d.capabilities.scenarios.includes(scenario) && d.capabilities.keepsLittleIn?.[scenario] === undefined)
    .filter((d) => !d.capabilities.needsTaskIdentity && !d.capabilities.needsFiniteStream)
    .map((d) => d.name);
  const advice = better.length > 0 ? `; for ${scenario} learning use ${better.join(' or ')} (README "Choosing a strategy")` : ' (README "Choosing a strategy")';
  return `strategy "${descriptor.name}" is known to keep little of earlier tasks in ${scenario} learning: ${evidence}${advice}`;
}

/**
 * keepsLittleIn's evidence for a method without rehearsal in Class-IL: its measured average
 * accuracy on split MNIST (docs/BENCHMARKS.md, suite three-scenarios-split-mnist), where 20% is
 * one task's classes out of five.
 */
export function splitMnistClassIl(accuracy: string): string {
  return `${accuracy} average accuracy over split MNIST's 5 tasks (docs/BENCHMARKS.md), about the last task's classes alone: without rehearsal, a shared head's old classes are overwritten`;
}
