import { ConfigError, StrategyError } from '../core/errors';
import type { StrategyOptions } from './strategy';

/**
 * A default that follows one of the pipeline's model or training settings (dgr's generator learns
 * at its solver's rate by default). Named by its pipeline key, which is what `lifelong strategies`
 * shows.
 */
export interface SettingDefault {
  readonly sameAs: 'training.learningRate' | 'training.stepsPerBatch' | 'model.hiddenLayers';
}

interface Documented {
  /** What the parameter does, in one or two sentences: shown by `lifelong strategies`. */
  readonly doc: string;
}

/** How one strategy hyperparameter is validated and documented. */
export type ParamSpec = Documented &
  (
    | {
        readonly type: 'number';
        readonly default: number | string | SettingDefault;
        readonly min?: number;
        readonly max?: number;
        readonly exclusiveMin?: boolean;
        /** Words accepted instead of a number (dgr's currentWeight "1/t"). */
        readonly orOneOf?: readonly string[];
      }
    | { readonly type: 'integer'; readonly default: number | SettingDefault; readonly min?: number; readonly max?: number }
    | { readonly type: 'boolean'; readonly default: boolean }
    | { readonly type: 'enum'; readonly default: string; readonly values: readonly string[] }
    /** A non-empty list of integers, each at least `min` (layer sizes). */
    | { readonly type: 'integers'; readonly default: readonly number[] | SettingDefault; readonly min?: number }
  );

type ValueOf<S extends ParamSpec> = S extends { type: 'boolean' }
  ? boolean
  : S extends { type: 'enum' }
    ? string
    : S extends { type: 'integers' }
      ? readonly number[]
      : S extends { orOneOf: readonly string[] }
        ? number | string
        : number;
export type ParamValues<T extends Record<string, ParamSpec>> = { readonly [K in keyof T]: ValueOf<T[K]> };

function isSettingDefault(value: unknown): value is SettingDefault {
  return typeof value === 'object' && value !== null && 'sameAs' in value;
}

function settingValue(strategy: string, key: string, setting: SettingDefault, options: StrategyOptions | undefined): unknown {
  if (!options) throw new StrategyError(`strategy "${strategy}": the default of ${key} is ${setting.sameAs}, so readParams needs the strategy's options`);
  switch (setting.sameAs) {
    case 'training.learningRate':
      return options.learningRate;
    case 'training.stepsPerBatch':
      return options.stepsPerBatch;
    case 'model.hiddenLayers':
      return options.hiddenLayers;
  }
}

/**
 * Validates a strategy's `params` from the pipeline file against its spec: unknown keys and wrong
 * types are errors naming the key (strategy.params.KEY), missing keys take their defaults.
 * `options` resolves defaults that follow a pipeline setting (SettingDefault).
 */
export function readParams<T extends Record<string, ParamSpec>>(strategy: string, params: Readonly<Record<string, unknown>>, spec: T, options?: StrategyOptions): ParamValues<T> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(params)) {
    if (!(key in spec)) {
      throw new ConfigError(`strategy "${strategy}" has no parameter strategy.params.${key} (known: ${Object.keys(spec).join(', ') || 'none'})`, undefined, `strategy.params.${key}`);
    }
  }
  for (const [key, s] of Object.entries(spec)) {
    const value = params[key] ?? (isSettingDefault(s.default) ? settingValue(strategy, key, s.default, options) : s.default);
    const where = `strategy.params.${key}`;
    const fail = (why: string): never => {
      throw new ConfigError(`${where} of strategy "${strategy}" ${why}, got ${JSON.stringify(value)}`, undefined, where);
    };
    switch (s.type) {
      case 'number':
      case 'integer':
        if (s.type === 'number' && s.orOneOf?.includes(value as string)) break;
        if (typeof value !== 'number' || !Number.isFinite(value)) fail(s.type === 'number' && s.orOneOf ? `must be ${s.orOneOf.map((w) => JSON.stringify(w)).join(' or ')} or a finite number` : 'must be a finite number');
        if (s.type === 'integer' && !Number.isInteger(value)) fail('must be an integer');
        if (s.min !== undefined && ((value as number) < s.min || ('exclusiveMin' in s && s.exclusiveMin && value === s.min))) fail(`must be ${'exclusiveMin' in s && s.exclusiveMin ? '>' : '>='} ${s.min}`);
        if (s.max !== undefined && (value as number) > s.max) fail(`must be <= ${s.max}`);
        break;
      case 'boolean':
        if (typeof value !== 'boolean') fail('must be true or false');
        break;
      case 'enum':
        if (typeof value !== 'string' || !s.values.includes(value)) fail(`must be one of ${s.values.join(', ')}`);
        break;
      case 'integers': {
        const min = s.min ?? -Infinity;
        if (!Array.isArray(value) || value.length === 0 || !value.every((v) => Number.isInteger(v) && v >= min)) fail(`must be a non-empty list of integers${s.min === undefined ? '' : ` >= ${s.min}`}`);
        break;
      }
    }
    out[key] = value;
  }
  return out as ParamValues<T>;
}
