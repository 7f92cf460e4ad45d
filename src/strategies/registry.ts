import * as path from 'node:path';
import { ConfigError } from '../core/errors';
import { DEN_STRATEGY } from './den';
import { defineStrategy, type StrategyDescriptor } from './descriptor';
import { DGR_STRATEGY } from './dgr';
import { EWC_STRATEGY } from './ewc';
import { FINETUNE_STRATEGY } from './finetune';
import { JOINT_STRATEGY } from './joint';
import { L2_STRATEGY } from './l2';
import { ONLINE_EWC_STRATEGY } from './online-ewc';
import { PROGRESSIVE_STRATEGY } from './progressive';
import { REPLAY_STRATEGY } from './replay';
import type { StrategyFactory } from './strategy';

/** The built-in strategies, in the order tables and plots show them (README's table). */
export const BUILTIN_STRATEGIES: readonly StrategyDescriptor[] = [
  FINETUNE_STRATEGY,
  L2_STRATEGY,
  EWC_STRATEGY,
  ONLINE_EWC_STRATEGY,
  PROGRESSIVE_STRATEGY,
  DEN_STRATEGY,
  DGR_STRATEGY,
  REPLAY_STRATEGY,
  JOINT_STRATEGY,
];

/**
 * Strategy descriptors by name. A registry is a value, not a global: the engine builds one with
 * the built-ins and a pipeline may add a user's module (`strategy.module`) without editing src/.
 */
export class StrategyRegistry {
  private readonly descriptors = new Map<string, StrategyDescriptor>();

  register(descriptor: StrategyDescriptor): this {
    if (this.descriptors.has(descriptor.name)) throw new ConfigError(`strategy "${descriptor.name}" is registered already`, undefined, 'strategy.name');
    this.descriptors.set(descriptor.name, descriptor);
    return this;
  }

  /** In order of registration. */
  names(): string[] {
    return [...this.descriptors.keys()];
  }

  /** In order of registration. */
  all(): StrategyDescriptor[] {
    return [...this.descriptors.values()];
  }

  has(name: string): boolean {
    return this.descriptors.has(name);
  }

  describe(name: string): StrategyDescriptor {
    const descriptor = this.descriptors.get(name);
    if (!descriptor) throw new ConfigError(`unknown strategy "${name}" (known: ${this.names().join(', ')}); a strategy of your own can be named with strategy.module`, undefined, 'strategy.name');
    return descriptor;
  }

  /** The factory of `name`. */
  get(name: string): StrategyFactory {
    return this.describe(name).create;
  }
}

/** A registry holding the built-in strategies. */
export function builtinStrategies(): StrategyRegistry {
  const registry = new StrategyRegistry();
  for (const descriptor of BUILTIN_STRATEGIES) registry.register(descriptor);
  return registry;
}

/**
 * Loads a user's strategy module (CommonJS, or transpiled): it exports a descriptor as `strategy`
 * (see defineStrategy), or only a factory as `createStrategy` or its default export, which is then
 * described as a `custom` strategy named `name` (default: the file's), with DEFAULT_CAPABILITIES.
 * See README "Your own strategy".
 */
export function loadStrategyModule(modulePath: string, name?: string): StrategyDescriptor {
  const resolved = path.resolve(modulePath);
  let loaded: Record<string, unknown>;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    loaded = require(resolved) as Record<string, unknown>;
  } catch (cause) {
    throw new ConfigError(`cannot load strategy.module ${resolved}: ${(cause as Error).message}`, undefined, 'strategy.module', cause);
  }
  const described = loaded.strategy ?? (typeof loaded.default === 'object' ? loaded.default : undefined);
  if (described !== undefined && described !== null) {
    let descriptor: StrategyDescriptor;
    try {
      descriptor = defineStrategy(described as StrategyDescriptor);
    } catch (cause) {
      throw new ConfigError(`strategy.module ${resolved} exports an invalid strategy: ${(cause as Error).message}`, undefined, 'strategy.module', cause);
    }
    if (name !== undefined && descriptor.name !== name) throw new ConfigError(`strategy.module ${resolved} describes strategy "${descriptor.name}", but strategy.name is "${name}"`, undefined, 'strategy.name');
    return descriptor;
  }
  const factory = loaded.createStrategy ?? loaded.default;
  if (typeof factory !== 'function') throw new ConfigError(`strategy.module ${resolved} exports no createStrategy function (nor a strategy descriptor as \`strategy\`)`, undefined, 'strategy.module');
  return defineStrategy({ name: name ?? path.basename(resolved, path.extname(resolved)), summary: `createStrategy of ${resolved}`, create: factory as StrategyFactory });
}
