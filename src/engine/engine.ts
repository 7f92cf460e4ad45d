import { asyncScheduler, defer, map, tap, type Observable } from 'rxjs';
import { isTaskControl, type Sample, type SourceItem, type TaskInfo, type TaskName } from '../core/types';
import { applyStrategy } from '../operators/apply-strategy';
import type { CheckpointWriter, EngineSnapshot, SourcePositions } from '../operators/checkpoints';
import { Demand } from '../operators/demand';
import { detectTaskBoundaries } from '../operators/detect-task-boundaries';
import type { EngineEvent, SampleRejection } from '../operators/events';
import { microBatch } from '../operators/micro-batch';
import { ProbeStore } from '../operators/probe-store';
import { pullSource } from '../operators/pull-source';
import { scheduleCheckpoints } from '../operators/schedule-checkpoints';
import { testThenTrain } from '../operators/test-then-train';
import type { StepSink } from '../operators/step-sink';
import type { Source } from '../operators/source';
import type { Strategy } from '../strategies/strategy';
import type { ConceptDriftSettings } from '../metrics/concept-drift';
import { TaskFreeSplits } from '../operators/task-free-splits';
import { ConceptDriftWatch } from '../operators/watch-concept-drift';

export interface EngineOptions {
  readonly source: Source;
  readonly strategy: Strategy;
  readonly batchSize: number;
  /** Flush a partial batch after this long, for live sources that go idle. Ignored for finite embedded streams. */
  readonly batchTimeoutMs?: number;
  readonly probeSize: number;
  /** Where the source has no test split, every n-th labelled sample of a task is held out as its probe. */
  readonly holdoutEvery: number;
  /** False outside task-incremental learning: predictions are asked without the task (see applyStrategy). */
  readonly taskGivenAtTest?: boolean;
  /** Gets every step's outcome (predictions to publish) before its samples are acknowledged. */
  readonly sink?: StepSink;
  /** Labelled samples of an ended task: scored (default) or ignored. */
  readonly endedTaskLabelled?: 'evaluate' | 'ignore';
  /** Attach layer weights to every n-th step, for live drift. Default 20; 0 = only at task ends. */
  readonly weightsEverySteps?: number;
  /** Samples the source rejected (already dead-lettered by it). */
  readonly onReject?: (task: TaskName | undefined, reason: string, detail: string) => void;
  /** Samples the strategy refused to learn (the step's sink dead-letters them, where it can). */
  readonly onRejected?: (sample: Sample, rejection: SampleRejection) => void;
  readonly log?: (message: string) => void;
  /**
   * Graceful shutdown: stop reading the source, finish the samples in hand (the partial batch
   * included), then complete, without ending the current task.
   */
  readonly stop?: AbortSignal;
  /**
   * Durable checkpoints (sources with positions only: Kafka): every `everySamples` samples (0:
   * not by count), every `everySeconds` (0: not on a timer), at every task end and when the stream
   * completes. Once one is written the source may commit what it covers, and only that.
   */
  readonly checkpoints?: { readonly writer: CheckpointWriter; readonly everySamples: number; readonly everySeconds: number };
  /** Go on from a checkpoint's snapshot: tasks, current task, probes, counters, source positions. */
  readonly resumed?: EngineSnapshot;
  /**
   * Watch concept, input and label drift per task (step outcomes carry it); with `taskFree`, a
   * confirmed drift ends the current task of its topic and begins the next. Absent: not watched.
   */
  readonly drift?: ConceptDriftSettings;
}

/**
 * The learning pipeline: source -> task boundaries -> micro-batches -> test-then-train plan ->
 * strategy (the one asynchronous, tensor-owning operator) -> engine events for the sinks.
 *
 * Backpressure: the source is pulled with credits (2 x batchSize) that the strategy operator gives
 * back when a step has consumed its samples, so at most two batches are ever in flight.
 * Cold: nothing is read until subscription; unsubscribing stops the source.
 */
