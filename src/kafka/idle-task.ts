/**
 * Ends the current task after `idleMs` without one of its records (0: never). Records still
 * queued, or fetching held back by a full queue, count as activity: the task is not idle while
 * the engine is behind.
 */
export class IdleTask {
  private timer: NodeJS.Timeout | undefined;
  private lastActivity = 0;

  constructor(
    private readonly idleMs: number,
    /** True while the current task's records wait for the engine. */
    private readonly busy: () => boolean,
    /** The current task has been quiet for `quietMs`. */
    private readonly onIdle: (quietMs: number) => void,
  ) {}

  /** A task began: the clock starts now. */
  start(): void {
    this.touch();
    this.arm(this.idleMs);
  }

  /** One of the current task's records arrived or was taken. */
  touch(): void {
    this.lastActivity = Date.now();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(delayMs: number): void {
    if (this.idleMs <= 0) return;
    this.stop();
    this.timer = setTimeout(() => this.check(), delayMs);
  }

  private check(): void {
    this.timer = undefined;
    if (this.busy()) this.touch();
    const quiet = Date.now() - this.lastActivity;
    if (quiet < this.idleMs) return this.arm(this.idleMs - quiet);
    this.onIdle(quiet);
  }
}
