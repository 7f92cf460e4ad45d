import { concatMap, defer, from, type OperatorFunction } from 'rxjs';
import { TASK_AGNOSTIC, type Prediction, type Sample, type SampleKind, type TaskInfo } from '../core/types';
import type { StepSink } from './step-sink';
import type { Strategy } from '../strategies/strategy';
import type { Demand } from './demand';
import { STRATEGY_REFUSED, type EngineEvent, type PlannedEvent, type SampleEvent, type SampleRejection, type StepEvent, type StepOutcome, type TaskOutcome, type TaskStartedOutcome } from './events';
import type { ProbeStore } from './probe-store';

export interface ApplyStrategyOptions {
  readonly strategy: Strategy;
  readonly probes: ProbeStore;
  /** Credits to give back to the source once a step has consumed its samples. */
  readonly demand?: Demand;
  /**
   * Whether predictions may use the task identity (task-incremental). Otherwise (domain- and
   * class-incremental) the strategy is asked with task undefined and must infer it, as it would at
   * test time in those scenarios. Default true.
   */
  readonly taskGivenAtTest?: boolean;
  /** Gets each step's outcome (predictions to publish) before its samples are acknowledged. */
  readonly sink?: StepSink;
  /** Tell the source which samples are done (Kafka commits their offsets). */
  readonly acknowledge?: (samples: readonly Sample[]) => Promise<void>;
  /** Attach layer weights to every n-th step outcome, for live drift (0 = never). */
  readonly weightsEverySteps?: number;
  /** A sample the strategy refused to learn (for the log; the outcome's plan marks it 'rejected', its rejections say why). */
  readonly onRejected?: (sample: Sample, rejection: SampleRejection) => void;
  /** Clock for step durations, in seconds. */
  readonly now?: () => number;
}

/**
 * The one asynchronous operator: all tensor work happens here, one event at a time, in order
 * (concatMap), so the strategy is never called concurrently.
 *
 * - task-begin: strategy.beginTask; before the first task, the untrained model is scored on the
 *   known probes (the forward-transfer baseline).
 * - step: every sample planned 'trained', 'evaluated' or 'predicted' is predicted first, then the
 *   'trained' ones are learned (test-then-train); 'held-out' ones join their task's probe.
 * - task-end: strategy.endTask, then every known probe is scored: a row of the accuracy matrix.
 */
export function applyStrategy(options: ApplyStrategyOptions): OperatorFunction<PlannedEvent, EngineEvent> {
  const { strategy, probes, demand } = options;
  const now = options.now ?? (() => performance.now() / 1000);
  const every = options.weightsEverySteps ?? 0;
  const taskGiven = options.taskGivenAtTest ?? true;
  return (events) =>
    defer(() => {
      let version = 0;
      let steps = 0;
      let started = false;

      const begin = async (task: TaskInfo): Promise<TaskStartedOutcome> => {
        probes.noteTask(task);
        let baselineAccuracy: (number | null)[] | undefined;
        if (!started) {
          started = true;
          baselineAccuracy = await scoreProbes(strategy, probes, 'chance', taskGiven);
        }
        await strategy.beginTask(task);
        return { kind: 'task-started', task, parameters: strategy.parameterCount(), ...(baselineAccuracy ? { baselineAccuracy } : {}) };
      };

      const step = async (event: StepEvent): Promise<StepOutcome> => {
        const trainIdx = indexesOf(event.plan, 'trained');
        // Test-then-train in one pass where the strategy can: it predicts the batch with the
        // forward pass it trains with, before the update.
        const fused = typeof strategy.predictAndTrain === 'function' && trainIdx.length > 0;
        const predictions = await predictPlanned(strategy, taskGiven, event, fused ? ['evaluated', 'predicted'] : ['trained', 'evaluated', 'predicted']);
        const plan = [...event.plan];
        let loss: number | undefined;
        let trainSeconds: number | undefined;
        let rejections: (SampleRejection | undefined)[] | undefined;
        if (trainIdx.length > 0) {
          const batch = {
            xs: trainIdx.map((i) => (event.samples[i] as SampleEvent).sample.x),
            ys: trainIdx.map((i) => (event.samples[i] as SampleEvent).sample.y as string),
            ids: trainIdx.map((i) => (event.samples[i] as SampleEvent).sample.id),
          };
          const t0 = now();
          let result;
          if (fused) {
            const both = await strategy.predictAndTrain!(event.task, batch, { taskGiven });
            both.predictions.forEach((p, k) => (predictions[trainIdx[k] as number] = p));
            result = both.result;
          } else {
            result = await strategy.trainBatch(event.task, batch);
          }
          trainSeconds = now() - t0;
          loss = result.loss;
          version += 1;
          for (const r of result.rejected ?? []) {
            const at = trainIdx[r.index] as number;
            plan[at] = 'rejected';
            const rejection = { reason: r.code ?? STRATEGY_REFUSED, detail: r.reason };
            (rejections ??= event.samples.map(() => undefined))[at] = rejection;
            options.onRejected?.((event.samples[at] as SampleEvent).sample, rejection);
          }
        }
        event.plan.forEach((kind, i) => {
          const s = event.samples[i] as SampleEvent;
          if (kind === 'held-out') probes.hold(s.task, s.sample);
        });
        steps += 1;
        // Every step so far resolved in microtasks; give the event loop a turn so that I/O (the
        // /metrics endpoint, Kafka heartbeats, signals) is not starved by a long training run.
        await new Promise<void>((resolve) => setImmediate(resolve));
        const samples = event.samples.map((s) => s.sample);
        // Read with the layer weights, every few steps: dashboards need no per-step resolution.
        const sampled = every > 0 && steps % every === 0;
        const diagnostics = sampled ? strategy.diagnostics?.() : undefined;
        const outcome: StepOutcome = {
          kind: 'step-outcome',
          task: event.task,
          samples: event.samples,
          plan,
          predictions,
          ...(rejections ? { rejections } : {}),
          ...(loss !== undefined ? { loss } : {}),
          ...(trainSeconds !== undefined ? { trainSeconds } : {}),
          modelVersion: version,
          parameters: strategy.parameterCount(),
          ...(sampled ? { layerWeights: strategy.layerWeights() } : {}),
          ...(diagnostics ? { diagnostics } : {}),
        };
        // Published before acknowledged: an offset is committed only once its prediction is out.
        await options.sink?.publish(outcome);
        await options.acknowledge?.(samples);
        demand?.release(samples.length);
        return outcome;
      };

      const end = async (task: TaskInfo, reason: TaskOutcome['reason']): Promise<TaskOutcome> => {
        await strategy.endTask(task);
        version += 1;
        const diagnostics = strategy.diagnostics?.();
        return {
          kind: 'task-outcome',
          task,
          reason,
          probeAccuracy: await scoreProbes(strategy, probes, 'null', taskGiven),
          modelVersion: version,
          parameters: strategy.parameterCount(),
          layerWeights: strategy.layerWeights(),
          ...(diagnostics ? { diagnostics } : {}),
        };
      };

      return events.pipe(
        concatMap((event) => {
          switch (event.kind) {
            case 'task-begin':
              return from(begin(event.task));
            case 'step':
              return from(step(event));
            case 'task-end':
              return from(end(event.task, event.reason));
          }
        }),
      );
    });
}

