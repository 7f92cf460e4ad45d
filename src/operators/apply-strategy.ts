import { concat, concatMap, defer, from, ignoreElements, type Observable, type OperatorFunction } from 'rxjs';
import { TASK_AGNOSTIC, type Prediction, type Sample, type SampleKind, type TaskInfo, type TaskName } from '../core/types';
import type { CheckpointReason, CheckpointWriter, EngineSnapshot, SourcePositions } from './checkpoints';
import type { StepSink } from './step-sink';
import type { Strategy } from '../strategies/strategy';
import type { Demand } from './demand';
import { STRATEGY_REFUSED, TASK_ENDED, type EngineEvent, type PlannedEvent, type SampleEvent, type SampleRejection, type StepEvent, type StepOutcome, type TaskOutcome, type TaskStartedOutcome } from './events';
import type { ProbeStore } from './probe-store';
import type { ConceptDriftWatch } from './watch-concept-drift';

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
  /** A sample refused by the strategy or by the ended-task policy (for the log; the outcome's plan marks it 'rejected', its rejections say why). */
  readonly onRejected?: (sample: Sample, rejection: SampleRejection) => void;
  /** Clock for step durations, in seconds. */
  readonly now?: () => number;
  /**
   * Durable checkpoints, written between two events: after a step once `everySamples` samples
   * (0: never by count) were processed since the last one, after every task end, and at every
   * checkpoint marker (timer, end of the stream) when something changed.
   */
  readonly checkpoints?: {
    readonly writer: CheckpointWriter;
    readonly everySamples: number;
    /** Where the source stood once it had handed on this sample. */
    readonly positionsAfter: (sample: Sample) => SourcePositions | undefined;
  };
  /** Concept, input and label drift of each step's samples (and task-free splits). */
  readonly drift?: ConceptDriftWatch;
  /** Going on from a checkpoint: its model version, task registry, holdout counters and positions (probes are the ProbeStore's). */
  readonly resumed?: EngineSnapshot;
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
 * - checkpoint marker (and after steps and task ends, see `checkpoints`): the writer is given a
 *   snapshot once every earlier event's outcome went downstream, so the sinks have seen it too.
 */
