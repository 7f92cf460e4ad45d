import { InvariantError } from '../core/errors';
import { silentLogger, type Logger } from '../core/log';
import type { Lease, LeaseSource } from '../kafka/lease-group';
import type { CheckpointStore } from './checkpoint-store';

/** A pipeline that runs only while this process holds its lease. */
export interface LeasedPipeline {
  readonly name: string;
  readonly leaseTopic: string;
  /** A fresh store on the pipeline's (shared) checkpoint directory, for one term of holding the lease. */
  store(): CheckpointStore;
  /** How long a successor waits for a live previous holder to finish (its graceful-stop deadline). */
  readonly handoverTimeoutMs: number;
}

/** Runs the pipeline until `signal` aborts (then stops gracefully: checkpoint, commit) or it fails. */
export type TrainPipeline = (pipeline: LeasedPipeline, store: CheckpointStore, signal: AbortSignal) => Promise<void>;

export interface LeasedPipelinesOptions {
  readonly pipelines: readonly LeasedPipeline[];
  readonly leases: LeaseSource;
  readonly train: TrainPipeline;
  readonly log?: Logger;
  /** Between two looks at the fence while a previous holder finishes. Default 200 ms. */
  readonly pollMs?: number;
}

interface Term {
  readonly pipeline: LeasedPipeline;
  readonly lease: Lease;
  readonly abort: AbortController;
  training: boolean;
  done: Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs each pipeline whose lease this process holds, one trainer per pipeline, and only then:
 * - a gained lease waits for the previous holder, if it is still in the group, to release the
 *   checkpoint directory (its last checkpoint written, its offsets committed, its data consumer
 *   gone), at most the pipeline's handover timeout; a holder that is gone (killed, partitioned
 *   away) is not waited for. Then the store is claimed with the lease's epoch (a writer of an
 *   older epoch is fenced out) and the pipeline resumes from the newest checkpoint;
 * - a lost lease stops its trainer as SIGTERM would (batch in hand, checkpoint, commit) unless the
 *   fence refuses it, and releases the store;
 * - stop() stops every trainer, then leaves the group, so successors find the directories released.
 * A trainer that fails (a FencedError among others) fails the whole supervisor: `done` rejects.
 */
export class LeasedPipelines {
  private readonly log: Logger;
  private readonly byTopic: ReadonlyMap<string, LeasedPipeline>;
  private readonly terms = new Map<string, Term>();
  private stopping = false;
  private stopped: Promise<void> | undefined;
  /** The first failure, which `done` rejects with once everything stopped. */
  private failure: Error | undefined;
  private fail: ((error: Error) => void) | undefined;
  private finish: (() => void) | undefined;
  /** Rejects with the first failure; resolves once stop() has stopped everything. */
  readonly done: Promise<void>;

  constructor(private readonly options: LeasedPipelinesOptions) {
    this.log = options.log ?? silentLogger;
    this.byTopic = new Map(options.pipelines.map((p) => [p.leaseTopic, p]));
    if (this.byTopic.size !== options.pipelines.length) throw new InvariantError('LeasedPipelines: two pipelines share a lease topic');
    this.done = new Promise<void>((resolve, reject) => {
      this.finish = resolve;
      this.fail = reject;
    });
    this.done.catch(() => undefined);
  }

  /** Joins the lease group; pipelines start as their leases come. */
  async start(): Promise<void> {
    await this.options.leases.start({
      gained: (lease) => this.gained(lease),
      lost: (topic) => this.lost(topic),
      failed: (error) => this.failed(error),
    });
  }

  /** The pipelines training here now (their lease held and the directory claimed). */
  active(): string[] {
    return [...this.terms.values()].filter((t) => t.training).map((t) => t.pipeline.name).sort();
  }

  /** Stops every trainer gracefully, then leaves the group; calling again returns the same promise. */
  stop(): Promise<void> {
    this.stopped ??= this.stopAll();
    return this.stopped;
  }