export function runEngine(options: EngineOptions): Observable<EngineEvent> {
  const { source, strategy, batchSize, resumed } = options;
  return defer(() => {
    const demand = new Demand(2 * batchSize);
    const probes = new ProbeStore(source, options.probeSize);
    // Checkpoints need to know where the source stood after each sample: sources without
    // positions (finite embedded streams) are replayed, not resumed.
    const checkpoints = options.checkpoints && source.positions ? options.checkpoints : undefined;
    const positionsAfter = new WeakMap<object, SourcePositions>();
    const infos: TaskInfo[] = (resumed?.tasks ?? []).map((name, index) => ({ name, index }));
    const resumedTask = infos.find((t) => t.name === resumed?.current);
    // Task-free tasks are named after their topic; a resumed run goes on with each topic's last one.
    const splits = options.drift?.taskFree && options.drift.detector !== 'none' ? new TaskFreeSplits(resumed?.tasks ?? []) : undefined;
    const drift = options.drift ? new ConceptDriftWatch(options.drift, splits) : undefined;
    if (resumed) {
      // The source knows topics, not the tasks task-free mode cut them into.
      const topicOf = (task: TaskName) => (splits ? TaskFreeSplits.topicOf(task) : task);
      const tasks = [...new Set(resumed.tasks.map(topicOf))];
      source.resume?.({ tasks, ...(resumed.current !== undefined ? { current: topicOf(resumed.current) } : {}), positions: resumed.positions });
      probes.restore(infos, resumed.probes);
    }
    const context = {
      reject: (task: TaskName | undefined, reason: string, detail: string) => options.onReject?.(task, reason, detail),
      log: options.log ?? (() => undefined),
      ...(checkpoints ? { commitsFollowCheckpoints: true } : {}),
    };
    const writer: CheckpointWriter | undefined = checkpoints && {
      write: async (snapshot, reason) => {
        await checkpoints.writer.write(snapshot, reason);
        await source.checkpointed?.(snapshot.positions);
      },
    };
    return pullSource<SourceItem>(() => source.open(context), demand, { costless: isTaskControl, ...(options.stop ? { stop: options.stop } : {}) }).pipe(
      checkpoints ? tap((item) => positionsAfter.set(item, source.positions!())) : map((item) => item),
      detectTaskBoundaries({
        ...(options.stop ? { shutdown: options.stop } : {}),
        ...(splits ? { taskFree: splits } : {}),
        ...(resumed ? { initialTasks: resumed.tasks, ...(resumed.current !== undefined ? { currentTask: resumed.current } : {}) } : {}),
      }),
      checkpoints ? scheduleCheckpoints(checkpoints.everySeconds) : map((event) => event),
      microBatch(batchSize, source.live ? options.batchTimeoutMs : undefined, asyncScheduler, resumedTask),
      testThenTrain(
        {
          endedTaskLabelled: options.endedTaskLabelled ?? 'evaluate',
          ...(source.probe ? {} : { holdout: { every: options.holdoutEvery, maxPerTask: options.probeSize } }),
        },
        resumed ? { ...(resumedTask ? { current: resumedTask } : {}), holdout: resumed.holdout } : undefined,
      ),
      applyStrategy({
        strategy,
        probes,
        demand,
        weightsEverySteps: options.weightsEverySteps ?? 20,
        ...(options.taskGivenAtTest !== undefined ? { taskGivenAtTest: options.taskGivenAtTest } : {}),
        ...(options.sink ? { sink: options.sink } : {}),
        ...(options.onRejected ? { onRejected: options.onRejected } : {}),
        ...(drift ? { drift } : {}),
        ...(source.acknowledge ? { acknowledge: (s: readonly Sample[]) => source.acknowledge!(s) } : {}),
        ...(checkpoints && writer ? { checkpoints: { writer, everySamples: checkpoints.everySamples, positionsAfter: (s: Sample) => positionsAfter.get(s) } } : {}),
        ...(resumed ? { resumed } : {}),
      }),
    );
  });
}