export function applyStrategy(options: ApplyStrategyOptions): OperatorFunction<PlannedEvent, EngineEvent> {
  const { strategy, probes, demand } = options;
  const now = options.now ?? (() => performance.now() / 1000);
  const every = options.weightsEverySteps ?? 0;
  const taskGiven = options.taskGivenAtTest ?? true;
  return (events) =>
    defer(() => {
      const resumed = options.resumed;
      let version = resumed?.modelVersion ?? 0;
      let steps = 0;
      let started = (resumed?.tasks.length ?? 0) > 0;
      // The task registry and plan counters as of the last event processed (what a checkpoint keeps).
      const tasks: TaskName[] = [...(resumed?.tasks ?? [])];
      let current: TaskName | undefined = resumed?.current;
      const holdout = new Map<TaskName, { seen: number; kept: number }>(Object.entries(resumed?.holdout ?? {}).map(([task, c]) => [task, { ...c }]));
      let covered: SourcePositions = resumed?.positions ?? {};
      let sinceCheckpoint = 0;
      let written = { version, covered };

      const checkpoint = async (reason: CheckpointReason): Promise<void> => {
        const writer = options.checkpoints?.writer;
        if (writer === undefined || (written.version === version && written.covered === covered)) return;
        const snapshot: EngineSnapshot = {
          modelVersion: version,
          tasks: [...tasks],
          ...(current !== undefined ? { current } : {}),
          holdout: Object.fromEntries([...holdout].map(([task, c]) => [task, { ...c }])),
          probes: probes.heldOutSamples(),
          positions: covered,
        };
        await writer.write(snapshot, reason);
        written = { version, covered };
        sinceCheckpoint = 0;
      };
      const checkpointIf = (due: () => boolean, reason: CheckpointReason): Observable<never> =>
        defer(() => from(due() ? checkpoint(reason) : Promise.resolve())).pipe(ignoreElements());

      const begin = async (task: TaskInfo): Promise<TaskStartedOutcome> => {
        if (!tasks.includes(task.name)) tasks.push(task.name);
        current = task.name;
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
        const p0 = now();
        const predictions = await predictPlanned(strategy, taskGiven, event, fused ? ['evaluated', 'predicted'] : ['trained', 'evaluated', 'predicted']);
        const predictSeconds = predictions.some((p) => p !== undefined) ? now() - p0 : undefined;
        const plan = [...event.plan];
        let loss: number | undefined;
        let trainSeconds: number | undefined;
        let rejections: (SampleRejection | undefined)[] | undefined;
        const reject = (at: number, rejection: SampleRejection): void => {
          plan[at] = 'rejected';
          (rejections ??= event.samples.map(() => undefined))[at] = rejection;
          options.onRejected?.((event.samples[at] as SampleEvent).sample, rejection);
        };
        // Refused by policy (evaluation.endedTaskLabelled 'ignore'): a refusal like the strategy's,
        // so a Kafka sink dead-letters it instead of letting it vanish.
        event.plan.forEach((kind, i) => {
          if (kind === 'rejected') reject(i, { reason: TASK_ENDED, detail: `a labelled sample of task "${(event.samples[i] as SampleEvent).task.name}", which has ended (evaluation.endedTaskLabelled is 'ignore')` });
        });
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
          for (const r of result.rejected ?? []) reject(trainIdx[r.index] as number, { reason: r.code ?? STRATEGY_REFUSED, detail: r.reason });
        }
        event.plan.forEach((kind, i) => {
          const s = event.samples[i] as SampleEvent;
          if (kind === 'held-out') probes.hold(s.task, s.sample);
          // test-then-train's counters, as of this step: labelled samples of the current task.
          if ((kind === 'trained' || kind === 'held-out') && s.task.name === current) {
            const c = holdout.get(current) ?? { seen: 0, kept: 0 };
            c.seen += 1;
            if (kind === 'held-out') c.kept += 1;
            holdout.set(current, c);
          }
        });
        // Before the credits go back: a task-free split must be asked for before the next samples are routed.
        const drift = options.drift?.observe(event.samples, plan, predictions);
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
          ...(predictSeconds !== undefined ? { predictSeconds } : {}),
          modelVersion: version,
          parameters: strategy.parameterCount(),
          ...classCounts(strategy),
          ...(sampled ? { layerWeights: strategy.layerWeights() } : {}),
          ...(diagnostics ? { diagnostics } : {}),
          ...(drift ? { drift } : {}),
        };
        // Published before acknowledged: an offset is committed only once its prediction is out.
        await options.sink?.publish(outcome);
        await options.acknowledge?.(samples);
        demand?.release(samples.length);
        const last = samples.at(-1);
        const position = last && options.checkpoints?.positionsAfter(last);
        if (position) covered = position;
        sinceCheckpoint += samples.length;
        return outcome;
      };

      const end = async (task: TaskInfo, reason: TaskOutcome['reason']): Promise<TaskOutcome> => {
        await strategy.endTask(task);
        version += 1;
        if (current === task.name) current = undefined;
        options.drift?.taskEnded(task.name);
        const diagnostics = strategy.diagnostics?.();
        const probeAccuracy = await scoreProbes(strategy, probes, 'null', taskGiven);
        const taskInferenceAccuracy = strategy.infersTask ? await scoreTaskInference(strategy, probes) : [];
        return {
          kind: 'task-outcome',
          task,
          reason,
          probeAccuracy,
          ...(taskInferenceAccuracy.some((a) => a !== null) ? { taskInferenceAccuracy } : {}),
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
            case 'step': {
              const every = options.checkpoints?.everySamples ?? 0;
              return concat(from(step(event)), checkpointIf(() => every > 0 && sinceCheckpoint >= every, 'samples'));
            }
            case 'task-end':
              return concat(from(end(event.task, event.reason)), checkpointIf(() => true, 'task-end'));
            case 'checkpoint':
              return checkpointIf(() => true, event.reason);
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

/** The step outcome's `classes`: the size of each head's label registry, where the strategy keeps one. */
function classCounts(strategy: Strategy): { classes?: ReadonlyMap<TaskName, number> } {
  const classes = strategy.classes?.();
  return classes ? { classes: new Map([...classes].map(([task, labels]) => [task, labels.length])) } : {};
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

/**
 * Task inference on each known task's probe, by task index: each probe is predicted without its
 * task, and the share of answers naming the task (`inferredTask`) is the entry; null where the
 * probe is empty or no answer names a task (a strategy with a single head infers none).
 */
export async function scoreTaskInference(strategy: Strategy, probes: ProbeStore): Promise<(number | null)[]> {
  const row: (number | null)[] = [];
  for (const task of probes.known()) {
    if (!task) continue;
    const probe = probes.probe(task);
    const out = probe.length > 0 ? await strategy.predict(undefined, probe.map((s) => s.x)) : [];
    const named = out.filter((p) => p.inferredTask !== undefined);
    row[task.index] = named.length > 0 ? out.filter((p) => p.inferredTask === task.name).length / probe.length : null;
  }
  for (let i = 0; i < row.length; i++) if (row[i] === undefined) row[i] = null;
  return row;
}
