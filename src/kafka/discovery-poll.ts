import type { Logger } from '../core/log';

/**
 * Runs the topic discovery `tick` one at a time: every `intervalMs` after the previous one ended,
 * and on request (a task ended: the next may begin). A request during a tick runs another after it.
 */
export class DiscoveryPoll {
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private again = false;

  constructor(
    private readonly intervalMs: number,
    private readonly tick: () => Promise<void>,
    /** True once the source finished: no more ticks. */
    private readonly finished: () => boolean,
    /** True once the source failed: no more polls, and a tick's failure is not logged again. */
    private readonly failed: () => boolean,
    private readonly log: Logger,
  ) {}

  /** The tick in progress, if any (closing waits for it). */
  get running(): Promise<void> | undefined {
    return this.ticking;
  }

  /** Ticks now (or after the tick in progress); rejects with the tick's failure. */
  run(): Promise<void> {
    if (this.ticking) {
      this.again = true;
      return this.ticking;
    }
    this.stop();
    this.ticking = (async () => {
      try {
        do {
          this.again = false;
          await this.tick();
        } while (this.again && !this.finished());
      } finally {
        this.ticking = undefined;
        this.schedule();
      }
    })();
    return this.ticking;
  }

  /** A tick soon; a failure is logged and the next poll retries. */
  request(): void {
    if (this.finished()) return;
    this.run().catch((error: unknown) => {
      if (!this.failed()) this.log.warn(`kafka topic discovery failed; retrying in ${this.intervalMs} ms: ${(error as Error).message}`);
    });
  }

  /** No poll is scheduled any more (one in progress runs to its end). */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    if (this.finished() || this.failed() || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.request();
    }, this.intervalMs);
  }
}
