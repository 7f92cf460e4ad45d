/**
 * Running a convict schema over layered values (file < environment < overrides) and collecting
 * every problem as a ConfigIssue with its dotted key; configErrorFor (config-issue.ts) then
 * turns them into one ConfigError that names the file.
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
import convict from 'convict';
import type { ConfigIssue } from './config-issue';
import { readConvictErrors } from './convict-errors';
import { isPlainObject, render } from './json-value';
import { coercedKind, expectsOf, isSection, type SchemaNode } from './schema-nodes';

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
