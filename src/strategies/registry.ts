import * as path from 'node:path';
import { ConfigError } from '../core/errors';
import { createDen } from './den';
import { createDgr } from './dgr';
import { createEwc } from './ewc';
import { createFinetune } from './finetune';
import { createJoint } from './joint';
import { createL2 } from './l2';
import { createOnlineEwc } from './online-ewc';
import { createProgressive } from './progressive';
import { createReplay } from './replay';
import type { StrategyFactory } from './strategy';

/**
 * Strategies by name. A registry is a value, not a global: the engine builds one with the built-ins
 * and a pipeline may add a user's module (`strategy.module`) without editing src/.
 */
export class StrategyRegistry {
  private readonly factories = new Map<string, StrategyFactory>();

  register(name: string, factory: StrategyFactory): this {
    if (this.factories.has(name)) throw new ConfigError(`strategy "${name}" is registered already`, undefined, 'strategy.name');
    this.factories.set(name, factory);
    return this;
  }

  names(): string[] {
    return [...this.factories.keys()];
  }

  get(name: string): StrategyFactory {
    const factory = this.factories.get(name);
    if (!factory) throw new ConfigError(`unknown strategy "${name}" (known: ${this.names().join(', ')}); a strategy of your own can be named with strategy.module`, undefined, 'strategy.name');
    return factory;
  }
}

/** The built-in strategies. */
export function builtinStrategies(): StrategyRegistry {
  return new StrategyRegistry()
    .register('finetune', createFinetune)
    .register('l2', createL2)
    .register('ewc', createEwc)
    .register('online-ewc', createOnlineEwc)
    .register('progressive', createProgressive)
    .register('den', createDen)
    .register('replay', createReplay)
    .register('joint', createJoint)
    .register('dgr', createDgr);
}

/**
 * Loads a user's strategy module: a CommonJS or transpiled module exporting `createStrategy`
 * (or a default export) of type StrategyFactory. See README "Your own strategy".
 */
export function loadStrategyModule(modulePath: string): StrategyFactory {
  const resolved = path.resolve(modulePath);
  let loaded: Record<string, unknown>;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    loaded = require(resolved) as Record<string, unknown>;
  } catch (cause) {
    throw new ConfigError(`cannot load strategy.module ${resolved}: ${(cause as Error).message}`, undefined, 'strategy.module', cause);
  }
  const factory = loaded.createStrategy ?? loaded.default;
  if (typeof factory !== 'function') throw new ConfigError(`strategy.module ${resolved} exports no createStrategy function`, undefined, 'strategy.module');
  return factory as StrategyFactory;
}
