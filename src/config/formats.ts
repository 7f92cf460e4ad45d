/** Convict format functions that say what they expect, so that messages read "must be <expects>". */
import { ConfigError } from '../core/errors';
import { isPlainObject } from './json-value';

/** A convict format function that also describes, for messages, what it accepts. */
export interface DescribedFormat {
  (value: unknown, schema: { readonly default?: unknown }): void;
  /** E.g. "an integer >= 1"; messages read "must be <expects>". */
  readonly expects: string;
}

/**
 * Builds a format from a test. A null value where the default is null means the key was left
 * out of a required setting, reported as "is required".
 */
export function describedFormat(expects: string, test: (value: unknown) => boolean): DescribedFormat {
  // convict reads only the message of what a format throws and prefixes the key; resolveConfig
  // the config readers then name the file (configErrorFor), so this ConfigError carries neither.
  const format = (value: unknown, schema: { readonly default?: unknown }): void => {
    if (value === null && schema.default === null) throw new ConfigError(`is required: it must be ${expects}`);
    if (!test(value)) throw new ConfigError(`must be ${expects}`);
  };
  return Object.assign(format, { expects });
}

function rangeText(min?: number, max?: number): string {
  if (min !== undefined && max !== undefined) return ` from ${min} to ${max}`;
  if (min !== undefined) return ` >= ${min}`;
  if (max !== undefined) return ` <= ${max}`;
  return '';
}

function isIntegerIn(value: unknown, min?: number, max?: number): value is number {
  return (
    typeof value === 'number' &&
    Number.isSafeInteger(value) &&
    (min === undefined || value >= min) &&
    (max === undefined || value <= max)
  );
}

/** Ready-made formats. Each refuses wrong JSON types as well as out-of-range values. */
export const formats = {
  integer(range: { min?: number; max?: number; expects?: string } = {}): DescribedFormat {
    const expects = range.expects ?? `an integer${rangeText(range.min, range.max)}`;
    return describedFormat(expects, (v) => isIntegerIn(v, range.min, range.max));
  },

  /** A finite number; `above` is an exclusive lower bound (learning rate > 0). */
  number(range: { above?: number; min?: number; max?: number } = {}): DescribedFormat {
    const bounds = [
      range.above !== undefined ? `> ${range.above}` : '',
      range.min !== undefined ? `>= ${range.min}` : '',
      range.max !== undefined ? `<= ${range.max}` : '',
    ].filter((b) => b !== '');
    const expects = `a number${bounds.length > 0 ? ' ' + bounds.join(' and ') : ''}`;
    return describedFormat(
      expects,
      (v) =>
        typeof v === 'number' &&
        Number.isFinite(v) &&
        (range.above === undefined || v > range.above) &&
        (range.min === undefined || v >= range.min) &&
        (range.max === undefined || v <= range.max),
    );
  },

  boolean(): DescribedFormat {
    return describedFormat('true or false', (v) => typeof v === 'boolean');
  },

  oneOf<T extends string>(values: readonly T[]): DescribedFormat {
    return describedFormat(
      `one of ${values.map((v) => JSON.stringify(v)).join(', ')}`,
      (v) => typeof v === 'string' && (values as readonly string[]).includes(v),
    );
  },

  /** A string; with a pattern, one that matches it (`expects` then says what it means). */
  string(options: { pattern?: RegExp; expects?: string } = {}): DescribedFormat {
    const pattern = options.pattern;
    return describedFormat(
      options.expects ?? 'a string',
      (v) => typeof v === 'string' && (pattern === undefined || pattern.test(v)),
    );
  },

  integerList(options: { min?: number; minLength?: number } = {}): DescribedFormat {
    const minLength = options.minLength ?? 0;
    const expects =
      `${minLength > 0 ? 'a non-empty' : 'an'} array of integers${rangeText(options.min)}`;
    return describedFormat(
      expects,
      (v) => Array.isArray(v) && v.length >= minLength && v.every((x) => isIntegerIn(x, options.min)),
    );
  },

  stringList(options: { minLength?: number; pattern?: RegExp; expects?: string } = {}): DescribedFormat {
    const minLength = options.minLength ?? 0;
    return describedFormat(
      options.expects ?? `${minLength > 0 ? 'a non-empty' : 'an'} array of strings`,
      (v) => Array.isArray(v) && v.length >= minLength && v.every((x) => typeof x === 'string' && (options.pattern === undefined || options.pattern.test(x))),
    );
  },

  /** A JSON object or a boolean, passed through as is (kafkajs' `ssl`). */
  objectOrBoolean(): DescribedFormat {
    return describedFormat('true, false or an object', (v) => typeof v === 'boolean' || isPlainObject(v));
  },

  /** A JSON object, passed through as is (options for a client library). */
  object(): DescribedFormat {
    return describedFormat('an object', (v) => isPlainObject(v));
  },

  numberList(): DescribedFormat {
    return describedFormat(
      'an array of numbers',
      (v) => Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isFinite(x)),
    );
  },
};
