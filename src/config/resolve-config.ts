/**
 * Shared machinery of the daemon and pipeline configurations: reading a JSON file, running a
 * convict schema over layered values (file < environment < overrides), value formats with
 * readable messages, and turning every problem into one ConfigError that names the file and
 * the dotted key.
 *
 * Why more than `convict(...).loadFile(...).validate()`:
 * - convict coerces strings by the type of the default (parseFloat, JSON.parse...), which is
 *   right for environment variables but wrong for a JSON file: `"batchSize": "12abc"` would
 *   silently become 12 and `"params": "x"` would throw a raw SyntaxError. File values are typed
 *   JSON, so a string where the schema wants a number, boolean, array or object is refused here
 *   before convict sees it.
 * - convict crashes on some shapes (an object where the schema has a plain value nested two
 *   levels deep); those are refused here too.
 * - convict's messages name the key but not the file, and list unknown nested keys leaf by leaf;
 *   they are rewritten.
 */
import * as fs from 'node:fs';
import convict from 'convict';
import { ConfigError } from '../core/errors';

/** One problem with one key. `key` is a dotted path, e.g. "training.batchSize". */
export interface ConfigIssue {
  readonly key: string;
  readonly problem: string;
}

// ---------------------------------------------------------------------------------------------
// Formats: convict format functions that say what they expect.

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
  const format = (value: unknown, schema: { readonly default?: unknown }): void => {
    if (value === null && schema.default === null) throw new Error(`is required: it must be ${expects}`);
    if (!test(value)) throw new Error(`must be ${expects}`);
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

// ---------------------------------------------------------------------------------------------
// Reading files.

/**
 * Reads a JSON file that must hold one object. Every failure is a ConfigError naming the file;
 * a syntax error also gives its line, column and offset (V8's own messages often do not).
 * @param what e.g. "pipeline config", for the message.
 */
export function readJsonObject(file: string, what: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new ConfigError(`${file}: cannot read the ${what}: ${reason}`, file, undefined, cause);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // a BOM some editors write

  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    const located = locateJsonSyntaxError(text);
    const detail = located
      ? `at line ${located.line}, column ${located.column} (offset ${located.offset}): ${located.problem}`
      : cause instanceof Error
        ? cause.message
        : String(cause);
    throw new ConfigError(`${file}: the ${what} is not valid JSON ${detail}`, file, undefined, cause);
  }
  if (!isPlainObject(parsed)) {
    throw new ConfigError(
      `${file}: the ${what} must be a JSON object ({...}), found ${render(parsed)}`,
      file,
    );
  }
  return parsed;
}

export interface JsonSyntaxError {
  /** 0-based offset into the text (after a BOM). */
  readonly offset: number;
  /** 1-based. */
  readonly line: number;
  /** 1-based. */
  readonly column: number;
  readonly problem: string;
}

/**
 * Finds the first JSON syntax error in `text` with a small recursive-descent scan (only run
 * after JSON.parse failed, so speed does not matter). Undefined if the text is valid JSON.
 */
