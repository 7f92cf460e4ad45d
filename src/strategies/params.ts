import { ConfigError } from '../core/errors';

/** How one strategy hyperparameter is validated. */
export type ParamSpec =
  | { readonly type: 'number'; readonly default: number; readonly min?: number; readonly max?: number; readonly exclusiveMin?: boolean }
  | { readonly type: 'integer'; readonly default: number; readonly min?: number; readonly max?: number }
  | { readonly type: 'boolean'; readonly default: boolean }
  | { readonly type: 'enum'; readonly default: string; readonly values: readonly string[] };

type ValueOf<S extends ParamSpec> = S extends { type: 'boolean' } ? boolean : S extends { type: 'enum' } ? string : number;
export type ParamValues<T extends Record<string, ParamSpec>> = { readonly [K in keyof T]: ValueOf<T[K]> };

/**
 * Validates a strategy's `params` from the pipeline file against its spec: unknown keys and wrong
 * types are errors naming the key (strategy.params.KEY), missing keys take their defaults.
 */
export function readParams<T extends Record<string, ParamSpec>>(strategy: string, params: Readonly<Record<string, unknown>>, spec: T): ParamValues<T> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(params)) {
    if (!(key in spec)) {
      throw new ConfigError(`strategy "${strategy}" has no parameter strategy.params.${key} (known: ${Object.keys(spec).join(', ') || 'none'})`, undefined, `strategy.params.${key}`);
    }
  }
  for (const [key, s] of Object.entries(spec)) {
    const value = params[key] ?? s.default;
    const where = `strategy.params.${key}`;
    const fail = (why: string): never => {
      throw new ConfigError(`${where} of strategy "${strategy}" ${why}, got ${JSON.stringify(value)}`, undefined, where);
    };
    switch (s.type) {
      case 'number':
      case 'integer':
        if (typeof value !== 'number' || !Number.isFinite(value)) fail('must be a finite number');
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
    }
    out[key] = value;
  }
  return out as ParamValues<T>;
}
