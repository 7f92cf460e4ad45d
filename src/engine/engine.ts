import { defer, type Observable } from 'rxjs';
import { isTaskControl, type Sample, type SourceItem, type TaskName } from '../core/types';
import { applyStrategy } from '../operators/apply-strategy';
import { Demand } from '../operators/demand';
import { detectTaskBoundaries } from '../operators/detect-task-boundaries';
import type { EngineEvent, SampleRejection } from '../operators/events';
import { microBatch } from '../operators/micro-batch';
import { ProbeStore } from '../operators/probe-store';
import { pullSource } from '../operators/pull-source';
import { testThenTrain } from '../operators/test-then-train';
import type { StepSink } from '../operators/step-sink';
import type { Source } from '../operators/source';
import type { Strategy } from '../strategies/strategy';

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
  const { source, strategy, batchSize } = options;
  return defer(() => {
    const demand = new Demand(2 * batchSize);
    const probes = new ProbeStore(source, options.probeSize);
    const context = {
      reject: (task: TaskName | undefined, reason: string, detail: string) => options.onReject?.(task, reason, detail),
      log: options.log ?? (() => undefined),
    };
    return pullSource<SourceItem>(() => source.open(context), demand, { costless: isTaskControl, ...(options.stop ? { stop: options.stop } : {}) }).pipe(
      detectTaskBoundaries(options.stop ? { shutdown: options.stop } : {}),
      microBatch(batchSize, source.live ? options.batchTimeoutMs : undefined),
      testThenTrain({
        endedTaskLabelled: options.endedTaskLabelled ?? 'evaluate',
        ...(source.probe ? {} : { holdout: { every: options.holdoutEvery, maxPerTask: options.probeSize } }),
      }),
      applyStrategy({
        strategy,
        probes,
        demand,
        weightsEverySteps: options.weightsEverySteps ?? 20,
        ...(options.taskGivenAtTest !== undefined ? { taskGivenAtTest: options.taskGivenAtTest } : {}),
        ...(options.sink ? { sink: options.sink } : {}),
        ...(options.onRejected ? { onRejected: options.onRejected } : {}),
        ...(source.acknowledge ? { acknowledge: (s: readonly Sample[]) => source.acknowledge!(s) } : {}),
      }),
    );
  });
}