export function locateJsonSyntaxError(text: string): JsonSyntaxError | undefined {
  class SyntaxAt {
    constructor(
      readonly offset: number,
      readonly problem: string,
    ) {}
  }
  let i = 0;
  const found = (): string => (i >= text.length ? 'the end of the file' : JSON.stringify(text[i]));
  const fail = (problem: string): never => {
    throw new SyntaxAt(i, problem);
  };
  const skipSpace = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i] as string)) i++;
  };
  const string = (): void => {
    i++; // opening quote
    for (;;) {
      if (i >= text.length) fail('unterminated string');
      const c = text[i] as string;
      if (c === '"') {
        i++;
        return;
      }
      if (c === '\\') {
        const escaped = text[i + 1];
        if (escaped === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) fail('bad \\u escape in string');
          i += 6;
        } else if (escaped !== undefined && '"\\/bfnrt'.includes(escaped)) {
          i += 2;
        } else {
          fail('bad escape in string');
        }
      } else if (c < ' ') {
        fail('control character (such as a raw newline) inside a string');
      } else {
        i++;
      }
    }
  };
  const numberPattern = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  const value = (): void => {
    skipSpace();
    const c = text[i];
    if (c === '{') return container('}', true);
    if (c === '[') return container(']', false);
    if (c === '"') return string();
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) {
      numberPattern.lastIndex = i;
      const match = numberPattern.exec(text);
      if (!match) fail('invalid number');
      i = numberPattern.lastIndex;
      if (/[0-9.eE]/.test(text[i] ?? '')) fail('invalid number');
      return;
    }
    for (const literal of ['true', 'false', 'null']) {
      if (text.startsWith(literal, i)) {
        i += literal.length;
        return;
      }
    }
    const word = /^[A-Za-z_$][\w$]*/.exec(text.slice(i));
    if (word) {
      fail(`unexpected word ${JSON.stringify(word[0])} (strings need double quotes; the literals are true, false, null)`);
    }
    fail(`expected a value, found ${found()}`);
  };
  const container = (close: '}' | ']', isObject: boolean): void => {
    i++; // opening bracket
    skipSpace();
    if (text[i] === close) {
      i++;
      return;
    }
    for (;;) {
      skipSpace();
      if (isObject) {
        if (text[i] !== '"') {
          fail(
            text[i] === close
              ? `trailing comma before ${JSON.stringify(close)}`
              : `expected a double-quoted key, found ${found()}`,
          );
        }
        string();
        skipSpace();
        if (text[i] !== ':') fail(`expected ':' after the key, found ${found()}`);
        i++;
      } else if (text[i] === close) {
        fail(`trailing comma before ${JSON.stringify(close)}`);
      }
      value();
      skipSpace();
      if (text[i] === ',') {
        i++;
        continue;
      }
      if (text[i] === close) {
        i++;
        return;
      }
      fail(`expected ',' or ${JSON.stringify(close)}, found ${found()}`);
    }
  };

  try {
    value();
    skipSpace();
    if (i < text.length) fail(`unexpected ${found()} after the end of the JSON value`);
    return undefined;
  } catch (error) {
    if (!(error instanceof SyntaxAt)) throw error;
    const before = text.slice(0, error.offset);
    const line = before.split('\n').length;
    const column = error.offset - before.lastIndexOf('\n');
    return { offset: error.offset, line, column, problem: error.problem };
  }
}

// ---------------------------------------------------------------------------------------------
// Running convict.

/** The values to merge over the schema defaults, lowest precedence first. */
export interface ConfigLayers {
  /** Values read from a file: typed JSON, never coerced. */
  readonly file?: Readonly<Record<string, unknown>>;
  /**
   * Environment variables, for schema keys that declare `env`. Empty variables count as unset;
   * numbers and booleans must be written in full ("9464", "true").
   */
  readonly env?: NodeJS.ProcessEnv;
  /**
   * Applied last, over the environment (command-line flags). Strings are accepted for numbers
   * and booleans, as for environment variables.
   */
  readonly overrides?: Readonly<Record<string, unknown>>;
}

export interface ResolvedConfig<T> {
  /** Undefined exactly when there are issues. */
  readonly value: T | undefined;
  readonly issues: readonly ConfigIssue[];
}

type SchemaNode = Record<string, unknown>;

/**
 * Validates layered values against a convict schema, strictly (unknown keys are errors), and
 * collects every problem instead of stopping at the first.
 * @param keyPrefix prepended to every issue key, for a section validated on its own ("source").
 */
