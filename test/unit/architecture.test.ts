import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Imports point one way: a folder of src/ may import only from folders below it (ARCHITECTURE.md
 * draws the same table). Folders on one rank are peers and import neither each other nor anything
 * of their own rank: sources and sinks meet only in the engine. The graph is read from the sources
 * themselves (import, export ... from, require), so a new upward import fails here, not in review.
 */
const LAYERS: readonly (readonly string[])[] = [
  ['core'],
  ['data', 'backend'],
  ['models'],
  ['strategies'],
  ['metrics'],
  ['config'],
  ['operators'],
  ['sources', 'sinks'],
  ['kafka'],
  ['engine', 'testing'],
  ['suites'],
  ['cli'],
  ['index.ts'],
];

const SRC = path.resolve(__dirname, '../../../src');

function rankOf(top: string): number {
  const rank = LAYERS.findIndex((layer) => layer.includes(top));
  if (rank < 0) throw new Error(`src/${top} is in no layer of test/unit/architecture.test.ts: place it in the table (and in ARCHITECTURE.md)`);
  return rank;
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

/** Relative module specifiers of a file: static imports, re-exports, require() and import(). */
export function importsOf(text: string): string[] {
  const found: string[] = [];
  const patterns = [/\b(?:import|export)\b[^'";]*?\bfrom\s*['"]([^'"]+)['"]/g, /\bimport\s*['"]([^'"]+)['"]/g, /\b(?:require|import)\s*\(\s*['"]([^'"]+)['"]\s*\)/g];
  for (const pattern of patterns) for (const match of text.matchAll(pattern)) found.push(match[1] as string);
  return found.filter((spec) => spec.startsWith('.'));
}

/** The top-level folder of src/ a file or module path belongs to ('index.ts' for the entry point). */
function topOf(file: string): string {
  const parts = path.relative(SRC, file).split(path.sep);
  return parts.length === 1 ? `${(parts[0] as string).replace(/\.ts$/, '')}.ts` : (parts[0] as string);
}

describe('architecture: imports point one way', () => {
  it('reads the import forms the code uses', () => {
    const text = `import type { A } from '../core/types';\nimport {\n  b,\n} from "./b";\nexport { c } from '../c';\nimport './side-effect';\nconst d = require('../d');\nconst e = await import('../e');\nimport * as fs from 'node:fs';`;
    assert.deepEqual(importsOf(text).sort(), ['../c', '../core/types', '../d', '../e', './b', './side-effect']);
  });

  it('no file of src/ imports from a folder above it or beside it', () => {
    const violations: string[] = [];
    const files = sourceFiles(SRC);
    assert.ok(files.length > 50, `read ${files.length} files under ${SRC}`);
    for (const file of files) {
      const from = topOf(file);
      const rank = rankOf(from);
      for (const spec of importsOf(fs.readFileSync(file, 'utf8'))) {
        const target = path.resolve(path.dirname(file), spec);
        if (!target.startsWith(SRC + path.sep)) continue;
        // A folder imported by its name means its index.ts.
        const to = topOf(fs.existsSync(target) && fs.statSync(target).isDirectory() ? path.join(target, 'index.ts') : target);
        if (to === from) continue;
        const targetRank = rankOf(to);
        if (targetRank >= rank) violations.push(`src/${path.relative(SRC, file)} imports ${spec} (${from} -> ${to}${targetRank === rank ? ', a peer' : ', upward'})`);
      }
    }
    assert.deepEqual(violations, []);
  });
});
