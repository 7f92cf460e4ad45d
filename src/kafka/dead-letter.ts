import type { KafkaMessage } from 'kafkajs';
import { LifelongError } from '../core/errors';
import type { SampleRejection } from '../operators/events';
import { deadLetterHeaders, type InvalidReason, type MessageSource } from './codec';
import type { KafkaConnection } from './connection';
import { hasErrorType } from './error-causes';
import { OUTLAST_BROKER_RESTART, retryTransient, type RetryPolicy } from './retry';

/** Why a message was dead-lettered: the codec's reasons plus the source's own. */
export type DeadLetterReason = InvalidReason | 'labelled-request';

/** Copies rejected records to the dead-letter topic, with why and where from in their headers. */
export class DeadLetters {
  constructor(
    readonly topic: string,
    private readonly connection: KafkaConnection,
    /** True once its owner (the source, the sink) is closing: a failed produce is not retried then. */
    private readonly stopped: () => boolean,
    private readonly policy: RetryPolicy = OUTLAST_BROKER_RESTART,
  ) {}

  /**
   * Produces the dead letter: `reason` is one of the source's (DeadLetterReason) or the code of a
   * strategy's refusal (label-capacity, non-finite-update...). Transient failures (a broker restarting) are retried. Rejects with
   * a LifelongError once it gave up: a record not dead-lettered is not done.
   */
  async send(message: KafkaMessage, reason: DeadLetterReason | SampleRejection['reason'], detail: string, source: MessageSource): Promise<void> {
    const letter = (value: Buffer | null, why: string) => ({
      key: message.key,
      value,
      headers: deadLetterHeaders(message.headers, reason, why, source),
    });
    const produce = async (): Promise<void> => {
      await this.connection.ensureTopic(this.topic);
      const producer = await this.connection.producer();
      try {
        await producer.send({ topic: this.topic, messages: [letter(message.value, detail)] });
      } catch (error) {
        // The input topic may accept larger records than the dead-letter topic: keep the headers.
        if (!hasErrorType(error, 'MESSAGE_TOO_LARGE')) throw error;
        await producer.send({ topic: this.topic, messages: [letter(null, `${detail} (value dropped: too large for ${this.topic})`)] });
      }
    };
    const where = `${source.topic}[${source.partition}]@${source.offset}`;
    try {
      await retryTransient(`dead-lettering ${where}`, produce, this.policy, { log: this.connection.log, stopped: this.stopped });
    } catch (error) {
      throw new LifelongError(`kafka: could not dead-letter ${where} (${reason}) to ${this.topic}: ${(error as Error).message}`, { cause: error });
    }
  }
}