export function resolveConfig<T>(
  schema: convict.Schema<T>,
  layers: ConfigLayers,
  keyPrefix = '',
): ResolvedConfig<T> {
  const definition = schema as unknown as SchemaNode;
  const issues: ConfigIssue[] = [];
  const fileValues = checkShapes(definition, layers.file ?? {}, '', 'file', issues);
  const env = checkEnvironment(definition, layers.env ?? {}, issues);
  const overrides = checkShapes(definition, layers.overrides ?? {}, '', 'override', issues);

  const origins = { file: fileValues, env, overrides };
  // args: [] keeps convict away from process.argv; env is passed explicitly for the same reason.
  const config = convict(schema, { env, args: [] });
  config.load(fileValues);
  // set(), unlike load(), is applied after the environment, so overrides win over it.
  const untyped = config as unknown as { set(key: string, value: unknown): void };
  for (const [key, value] of leafEntries(definition, overrides, '')) untyped.set(key, value);
  try {
    config.validate({ allowed: 'strict' });
  } catch (error) {
    issues.push(...readConvictErrors(error, definition, origins));
  }

  const prefixed = issues.map((issue) => ({
    key: keyPrefix === '' ? issue.key : issue.key === '' ? keyPrefix : `${keyPrefix}.${issue.key}`,
    problem: issue.problem,
  }));
  return { value: prefixed.length === 0 ? config.getProperties() : undefined, issues: prefixed };
}

/**
 * One ConfigError for all issues, one line each: "<where>: <key>: <problem>".
 * @param where the file's path, or a description such as "daemon config".
 * @param file the file, if there is one (ConfigError.file).
 */
export function configErrorFor(where: string, file: string | undefined, issues: readonly ConfigIssue[]): ConfigError {
  const lines = issues.map((issue) => `${where}: ${issue.key === '' ? '' : issue.key + ': '}${issue.problem}`);
  return new ConfigError(lines.join('\n'), file, issues[0]?.key);
}

function isSection(node: unknown): node is SchemaNode {
  // convict's own rule: an object without "default" is a nested section.
  return isPlainObject(node) && Object.keys(node).length > 0 && !('default' in node);
}

/** Finds the schema node at a dotted path, or undefined. */
function nodeAt(definition: SchemaNode, key: string): unknown {
  let node: unknown = definition;
  for (const part of key.split('.')) {
    if (!isSection(node) || !Object.prototype.hasOwnProperty.call(node, part)) return undefined;
    node = node[part];
  }
  return node;
}

/** What convict would coerce a string to for this leaf (its getFormat), or undefined for none. */
function coercedKind(leaf: SchemaNode): 'number' | 'boolean' | 'array' | 'object' | 'string' | undefined {
  if (leaf.format === Object) return 'object';
  const fallback = leaf.default;
  if (fallback === null || fallback === undefined) return undefined;
  if (Array.isArray(fallback)) return 'array';
  const kind = typeof fallback;
  return kind === 'number' || kind === 'boolean' || kind === 'object' || kind === 'string' ? kind : undefined;
}

function expectsOf(leaf: SchemaNode): string {
  if (leaf.format === Object) return 'an object';
  const expects = typeof leaf.format === 'function' ? (leaf.format as Partial<DescribedFormat>).expects : undefined;
  if (typeof expects === 'string') return expects;
  const kind = coercedKind(leaf);
  return kind === undefined ? 'a single value' : `a ${kind}`;
}

/** A number or boolean written as a string (environment, command line), strictly. */
function parsesAs(kind: 'number' | 'boolean', text: string): boolean {
  if (kind === 'boolean') return /^(true|false)$/i.test(text);
  return text.trim() !== '' && Number.isFinite(Number(text));
}

/**
 * Refuses values whose JSON shape convict would mishandle, and returns the values without them
 * (so that convict can still report every other problem). Unknown keys are kept: convict's strict
 * validation reports them.
 */
