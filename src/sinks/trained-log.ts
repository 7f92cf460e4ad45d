import * as fs from 'node:fs';
import type { StepOutcome } from '../operators/events';

/**
 * The trained-sample log (LIFELONG_TRAINED_LOG): one line per sample the model trained on,
 * `<topic>/<partition>/<offset> <id>` (`-` where the sample has no Kafka position or no id),
 * appended after each step. A checkpoint records the log's length once fsynced, and a resume
 * truncates the log to the length its checkpoint recorded: lines past it belong to steps the
 * restored model does not hold, which are read and trained again. So across any number of crashes
 * the log lists exactly the samples the model learned, which is what the crash test counts.
 */
export class TrainedLog {
  private readonly fd: number;

  constructor(readonly file: string) {
    this.fd = fs.openSync(file, 'a');
  }

  record(outcome: StepOutcome): void {
    let lines = '';
    outcome.plan.forEach((kind, i) => {
      if (kind !== 'trained') return;
      const sample = outcome.samples[i]?.sample;
      const ref = sample?.ref as { topic?: unknown; partition?: unknown; offset?: unknown } | undefined;
      const where = ref && typeof ref.topic === 'string' ? `${ref.topic}/${String(ref.partition)}/${String(ref.offset)}` : '-';
      lines += `${where} ${sample?.id ?? '-'}\n`;
    });
    if (lines !== '') fs.writeSync(this.fd, lines);
  }

  /** Flushes to disk; returns the log's length in bytes. */
  sync(): number {
    fs.fsyncSync(this.fd);
    return fs.fstatSync(this.fd).size;
  }

  /** Drops what a restored checkpoint does not cover. */
  truncate(bytes: number): void {
    fs.ftruncateSync(this.fd, Math.min(bytes, fs.fstatSync(this.fd).size));
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}
