import type { RunReport } from '../engine/report';

const pct = (v: number | null | undefined, digits = 1): string => (v === null || v === undefined ? '-' : `${(v * 100).toFixed(digits)}`);

/** The accuracy matrix as a text table: rows = after learning task i, columns = task j's probe. */
export function formatMatrix(report: RunReport): string {
  const n = report.tasks.length;
  const width = 7;
  const head = `${'after \\ on'.padEnd(12)}${report.tasks.map((_, j) => `T${j + 1}`.padStart(width)).join('')}`;
  const rows = report.accuracyMatrix.map((row, i) => `${`T${i + 1}`.padEnd(12)}${Array.from({ length: n }, (_, j) => pct(row[j]).padStart(width)).join('')}`);
  const names = report.tasks.map((t, j) => `  T${j + 1} = ${t}`).join('\n');
  return [`Accuracy matrix R[i][j] (%) — ${report.strategy}, ${report.scenario}`, head, ...rows, names].join('\n');
}

export function formatSummary(report: RunReport): string {
  return [
    `  average accuracy   ${pct(report.averageAccuracy)}%`,
    `  backward transfer  ${pct(report.backwardTransfer)} points`,
    `  forward transfer   ${pct(report.forwardTransfer)} points`,
    `  forgetting         ${report.forgetting.map((f) => pct(f)).join(' / ')} points per task (avg ${pct(report.averageForgetting)})`,
    `  samples trained    ${report.samplesTrained} in ${report.durationSeconds.toFixed(1)} s (${report.samplesPerSecond.toFixed(0)} samples/s, backend ${report.backend})`,
    `  parameters         ${report.parameters}`,
  ].join('\n');
}

/** Several strategies on the same stream, one row each: the seed's comparison. */
export function formatComparison(reports: readonly RunReport[]): string {
  const first = reports[0];
  if (!first) return '';
  const lastRow = (r: RunReport) => r.accuracyMatrix[r.accuracyMatrix.length - 1] ?? [];
  const header = `${'strategy'.padEnd(12)}${'T1 after T1'.padStart(13)}${'T1 at end'.padStart(11)}${'last task'.padStart(11)}${'avg acc'.padStart(9)}${'BWT'.padStart(8)}${'samples/s'.padStart(11)}`;
  const rows = reports.map((r) => {
    const end = lastRow(r);
    return `${r.strategy.padEnd(12)}${pct(r.accuracyMatrix[0]?.[0]).padStart(13)}${pct(end[0]).padStart(11)}${pct(end[end.length - 1]).padStart(11)}${pct(r.averageAccuracy).padStart(9)}${pct(r.backwardTransfer).padStart(8)}${r.samplesPerSecond.toFixed(0).padStart(11)}`;
  });
  return [`Side by side on the same stream (${first.source}), accuracy in %:`, header, ...rows].join('\n');
}
