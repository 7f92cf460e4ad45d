import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError, DataFormatError, LifelongError } from '../core/errors';
import { silentLogger, type Logger } from '../core/log';
import { readCheckpoint, syncDirectory, writeCheckpoint, type Checkpoint, type CheckpointContent } from './checkpoint';

const NAME = /^checkpoint-(\d{12})\.ckpt$/;
const TEMP = /^\.(checkpoint-\d{12}\.ckpt|lease\.json)\..*\.tmp$/;
/** The fence: which lease epoch may write checkpoints here (see claim()). */
const FENCE = 'lease.json';

/** A lease on the pipeline: its epoch only grows (kafka/lease-group.ts takes it from the broker). */
export interface LeaseClaim {
  readonly epoch: number;
  /** Who holds it (the lease group's member id), so a successor can tell whether it is still alive. */
  readonly owner: string;
}

/** What the fence file says: the newest epoch that claimed the store, and whether its holder let go. */
export interface FenceRecord extends LeaseClaim {
  /** The holder stopped cleanly: its last checkpoint is written and its offsets committed. */
  readonly released: boolean;
}

/**
 * A writer whose lease is older than the store's fence: another trainer took the pipeline over,
 * so this one must stop without writing (its work after its last checkpoint is read again by the
 * new holder, whose offsets are the committed ones).
 */
export class FencedError extends LifelongError {}

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
  /** Set by claim(): every write checks the fence still holds this epoch. */
  private claimed: LeaseClaim | undefined;

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

  /**
   * Writes the next checkpoint, then removes all but the `keep` newest. A store that claimed a
   * lease checks the fence before and after: a newer epoch's claim makes it throw FencedError,
   * and a file it wrote meanwhile is taken back (the new holder resumes what was there before).
   */
  async write(content: CheckpointContent): Promise<{ file: string; bytes: number }> {
    await this.assertHolder();
    if (this.sequence === undefined || this.claimed !== undefined) {
      // A fenced store may follow another writer's checkpoints: never reuse a number on disk.
      const newest = (await this.list())[0];
      this.sequence = Math.max(this.sequence ?? 0, newest === undefined ? 0 : Number(NAME.exec(path.basename(newest))?.[1]));
    }
    this.sequence += 1;
    const file = path.join(this.directory, `checkpoint-${String(this.sequence).padStart(12, '0')}.ckpt`);
    let bytes: number;
    try {
      bytes = await writeCheckpoint(file, content);
    } catch (error) {
      // A successor's prepare() removes the temporary files it finds: say why this one is gone.
      await this.assertHolder();
      throw error;
    }
    try {
      await this.assertHolder();
    } catch (error) {
      await fs.promises.rm(file, { force: true });
      throw error;
    }
    for (const old of (await this.list()).slice(this.keep)) await fs.promises.rm(old, { force: true });
    return { file, bytes };
  }

  /** The fence file's record; undefined when no lease ever claimed the store. */
  async fence(): Promise<FenceRecord | undefined> {
    let text: string;
    try {
      text = await fs.promises.readFile(path.join(this.directory, FENCE), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw this.unusable('cannot be read', error);
    }
    const record = JSON.parse(text) as Partial<FenceRecord>;
    if (!Number.isInteger(record.epoch) || typeof record.owner !== 'string' || typeof record.released !== 'boolean') {
      throw new DataFormatError(`${path.join(this.directory, FENCE)}: not a lease fence (epoch, owner, released)`);
    }
    return record as FenceRecord;
  }

  /**
   * Makes `lease` the only writer: the fence file takes its epoch, and a write by any store
   * holding an older one fails with FencedError from then on. Refuses (FencedError) a lease older
   * than the fence's: its holder lost it already.
   */
  async claim(lease: LeaseClaim): Promise<void> {
    const fence = await this.fence();
    if (fence !== undefined && fence.epoch > lease.epoch) throw new FencedError(`checkpoint directory ${this.directory} is held by lease epoch ${fence.epoch} (${fence.owner}), newer than this trainer's ${lease.epoch}: it was taken over`);
    await fs.promises.mkdir(this.directory, { recursive: true }).catch((error: unknown) => {
      throw this.unusable('cannot be created', error);
    });
    await this.writeFence({ epoch: lease.epoch, owner: lease.owner, released: false });
    this.claimed = lease;
  }

  /** The holder stopped cleanly (last checkpoint written, offsets committed): a successor need not wait. */
  async release(): Promise<void> {
    const lease = this.claimed;
    if (lease === undefined) return;
    this.claimed = undefined;
    const fence = await this.fence();
    if (fence?.epoch === lease.epoch) await this.writeFence({ ...lease, released: true });
  }

  private async assertHolder(): Promise<void> {
    const lease = this.claimed;
    if (lease === undefined) return;
    const fence = await this.fence();
    if (fence?.epoch !== lease.epoch) {
      throw new FencedError(`checkpoint directory ${this.directory} was taken over by lease epoch ${fence?.epoch ?? 'none'} (${fence?.owner ?? '?'}): this trainer (epoch ${lease.epoch}) stops without writing`);
    }
  }

  private async writeFence(record: FenceRecord): Promise<void> {
    const file = path.join(this.directory, FENCE);
    const temp = `${path.join(this.directory, `.${FENCE}`)}.${process.pid}.${Date.now()}.tmp`;
    await fs.promises.writeFile(temp, `${JSON.stringify(record)}\n`);
    await fs.promises.rename(temp, file);
    await syncDirectory(this.directory);
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