function indexesOf(plan: readonly SampleKind[], kind: SampleKind): number[] {
  const out: number[] = [];
  plan.forEach((k, i) => k === kind && out.push(i));
  return out;
}

/** Predicts every sample planned as one of `kinds`, grouped by task (task-incremental heads). */
async function predictPlanned(strategy: Strategy, taskGiven: boolean, event: StepEvent, kinds: readonly SampleKind[]): Promise<(Prediction | undefined)[]> {
  const predictions: (Prediction | undefined)[] = event.samples.map(() => undefined);
  const groups = new Map<string, { task: TaskInfo; idx: number[] }>();
  event.plan.forEach((kind, i) => {
    if (!kinds.includes(kind)) return;
    const task = (event.samples[i] as SampleEvent).task;
    const group = groups.get(task.name) ?? { task, idx: [] };
    group.idx.push(i);
    groups.set(task.name, group);
  });
  for (const { task, idx } of groups.values()) {
    const given = taskGiven && task.name !== TASK_AGNOSTIC;
    const out = await strategy.predict(given ? task : undefined, idx.map((i) => (event.samples[i] as SampleEvent).sample.x));
    idx.forEach((i, k) => (predictions[i] = out[k]));
  }
  return predictions;
}

/**
 * Accuracy on each known task's probe, by task index; null where the task has no probe. Where
 * the model cannot answer for a task at all (it knows none of its classes yet, or has no head
 * for it), the entry is null, or with `unanswerable: 'chance'` the accuracy of a uniform guess
 * among the probe's labels: that is the forward-transfer baseline b_j of an untrained model.
 */
export async function scoreProbes(strategy: Strategy, probes: ProbeStore, unanswerable: 'null' | 'chance' = 'null', taskGiven = true): Promise<(number | null)[]> {
  const row: (number | null)[] = [];
  for (const task of probes.known()) {
    if (!task) continue;
    const probe = probes.probe(task);
    if (probe.length === 0) {
      row[task.index] = null;
      continue;
    }
    const out = await strategy.predict(taskGiven ? task : undefined, probe.map((s) => s.x));
    if (out.every((p) => p.label === null)) {
      row[task.index] = unanswerable === 'chance' ? 1 / new Set(probe.map((s) => s.y)).size : null;
      continue;
    }
    let correct = 0;
    out.forEach((p, i) => (correct += p.label === probe[i]?.y ? 1 : 0));
    row[task.index] = correct / probe.length;
  }
  for (let i = 0; i < row.length; i++) if (row[i] === undefined) row[i] = null;
  return row;
}
