import type { Logger } from './log';

export interface RateLimitOptions {
  /** Lines written per reason and window; the rest are counted. Default 10. */
  readonly perWindow?: number;
  /** Default 60 s. */
  readonly windowMs?: number;
  /** Clock in ms (tests). */
  readonly now?: () => number;
}

interface Window {
  start: number;
  written: number;
  suppressed: number;
}

/**
 * Warnings about rejected input, limited per reason: a producer sending a flood of bad messages
 * must not flood the log (nor hide the one other reason that matters). In each window the first
 * `perWindow` warnings of a reason are written; the others are counted, and one summary line says
 * how many were left out when the reason next appears after the window, or at flush().
 */
export class RateLimitedWarnings {
  private readonly perWindow: number;
  private readonly windowMs: number;
  private readonly now: () => number;
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly log: Logger,
    options: RateLimitOptions = {},
  ) {
    this.perWindow = options.perWindow ?? 10;
    this.windowMs = options.windowMs ?? 60_000;
    this.now = options.now ?? Date.now;
  }

  warn(reason: string, message: string, fields: Record<string, unknown> = {}): void {
    const now = this.now();
    let window = this.windows.get(reason);
    if (window && now - window.start >= this.windowMs) {
      this.summarise(reason, window);
      window = undefined;
    }
    if (!window) this.windows.set(reason, (window = { start: now, written: 0, suppressed: 0 }));
    if (window.written < this.perWindow) {
      window.written += 1;
      this.log.warn(message, { ...fields, reason });
    } else {
      window.suppressed += 1;
    }
  }

  /** Writes the summary of every reason with warnings left out (at shutdown). */
  flush(): void {
    for (const [reason, window] of this.windows) this.summarise(reason, window);
    this.windows.clear();
  }

  private summarise(reason: string, window: Window): void {
    if (window.suppressed === 0) return;
    const seconds = Math.round((this.now() - window.start) / 1000);
    this.log.warn(`${window.suppressed} more rejections (${reason}) not logged in the last ${seconds} s (at most ${this.perWindow} per ${this.windowMs / 1000} s per reason)`, { reason, suppressed: window.suppressed });
    window.suppressed = 0;
  }
}