function checkShapes(
  definition: SchemaNode,
  values: Readonly<Record<string, unknown>>,
  path: string,
  origin: 'file' | 'override',
  issues: ConfigIssue[],
): Record<string, unknown> {
  const kept: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(values)) {
    const keyPath = path === '' ? key : `${path}.${key}`;
    const node = Object.prototype.hasOwnProperty.call(definition, key) ? definition[key] : undefined;
    const suffix = origin === 'override' ? ' (override)' : '';
    if (key.includes('.') || key === '__proto__') {
      // convict would read "a.b" as a path and silently skip "__proto__".
      const why = key === '__proto__' ? 'is reserved' : "contains '.' (nest an object instead)";
      issues.push({ key: keyPath, problem: `the key ${JSON.stringify(key)} ${why}${suffix}` });
    } else if (node === undefined) {
      kept[key] = value;
    } else if (isSection(node)) {
      if (isPlainObject(value)) {
        kept[key] = checkShapes(node, value, keyPath, origin, issues);
      } else {
        const keys = Object.keys(node).join(', ');
        issues.push({ key: keyPath, problem: `must be an object with keys ${keys}, got ${render(value)}${suffix}` });
      }
    } else {
      const leaf = node as SchemaNode;
      const kind = coercedKind(leaf);
      let acceptable: boolean;
      if (kind === 'object') acceptable = isPlainObject(value);
      else if (isPlainObject(value)) acceptable = false;
      else if (typeof value !== 'string' || kind === undefined || kind === 'string') acceptable = true;
      else acceptable = origin === 'override' && (kind === 'number' || kind === 'boolean') && parsesAs(kind, value);
      if (acceptable) kept[key] = value;
      else issues.push({ key: keyPath, problem: `must be ${expectsOf(leaf)}, got ${render(value)}${suffix}` });
    }
  }
  return kept;
}

/** Environment variables the schema declares, keyed by variable name. */
function environmentBindings(definition: SchemaNode, path = ''): Map<string, { key: string; leaf: SchemaNode }> {
  const bindings = new Map<string, { key: string; leaf: SchemaNode }>();
  for (const [name, node] of Object.entries(definition)) {
    const key = path === '' ? name : `${path}.${name}`;
    if (isSection(node)) {
      for (const [variable, binding] of environmentBindings(node, key)) bindings.set(variable, binding);
    } else if (isPlainObject(node) && typeof node.env === 'string') {
      bindings.set(node.env, { key, leaf: node });
    }
  }
  return bindings;
}

/** The schema's environment variables that are set and well-formed. */
function checkEnvironment(definition: SchemaNode, env: NodeJS.ProcessEnv, issues: ConfigIssue[]): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [variable, { key, leaf }] of environmentBindings(definition)) {
    const text = env[variable];
    if (text === undefined || text === '') continue;
    const kind = coercedKind(leaf);
    if ((kind === 'number' || kind === 'boolean') && !parsesAs(kind, text)) {
      issues.push({
        key,
        problem: `must be ${expectsOf(leaf)}, got ${JSON.stringify(text)} from environment variable ${variable}`,
      });
    } else {
      kept[variable] = text;
    }
  }
  return kept;
}

/** (dotted key, value) for each leaf or unknown key in values, for convict's set(). */
function* leafEntries(definition: unknown, values: Readonly<Record<string, unknown>>, path: string): Generator<[string, unknown]> {
  for (const [key, value] of Object.entries(values)) {
    const keyPath = path === '' ? key : `${path}.${key}`;
    const node = isSection(definition) && Object.prototype.hasOwnProperty.call(definition, key) ? definition[key] : undefined;
    if (isSection(node) && isPlainObject(value)) yield* leafEntries(node, value, keyPath);
    else if (node === undefined && isPlainObject(value) && Object.keys(value).length > 0) yield* leafEntries(undefined, value, keyPath);
    else yield [keyPath, value];
  }
}

function valueAt(values: unknown, key: string): { found: boolean; value?: unknown } {
  let current: unknown = values;
  for (const part of key.split('.')) {
    if (!isPlainObject(current) || !Object.prototype.hasOwnProperty.call(current, part)) return { found: false };
    current = current[part];
  }
  return { found: true, value: current };
}

