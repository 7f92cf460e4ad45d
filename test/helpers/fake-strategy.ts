import type { Prediction, TaskInfo } from '../../src/core/types';
import type { LabelledBatch, Strategy, StrategyDiagnostic, StrategyState, TrainResult } from '../../src/strategies/strategy';

/**
 * A strategy without tensors that records every call: it "predicts" the label it saw most
 * recently for the same first feature value, so tests can tell predict-before-train ordering.
 */
export class FakeStrategy implements Strategy {
  readonly name = 'fake';
  readonly calls: string[] = [];
  private readonly memory = new Map<number, string>();
  disposed = 0;

  async beginTask(task: TaskInfo): Promise<void> {
    this.calls.push(`begin:${task.name}`);
  }
  async trainBatch(task: TaskInfo, batch: LabelledBatch): Promise<TrainResult> {
    this.calls.push(`train:${task.name}:${batch.xs.length}`);
    batch.xs.forEach((x, i) => this.memory.set(x[0] as number, batch.ys[i] as string));
    return { loss: 0.5, penalty: 0 };
  }
  async predict(task: TaskInfo | undefined, xs: readonly Float32Array[]): Promise<Prediction[]> {
    this.calls.push(`predict:${task?.name ?? '-'}:${xs.length}`);
    return xs.map((x) => {
      const label = this.memory.get(x[0] as number) ?? null;
      return { label, probabilities: label === null ? {} : { [label]: 1 } };
    });
  }
  async endTask(task: TaskInfo): Promise<void> {
    this.calls.push(`end:${task.name}`);
  }
  parameterCount(): number {
    return 42;
  }
  /** How many samples it has memorised: a number that changes as it learns. */
  diagnostics(): StrategyDiagnostic[] {
    return [{ name: 'fake_memory', help: 'Samples remembered.', value: this.memory.size }];
  }
  layerWeights(): Map<string, Float32Array> {
    return new Map([['layer', Float32Array.from([this.memory.size])]]);
  }
  async exportState(): Promise<StrategyState> {
    return { strategy: this.name, format: 1, meta: { memory: [...this.memory] }, tensors: {} };
  }
  async importState(state: StrategyState): Promise<void> {
    this.memory.clear();
    for (const [k, v] of state.meta.memory as [number, string][]) this.memory.set(k, v);
  }
  dispose(): void {
    this.disposed += 1;
  }
}
