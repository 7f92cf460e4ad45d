import type { Scenario } from '../core/types';
import type { StrategyDescriptor } from '../strategies/descriptor';
import type { ParamSpec } from '../strategies/params';
import { builtinStrategies } from '../strategies/registry';
import { parseCommandArgs } from './parse-command-args';
import type { CommandUsage } from './usage';

export const STRATEGIES_USAGE: CommandUsage = {
  synopsis: '  lifelong strategies [--json]',
  description: `strategies  lists the strategies (family, scenarios, what they store and need) and each one's
          strategy.params with default and doc; --json prints the descriptors.
`,
};

const SCENARIO_SHORT: Readonly<Record<Scenario, string>> = { 'task-incremental': 'task', 'domain-incremental': 'domain', 'class-incremental': 'class' };

/**
 * `lifelong strategies [--json]`: the registry's strategies, what they can do and their
 * parameters (what strategy.params takes), as text or, with --json, as the descriptors themselves.
 */
export function strategiesCommand(args: readonly string[], write: (text: string) => void = (text) => process.stdout.write(text)): number {
  const values = parseCommandArgs(args, { json: { type: 'boolean', default: false } });
  const descriptors = builtinStrategies().all();
  write(values.json ? `${JSON.stringify({ strategies: descriptors }, null, 2)}\n` : formatStrategies(descriptors));
  return 0;
}

/** The capabilities table, then each strategy's summary and parameters. */
export function formatStrategies(descriptors: readonly StrategyDescriptor[]): string {
  const header = ['strategy', 'family', 'scenarios', 'task identity', 'stores raw samples', 'finite stream only'];
  const rows = descriptors.map((d) => [
    d.name,
    d.family,
    d.capabilities.scenarios.map((s) => SCENARIO_SHORT[s]).join(', '),
    d.capabilities.needsTaskIdentity ? 'best with it (Task-IL); inferred otherwise' : '-',
    d.capabilities.storesRawSamples ? 'yes' : 'no',
    d.capabilities.needsFiniteStream ? 'yes' : 'no',
  ]);
  const lines = [...table([header, ...rows]), ''];
  for (const d of descriptors) {
    lines.push(`${d.name}: ${d.summary}`);
    const params = Object.entries(d.params);
    if (params.length === 0) lines.push('  no parameters');
    for (const line of table(params.map(([key, spec]) => [`  ${key}`, typeOf(spec), `default ${defaultOf(spec)}`, spec.doc]))) lines.push(line);
    lines.push('');
  }
  return `${lines.join('\n')}`;
}

/** Columns padded to their widest cell; the last column is not padded. */
function table(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? [];
  return rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column] as number))).join('  '));
}

function typeOf(spec: ParamSpec): string {
  switch (spec.type) {
    case 'number':
    case 'integer': {
      const bounds = [
        spec.min !== undefined ? `${'exclusiveMin' in spec && spec.exclusiveMin ? '>' : '>='} ${spec.min}` : undefined,
        spec.max !== undefined ? `<= ${spec.max}` : undefined,
      ].filter((b) => b !== undefined);
      const words = spec.type === 'number' && spec.orOneOf ? ` or ${spec.orOneOf.map((w) => JSON.stringify(w)).join(' or ')}` : '';
      return `${spec.type}${bounds.length ? ` ${bounds.join(', ')}` : ''}${words}`;
    }
    case 'boolean':
      return 'boolean';
    case 'enum':
      return spec.values.join('|');
    case 'integers':
      return `integer list${spec.min !== undefined ? `, each >= ${spec.min}` : ''}`;
  }
}

function defaultOf(spec: ParamSpec): string {
  const value = spec.default;
  return typeof value === 'object' && value !== null && 'sameAs' in value ? `= ${value.sameAs}` : JSON.stringify(value);
}