  private async stopAll(): Promise<void> {
    this.stopping = true;
    const terms = [...this.terms.values()];
    for (const term of terms) term.abort.abort();
    const settled = await Promise.allSettled(terms.map((t) => t.done));
    try {
      await this.options.leases.stop();
    } catch (error) {
      // The broker drops this member after its session timeout instead: later, but the same.
      this.log.warn(`leaving the lease group failed: ${(error as Error).message}`);
    }
    this.failure ??= settled.find((s): s is PromiseRejectedResult => s.status === 'rejected')?.reason as Error | undefined;
    if (this.failure) this.fail?.(this.failure);
    else this.finish?.();
  }

  private gained(lease: Lease): void {
    const pipeline = this.byTopic.get(lease.topic);
    if (pipeline === undefined || this.stopping) return;
    const earlier = this.terms.get(lease.topic);
    const term: Term = { pipeline, lease, abort: new AbortController(), training: false, done: Promise.resolve() };
    this.terms.set(lease.topic, term);
    // A lease lost and gained again: the earlier term finishes (and releases) before this one claims.
    term.done = (earlier?.done.catch(() => undefined) ?? Promise.resolve()).then(() => this.serve(term));
    term.done.catch((error: Error) => this.failed(error)).finally(() => {
      if (this.terms.get(lease.topic) === term) this.terms.delete(lease.topic);
    });
  }

  private lost(topic: string): void {
    const term = this.terms.get(topic);
    if (term === undefined) return;
    this.log.info(`pipeline ${term.pipeline.name}: lease lost, stopping its trainer`);
    term.abort.abort();
  }

  private failed(error: Error): void {
    if (this.stopping) return;
    this.failure = error;
    this.log.error(`stopping every pipeline: ${error.message}`);
    void this.stop();
  }

  /** One term of holding a pipeline's lease. */
  private async serve(term: Term): Promise<void> {
    const { pipeline, lease, abort } = term;
    const store = pipeline.store();
    await this.awaitHandover(pipeline, store, lease, abort.signal);
    if (abort.signal.aborted) return;
    await store.claim(lease);
    // Only now: prepare() removes temporary files, which a previous holder may still be writing.
    await store.prepare();
    term.training = true;
    // The two events a term is made of (the standby test checks that terms never overlap).
    this.log.info(`pipeline ${pipeline.name}: training (lease epoch ${lease.epoch})`, { pipeline: pipeline.name, epoch: lease.epoch, term: 'begins' });
    try {
      await this.options.train(pipeline, store, abort.signal);
    } finally {
      term.training = false;
      this.log.info(`pipeline ${pipeline.name}: trainer stopped`, { pipeline: pipeline.name, epoch: lease.epoch, term: 'ends' });
    }
    await store.release();
    this.log.info(`pipeline ${pipeline.name}: checkpoint directory released`, { pipeline: pipeline.name, epoch: lease.epoch });
  }

  /** Waits until the previous holder released the store, is gone from the group, or had its time. */
  private async awaitHandover(pipeline: LeasedPipeline, store: CheckpointStore, lease: Lease, signal: AbortSignal): Promise<void> {
    const deadline = Date.now() + pipeline.handoverTimeoutMs;
    for (;;) {
      const fence = await store.fence();
      if (fence === undefined || fence.released || fence.owner === lease.owner || fence.epoch > lease.epoch) return;
      if (!(await this.options.leases.members()).has(fence.owner)) {
        this.log.info(`pipeline ${pipeline.name}: the previous holder (epoch ${fence.epoch}) left the group without releasing; taking over from the newest checkpoint`);
        return;
      }
      if (Date.now() >= deadline) {
        this.log.warn(`pipeline ${pipeline.name}: the previous holder (epoch ${fence.epoch}) did not release within ${pipeline.handoverTimeoutMs} ms; fencing it out`);
        return;
      }
      if (signal.aborted) return;
      await sleep(this.options.pollMs ?? 200);
    }
  }
}
