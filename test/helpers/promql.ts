/**
 * Turning dashboard and alert PromQL into queries a test can run and expect data from: Grafana's
 * variables get values, a threshold comparison answers 0/1 for every series instead of filtering
 * them (whether an alert fires is promtool's test; here: does its expression see the daemon's series).
 */

/** Grafana's variables replaced: every pipeline/strategy/task, `job` the scrape job. */
export function substituteVariables(expr: string, job: string): string {
  return expr
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$job', job)
    .replaceAll('$instance', '.*')
    .replaceAll('$strategy', '.*')
    .replaceAll('$task', '.*');
}

/** A Grafana variable query label_values(METRIC{SEL}, LABEL) as the PromQL that lists those values. */
export function labelValuesQuery(definition: string): string | undefined {
  const m = /^label_values\((.+),\s*(\w+)\)$/.exec(definition.trim());
  return m ? `group by (${m[2]}) (${m[1]})` : undefined;
}

/** The parts of `expr` joined at the top level by and / or / unless (with their on(...) / ignoring(...)). */
export function setOperands(expr: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i] as string;
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
      continue;
    }
    if (c === '"') quoted = true;
    else if ('([{'.includes(c)) depth++;
    else if (')]}'.includes(c)) depth--;
    else if (depth === 0 && c === ' ') {
      const m = /^ (and|or|unless)(?: (?:on|ignoring) ?\([^)]*\))? /.exec(expr.slice(i));
      if (m) {
        parts.push(expr.slice(start, i).trim());
        i += m[0].length - 1;
        start = i + 1;
      }
    }
  }
  parts.push(expr.slice(start).trim());
  return parts;
}

/** `A > 0.1` as `A > bool 0.1`: a sample for every series of A. Other expressions are returned as they are. */
export function withoutThreshold(expr: string): string {
  const m = /^(.*\S)\s+(==|!=|>=|<=|>|<)\s+(-?\d+(?:\.\d+)?(?:e-?\d+)?)\s*$/s.exec(expr);
  return m ? `${m[1]} ${m[2]} bool ${m[3]}` : expr;
}

/** Metric names an expression reads (lifelong_* and up). */
export function metricNames(expr: string): string[] {
  return [...new Set([...expr.matchAll(/\b(lifelong_[a-z0-9_]+|up)\b(?=\s*[{[)\s]|$)/g)].map((m) => m[1] as string))];
}

/** Every series name /metrics exposes (a histogram's _bucket, _sum and _count), from its # TYPE lines. */
export function exportedNames(exposition: string): Set<string> {
  const names = new Set<string>(['up']);
  for (const m of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [name, type] = [m[1] as string, m[2] as string];
    if (type === 'histogram' || type === 'summary') for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${name}${suffix}`);
    else names.add(name);
  }
  return names;
}
