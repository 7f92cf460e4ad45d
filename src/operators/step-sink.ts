import type { StepOutcome } from './events';

/**
 * Where a step's results go before its samples are acknowledged to the source (Kafka publishes
 * predictions here). The engine awaits publish() and only then acknowledges, so an offset is
 * committed only once its prediction is out: at-least-once, never lost.
 */
export interface StepSink {
  publish(outcome: StepOutcome): Promise<void>;
  /** Flushes and releases; safe to call twice. */
  close(): Promise<void>;
}
