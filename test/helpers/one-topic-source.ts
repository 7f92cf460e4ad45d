import type { Sample, SourceItem } from '../../src/core/types';
import type { Source, SourceContext } from '../../src/operators/source';
import { createEmbeddedSource, type EmbeddedStreamSpec } from '../../src/sources/embedded';

/**
 * An embedded task stream (permuted MNIST, say) on ONE topic: every sample's task is `topic`, its
 * id its position in the stream, and there is no test split (probes are held out of the stream).
 * What a Kafka topic whose data changes without a new topic looks like to the engine: the input
 * of task-free mode (test/integration/task-free.test.ts, bench/task-free-drift.ts).
 */
export class OneTopicSource implements Source {
  readonly description: string;
  readonly inputSize: number;
  private readonly inner;

  constructor(
    spec: EmbeddedStreamSpec,
    readonly topic: string,
  ) {
    this.inner = createEmbeddedSource(spec);
    this.inputSize = this.inner.inputSize;
    this.description = `${this.inner.description} on one topic`;
  }

  open(context: SourceContext): AsyncIterator<SourceItem> {
    const samples = this.inner.open(context);
    let n = 0;
    return {
      next: async () => {
        const item = await samples.next();
        if (item.done) return item;
        return { done: false, value: { ...(item.value as Sample), task: this.topic, id: String(n++) } };
      },
    };
  }

  async close(): Promise<void> {
    await this.inner.close();
  }
}
