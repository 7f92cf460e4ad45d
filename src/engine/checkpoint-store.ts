import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError, DataFormatError, LifelongError } from '../core/errors';
import { silentLogger, type Logger } from '../core/log';
import { readCheckpoint, writeCheckpoint, type Checkpoint, type CheckpointContent } from './checkpoint';

const NAME = /^checkpoint-(\d{12})\.ckpt$/;
const TEMP = /^\.checkpoint-\d{12}\.ckpt\..*\.tmp$/;

/** A checkpoint found in the store. */
export interface StoredCheckpoint {
  readonly file: string;
  readonly checkpoint: Checkpoint;
}

/**
 * A directory of numbered checkpoint files (`checkpoint-000000000042.ckpt`), the newest last: each
 * written atomically (checkpoint.ts), the `keep` newest kept. Reading takes the newest that
 * verifies; a corrupt, truncated or unsupported one is skipped with a warning naming it.
 */
export class CheckpointStore {
  private sequence: number | undefined;

  constructor(
    readonly directory: string,
    private readonly keep: number,
    private readonly log: Logger = silentLogger,
  ) {
    if (!Number.isInteger(keep) || keep < 1) throw new ConfigError(`checkpoint.keep must be an integer >= 1, got ${keep}`, undefined, 'checkpoint.keep');
  }

  /** Checkpoint files, newest first; none when the directory does not exist yet. */
  async list(): Promise<string[]> {
    let names: string[];
    try {
      names = await fs.promises.readdir(this.directory);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw this.unusable('cannot be read', error);
    }
    return names
      .filter((n) => NAME.test(n))
      .sort()
      .reverse()
      .map((n) => path.join(this.directory, n));
  }

  /**
   * Creates the directory if needed and checks it can be written, so that a daemon fails at start
   * rather than at its first checkpoint; removes temporary files a crash left behind.
   */
  async prepare(): Promise<void> {
    try {
      await fs.promises.mkdir(this.directory, { recursive: true });
      await fs.promises.access(this.directory, fs.constants.R_OK | fs.constants.W_OK | fs.constants.X_OK);
    } catch (error) {
      throw this.unusable('cannot be created, read and written', error);
    }
    for (const name of await fs.promises.readdir(this.directory)) {
      if (TEMP.test(name)) await fs.promises.rm(path.join(this.directory, name), { force: true });
    }
  }

  /** The newest checkpoint that reads and verifies, skipping (with a warning) those that do not. */
  async newest(): Promise<StoredCheckpoint | undefined> {
    for (const file of await this.list()) {
      try {
        return { file, checkpoint: await readCheckpoint(file) };
      } catch (error) {
        if (!(error instanceof DataFormatError) && (error as NodeJS.ErrnoException).code !== 'EACCES') throw error;
        this.log.warn(`skipping checkpoint ${file}: ${(error as Error).message}; trying the next older one`, { file });
      }
    }
    return undefined;
  }

  /** Writes the next checkpoint, then removes all but the `keep` newest. */
  async write(content: CheckpointContent): Promise<{ file: string; bytes: number }> {
    if (this.sequence === undefined) {
      const newest = (await this.list())[0];
      this.sequence = newest === undefined ? 0 : Number(NAME.exec(path.basename(newest))?.[1]);
    }
    this.sequence += 1;
    const file = path.join(this.directory, `checkpoint-${String(this.sequence).padStart(12, '0')}.ckpt`);
    const bytes = await writeCheckpoint(file, content);
    for (const old of (await this.list()).slice(this.keep)) await fs.promises.rm(old, { force: true });
    return { file, bytes };
  }

  /**
   * Moves every checkpoint into `<directory>/replaced-<time>/` (a fresh start): they are no longer
   * resumed, but nothing learned is deleted by a flag. Returns where they went, if anywhere.
   */
  async setAside(): Promise<string | undefined> {
    const files = await this.list();
    if (files.length === 0) return undefined;
    const aside = path.join(this.directory, `replaced-${new Date().toISOString().replace(/[:.]/g, '-')}`);
    await fs.promises.mkdir(aside, { recursive: true });
    for (const file of files) await fs.promises.rename(file, path.join(aside, path.basename(file)));
    this.sequence = undefined;
    return aside;
  }

  private unusable(what: string, cause: unknown): LifelongError {
    return new LifelongError(`checkpoint directory ${this.directory} ${what}: ${(cause as Error).message} (set checkpoint.directory, or LIFELONG_CHECKPOINT_DIRECTORY, to a writable directory)`, { cause });
  }
}
