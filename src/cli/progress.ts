import type { EngineEvent } from '../operators/events';
import type { RunRecorder } from '../sinks/run-recorder';

/**
 * A progress bar per task on a terminal (redrawn in place), or a line per quarter of each task
 * when the output is not a terminal (CI logs).
 */
export class TaskProgress {
  private lastDraw = 0;
  private lastQuarter = -1;
  private readonly startedAt = performance.now();
  private taskStartedAt = performance.now();

  constructor(
    private readonly label: string,
    private readonly out: NodeJS.WriteStream = process.stderr,
  ) {}

  update(event: EngineEvent, recorder: RunRecorder, expected: (task: string) => number | undefined): void {
    if (event.kind === 'task-started') {
      this.lastQuarter = -1;
      this.taskStartedAt = performance.now();
      return;
    }
    const task = event.task.name;
    const counts = recorder.countsOf(task);
    const done = counts.trained + counts['held-out'];
    const total = expected(task);
    const fraction = total ? Math.min(1, done / total) : undefined;
    const final = event.kind === 'task-outcome';
    const preq = recorder.prequential.accuracy(task);
    const rate = done / Math.max(1e-9, (performance.now() - this.taskStartedAt) / 1000);
    const bar = fraction === undefined ? '' : `${'█'.repeat(Math.round(fraction * 24)).padEnd(24, '░')} ${(fraction * 100).toFixed(0).padStart(3)}% `;
    const line =
      `${this.label} task ${event.task.index + 1} ${task} ${bar}${done}${total ? `/${total}` : ''} samples` +
      `  prequential ${preq === null ? '-' : `${(preq * 100).toFixed(1)}%`}` +
      (recorder.lastLoss !== undefined ? `  loss ${recorder.lastLoss.toFixed(3)}` : '') +
      `  ${rate.toFixed(0)} samples/s`;
    if (this.out.isTTY) {
      const now = performance.now();
      if (!final && now - this.lastDraw < 100) return;
      this.lastDraw = now;
      this.out.write(`\r\x1b[2K${line}${final ? '\n' : ''}`);
    } else {
      const quarter = fraction === undefined ? -1 : Math.floor(fraction * 4);
      if (final || quarter > this.lastQuarter) {
        this.lastQuarter = quarter;
        if (!final || quarter < 4) this.out.write(`${line}\n`);
      }
    }
  }

  elapsedSeconds(): number {
    return (performance.now() - this.startedAt) / 1000;
  }
}
