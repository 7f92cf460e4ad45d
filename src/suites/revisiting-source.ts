/**
 * Bench mode only: the protocol of van de Ven & Tolias 2019 trains each task for a fixed number
 * of iterations of batch 128, which revisits the task's images about 21 times (split-MNIST). This
 * source streams that: per task, `iterationsPerTask x batchSize` samples, drawn epoch after epoch
 * from the task's training images, reshuffled every epoch (as a data loader would). The daemon
 * never uses it: pipeline files cannot name it, so a production stream stays single-pass.
 */
import { InvariantError } from '../core/errors';
import { Rng } from '../core/rng';
import type { Sample, TaskName } from '../core/types';
import { shuffledIndicesOf } from '../data/task-streams';
import { createEmbeddedSource, sampleOf, type EmbeddedSource, type EmbeddedSourceOptions, type EmbeddedStreamSpec } from '../sources/embedded';
import type { Source, SourceContext } from '../operators/source';

export class RevisitingSource implements Source {
  readonly description: string;
  readonly inputSize: number;
  readonly outputUnits: number;
  private readonly embedded: EmbeddedSource;
  private closed = false;

  constructor(
    spec: EmbeddedStreamSpec,
    readonly iterationsPerTask: number,
    readonly batchSize: number,
    options: EmbeddedSourceOptions = {},
  ) {
    if (!Number.isInteger(iterationsPerTask) || iterationsPerTask < 1) throw new InvariantError(`iterationsPerTask must be a positive integer, got ${iterationsPerTask}`);
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new InvariantError(`batchSize must be a positive integer, got ${batchSize}`);
    this.embedded = createEmbeddedSource(spec, options);
    this.inputSize = this.embedded.inputSize;
    this.outputUnits = this.embedded.outputUnits;
    this.description = `${this.embedded.description}, ${iterationsPerTask} iterations of ${batchSize} per task`;
  }

  knownTasks(): readonly TaskName[] {
    return this.embedded.knownTasks();
  }

  expectedSamples(task: TaskName): number | undefined {
    return this.embedded.knownTasks().includes(task) ? this.iterationsPerTask * this.batchSize : undefined;
  }

  /** Distinct training images of a task (what one epoch holds). */
  distinctSamples(task: TaskName): number | undefined {
    return this.embedded.expectedSamples(task);
  }

  open(context: SourceContext): AsyncIterator<Sample> {
    return this.samples(context);
  }

  private async *samples(context: SourceContext): AsyncGenerator<Sample, void, undefined> {
    if (this.closed) return;
    const train = this.embedded.mnist().train;
    const { stream } = this.embedded;
    context.log(`streaming ${this.description}`);
    for (const task of stream.tasks) {
      const images = Array.from(shuffledIndicesOf(train.labels, task.digits, task.trainSeed, stream.samplesPerTask));
      // Epoch e reshuffles with its own seed, so the draw is reproducible and independent of
      // how many epochs came before.
      const total = this.iterationsPerTask * this.batchSize;
      let order = images;
      for (let emitted = 0, epoch = 0; emitted < total; epoch++) {
        if (epoch > 0) order = new Rng(task.trainSeed + 7919 * epoch).shuffle([...images]);
        for (const index of order) {
          if (emitted >= total) break;
          if (this.closed) return;
          emitted += 1;
          yield sampleOf(task, train, 'train', index);
        }
      }
    }
  }

  probe(task: TaskName, size: number): readonly Sample[] | undefined {
    return this.embedded.probe(task, size);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.embedded.close();
  }
}
