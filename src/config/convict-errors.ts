/** Turning convict's validation error text into ConfigIssues that say where a value came from. */
import type { ConfigIssue } from './config-issue';
import { isPlainObject, render } from './json-value';
import { isSection, nodeAt, type SchemaNode } from './schema-nodes';

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
export function readConvictErrors(
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