/** "got ..." for a key, from the layer that set it. */
function describeOrigin(
  key: string,
  definition: SchemaNode,
  origins: { file: unknown; env: Record<string, string>; overrides: unknown },
): string {
  const override = valueAt(origins.overrides, key);
  if (override.found) return `, got ${render(override.value)} (override)`;
  const leaf = nodeAt(definition, key);
  const variable = isPlainObject(leaf) && typeof leaf.env === 'string' ? leaf.env : undefined;
  if (variable !== undefined && origins.env[variable] !== undefined) {
    return `, got ${JSON.stringify(origins.env[variable])} from environment variable ${variable}`;
  }
  const fromFile = valueAt(origins.file, key);
  if (fromFile.found) return `, got ${render(fromFile.value)}`;
  return '';
}

/** The shallowest prefix of an unknown key that the schema does not declare. */
function unknownRoot(definition: SchemaNode, key: string): string {
  const parts = key.split('.');
  for (let n = 1; n <= parts.length; n++) {
    const prefix = parts.slice(0, n).join('.');
    if (nodeAt(definition, prefix) === undefined) return prefix;
  }
  return key;
}

/** A declared sibling that looks like what was meant (case or a small typo). */
function suggestion(definition: SchemaNode, key: string): string | undefined {
  const parts = key.split('.');
  const name = parts.pop() as string;
  const parentKey = parts.join('.');
  const parent = parentKey === '' ? definition : nodeAt(definition, parentKey);
  if (!isSection(parent)) return undefined;
  const candidates = Object.keys(parent);
  const best =
    candidates.find((c) => c.toLowerCase() === name.toLowerCase()) ??
    candidates.find((c) => editDistance(c.toLowerCase(), name.toLowerCase()) <= 2);
  return best === undefined ? undefined : parentKey === '' ? best : `${parentKey}.${best}`;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, substitution);
    }
    previous = current;
  }
  return previous[b.length] as number;
}

/**
 * Rewrites the text of convict's validation error (one problem per line, see convict 6.2
 * src/main.js validate()) into issues. A line it does not recognise is kept verbatim.
 */
function readConvictErrors(
  error: unknown,
  definition: SchemaNode,
  origins: { file: unknown; env: Record<string, string>; overrides: unknown },
): ConfigIssue[] {
  const text = error instanceof Error ? error.message : String(error);
  const issues: ConfigIssue[] = [];
  const unknownKeys = new Set<string>();
  for (const line of text.split('\n')) {
    const undeclared = /^configuration param '(.*)' not declared in the schema$/.exec(line);
    const missing = /^configuration param '(.*)' missing from config, did you override its parent\?$/.exec(line);
    const invalid = /^(\S+): ([\s\S]*?)(?:: value was [\s\S]*)?$/.exec(line);
    if (undeclared) {
      unknownKeys.add(unknownRoot(definition, undeclared[1] as string));
    } else if (missing) {
      issues.push({ key: missing[1] as string, problem: 'is missing' });
    } else if (invalid) {
      const key = invalid[1] as string;
      const problem = invalid[2] as string;
      const origin = problem.startsWith('is required') ? '' : describeOrigin(key, definition, origins);
      issues.push({ key, problem: problem + origin });
    } else if (line.trim() !== '') {
      issues.push({ key: '', problem: line });
    }
  }
  for (const key of unknownKeys) {
    const meant = suggestion(definition, key);
    const where = valueAt(origins.overrides, key).found ? ' (override)' : '';
    issues.push({ key, problem: `unknown key${where}${meant === undefined ? '' : ` (did you mean ${meant}?)`}` });
  }
  return issues;
}

// ---------------------------------------------------------------------------------------------
// Small helpers.

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A short rendering of a value for messages. */
export function render(value: unknown): string {
  if (isPlainObject(value)) return 'an object';
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
