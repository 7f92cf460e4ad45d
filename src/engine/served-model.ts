import { TASK_AGNOSTIC, type Prediction, type TaskInfo, type TaskName } from '../core/types';
import type { Answers, PredictionRequest } from '../kafka/request-consumer';
import type { Strategy } from '../strategies/strategy';

/** A model loaded from a snapshot, ready to answer. */
export interface LoadedModel {
  readonly strategy: Strategy;
  /** The snapshot's model version. */
  readonly version: number;
  /** The tasks it had begun, in index order (a task-incremental head is asked by its task). */
  readonly tasks: readonly TaskName[];
}

/** The answer before any snapshot was loaded, as the trainer answers before it learned anything. */
export const NO_MODEL_YET: Prediction = Object.freeze({ label: null, reason: 'no model yet: the trainer has published no snapshot this replica could load', probabilities: Object.freeze({}) });

/**
 * The model a prediction replica serves, and the swap to a newer one. A model offered while a batch
 * is being answered waits until that batch is done, and the one it replaces is disposed only then:
 * every request is answered by exactly one whole model, none is dropped, none waits for a load (the
 * load happens before offer()). A model offered while another waits replaces it (the newest wins).
 */
export class ServedModel {
  private current: LoadedModel | undefined;
  private next: LoadedModel | undefined;
  private answering = 0;
  private disposed = false;

  /**
   * @param taskGiven  task-incremental learning: a task topic's requests are answered by that task's
   *   head; otherwise (and for task-agnostic requests) the model answers without the task.
   */
  constructor(private readonly taskGiven: boolean) {}

  /** The version being served; undefined before the first snapshot. */
  get version(): number | undefined {
    return this.current?.version;
  }

  /** Takes a loaded model: swapped in now if no batch is being answered, else right after it. */
  offer(model: LoadedModel): void {
    if (this.disposed) {
      model.strategy.dispose();
      return;
    }
    this.next?.strategy.dispose();
    this.next = model;
    if (this.answering === 0) this.swap();
  }

  /** Answers a batch of requests with the model being served, in their order. */
  async answer(requests: readonly PredictionRequest[]): Promise<Answers> {
    this.swap();
    const model = this.current;
    if (model === undefined) return { predictions: requests.map(() => NO_MODEL_YET), modelVersion: 0 };
    this.answering += 1;
    try {
      const predictions: Prediction[] = new Array<Prediction>(requests.length);
      const groups = new Map<TaskName, number[]>();
      requests.forEach((r, i) => {
        const task = this.taskGiven ? r.task : TASK_AGNOSTIC;
        groups.set(task, [...(groups.get(task) ?? []), i]);
      });
      for (const [task, idx] of groups) {
        const out = await model.strategy.predict(this.taskInfo(model, task), idx.map((i) => (requests[i] as PredictionRequest).x));
        idx.forEach((i, k) => (predictions[i] = out[k] as Prediction));
      }
      return { predictions, modelVersion: model.version };
    } finally {
      this.answering -= 1;
      if (this.answering === 0) this.swap();
    }
  }

  /** Disposes every model held; later offers are disposed at once. Safe to call twice. */
  dispose(): void {
    this.disposed = true;
    this.current?.strategy.dispose();
    this.next?.strategy.dispose();
    this.current = undefined;
    this.next = undefined;
  }

  private swap(): void {
    if (this.next === undefined || this.answering > 0) return;
    this.current?.strategy.dispose();
    this.current = this.next;
    this.next = undefined;
  }

  private taskInfo(model: LoadedModel, task: TaskName): TaskInfo | undefined {
    if (task === TASK_AGNOSTIC) return undefined;
    const index = model.tasks.indexOf(task);
    return { name: task, index: index >= 0 ? index : model.tasks.length };
  }
}
