/** Reading a convict schema definition: sections, leaves, and what each leaf accepts. */
import type { DescribedFormat } from './formats';
import { isPlainObject } from './json-value';

export type SchemaNode = Record<string, unknown>;

export function isSection(node: unknown): node is SchemaNode {
  // convict's own rule: an object without "default" is a nested section.
  return isPlainObject(node) && Object.keys(node).length > 0 && !('default' in node);
}

/** Finds the schema node at a dotted path, or undefined. */
export function nodeAt(definition: SchemaNode, key: string): unknown {
  let node: unknown = definition;
  for (const part of key.split('.')) {
    if (!isSection(node) || !Object.prototype.hasOwnProperty.call(node, part)) return undefined;
    node = node[part];
  }
  return node;
}

/** What convict would coerce a string to for this leaf (its getFormat), or undefined for none. */
export function coercedKind(leaf: SchemaNode): 'number' | 'boolean' | 'array' | 'object' | 'string' | undefined {
  if (leaf.format === Object) return 'object';
  const fallback = leaf.default;
  if (fallback === null || fallback === undefined) return undefined;
  if (Array.isArray(fallback)) return 'array';
  const kind = typeof fallback;
  return kind === 'number' || kind === 'boolean' || kind === 'object' || kind === 'string' ? kind : undefined;
}

export function expectsOf(leaf: SchemaNode): string {
  if (leaf.format === Object) return 'an object';
  const expects = typeof leaf.format === 'function' ? (leaf.format as Partial<DescribedFormat>).expects : undefined;
  if (typeof expects === 'string') return expects;
  const kind = coercedKind(leaf);
  return kind === undefined ? 'a single value' : `a ${kind}`;
}
