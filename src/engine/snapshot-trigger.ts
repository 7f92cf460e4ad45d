import type { CheckpointReason, EngineSnapshot } from '../operators/checkpoints';
import type { StepOutcome } from '../operators/events';
import type { KafkaSnapshotPublisher } from '../kafka/snapshots/snapshot-publisher';
import type { StrategyOptions, StrategyState } from '../strategies/strategy';
import { encodeCheckpoint } from './checkpoint';

/**
 * When the trainer publishes a model snapshot (README "Scaling"): with a durable checkpoint, so a
 * replica never serves a model that a restarted trainer would not resume from; at every task end,
 * and once `everySamples` samples were trained since the last snapshot (0: task ends only), and at
 * a graceful stop when anything was trained since. The snapshot is the checkpoint's strategy part
 * in the checkpoint file format (engine/checkpoint.ts), without the run state a replica needs not.
 */
export class SnapshotTrigger {
  private trained = 0;

  constructor(
    private readonly publisher: KafkaSnapshotPublisher,
    private readonly everySamples: number,
    private readonly identity: { readonly pipeline: string; readonly strategyName: string; readonly options: StrategyOptions },
  ) {}

  /** Counts the step's trained samples. */
  noteStep(outcome: StepOutcome): void {
    for (const kind of outcome.plan) if (kind === 'trained') this.trained += 1;
  }

  /** After a durable checkpoint: offers a snapshot of `state` when one is due (never waits for the publish). */
  afterCheckpoint(engine: EngineSnapshot, reason: CheckpointReason, state: StrategyState): void {
    const due = reason === 'task-end' || (this.everySamples > 0 && this.trained >= this.everySamples) || (reason === 'shutdown' && this.trained > 0);
    if (!due) return;
    const snapshot = Buffer.concat(encodeCheckpoint({ ...this.identity, state }));
    this.publisher.offer({ version: engine.modelVersion, tasks: engine.tasks, snapshot });
    this.trained = 0;
  }

  /** Publishes what was offered, for at most `timeoutMs`, then lets go of the connection. */
  close(timeoutMs: number): Promise<void> {
    return this.publisher.close(timeoutMs);
  }
}
