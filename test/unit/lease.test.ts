import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { CheckpointContent } from '../../src/engine/checkpoint';
import { CheckpointStore, FencedError } from '../../src/engine/checkpoint-store';
import { LeasedPipelines, type LeasedPipeline, type TrainPipeline } from '../../src/engine/leased-pipelines';
import { LeaseAssignment, stickyLeases } from '../../src/kafka/lease-assignment';
import type { Lease, LeaseHandlers, LeaseSource } from '../../src/kafka/lease-group';
import type { StrategyOptions } from '../../src/strategies/strategy';

const OPTIONS: StrategyOptions = { scenario: 'task-incremental', inputSize: 3, hiddenLayers: [4], outputUnits: 2, optimizer: 'adam', learningRate: 0.01, stepsPerBatch: 1, seed: 1, params: {} };

function content(version: number): CheckpointContent {
  return { pipeline: 'p', strategyName: 'finetune', options: OPTIONS, state: { strategy: 'finetune', format: 1, meta: { v: version }, tensors: { w: { shape: [1], data: Float32Array.of(version) } } } };
}

/** A lease group under the test's control: it says who is a member and hands leases out. */
class FakeLeases implements LeaseSource {
  handlers: LeaseHandlers | undefined;
  readonly memberIds = new Set<string>();
  stopped = false;
  private epoch = 0;

  async start(handlers: LeaseHandlers): Promise<void> {
    this.handlers = handlers;
  }

  async members(): Promise<ReadonlySet<string>> {
    return this.memberIds;
  }

  async stop(): Promise<void> {
    this.stopped = true;
  }

  give(topic: string, owner: string): Lease {
    this.epoch += 1;
    const lease = { topic, epoch: this.epoch, owner };
    this.handlers?.gained(lease);
    return lease;
  }
}

const stopped = (signal: AbortSignal): Promise<void> => (signal.aborted ? Promise.resolve() : new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true })));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, done: () => boolean | Promise<boolean>, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** A trainer that writes a checkpoint when it starts and another when it stops, as runPipeline does. */
function recordingTrainer(events: string[]): TrainPipeline {
  return async (pipeline, store, signal) => {
    events.push(`start ${pipeline.name}`);
    await store.write(content(1));
    await stopped(signal);
    await store.write(content(2));
    events.push(`stop ${pipeline.name}`);
  };
}

describe('pipeline leases and the fenced checkpoint store', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifelong-lease-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  describe('LeaseAssignment', () => {
    const topics = new Set(['lease.a', 'lease.b', 'lease.c']);

    it('tells the leases gained and lost from one join to the next; other topics and partitions are no lease', () => {
      const assignment = new LeaseAssignment();
      assert.deepEqual(assignment.joined('m1', { 'lease.a': [0], 'lease.b': [0], other: [0] }, topics), { gained: ['lease.a', 'lease.b'], lost: [] });
      assert.deepEqual(assignment.joined('m1', { 'lease.b': [0], 'lease.c': [1] }, topics), { gained: [], lost: ['lease.a'] });
      assert.deepEqual(assignment.joined('m1', { 'lease.b': [0], 'lease.c': [0] }, topics), { gained: ['lease.c'], lost: [] });
      assert.ok(assignment.holds('lease.b') && !assignment.holds('lease.a'));
      assert.deepEqual(assignment.dropAll(), ['lease.b', 'lease.c']);
    });

    it('a new member id (the broker dropped this member meanwhile) loses every lease and claims the assigned ones again', () => {
      const assignment = new LeaseAssignment();
      assignment.joined('m1', { 'lease.a': [0] }, topics);
      assert.deepEqual(assignment.joined('m2', { 'lease.a': [0] }, topics), { gained: ['lease.a'], lost: ['lease.a'] });
    });
  });

  describe('stickyLeases', () => {
    const of = (assignment: Map<string, string[]>) => Object.fromEntries([...assignment].map(([id, topics]) => [id, [...topics].sort()]));

    it('a standby joining takes nothing from the active holder', () => {
      assert.deepEqual(of(stickyLeases([{ memberId: 'z-standby', held: [] }, { memberId: 'a-active', held: ['p'] }], ['p'])), { 'a-active': ['p'], 'z-standby': [] });
      assert.deepEqual(of(stickyLeases([{ memberId: 'a-standby', held: [] }, { memberId: 'z-active', held: ['p'] }], ['p'])), { 'a-standby': [], 'z-active': ['p'] });
    });

    it('spreads a directory over the daemons, moving only the surplus when one joins, and hands a leaver\'s leases over', () => {
      const two = stickyLeases([{ memberId: 'd1', held: [] }, { memberId: 'd2', held: [] }], ['a', 'b', 'c']);
      assert.deepEqual(of(two), { d1: ['a', 'c'], d2: ['b'] });
      const three = stickyLeases([{ memberId: 'd1', held: ['a', 'c'] }, { memberId: 'd2', held: ['b'] }, { memberId: 'd3', held: [] }], ['a', 'b', 'c']);
      assert.deepEqual(of(three), { d1: ['a'], d2: ['b'], d3: ['c'] });
      const left = stickyLeases([{ memberId: 'd2', held: ['b'] }, { memberId: 'd3', held: ['c'] }], ['a', 'b', 'c']);
      assert.deepEqual(of(left), { d2: ['a', 'b'], d3: ['c'] });
    });

    it('a lease claimed twice stays with one member, and unknown topics are dropped', () => {
      assert.deepEqual(of(stickyLeases([{ memberId: 'm2', held: ['p', 'gone'] }, { memberId: 'm1', held: ['p'] }], ['p', 'q'])), { m1: ['p'], m2: ['q'] });
    });
  });

  describe('CheckpointStore fencing', () => {
    it('a claim by a newer epoch fences the older holder out: it neither writes nor claims again', async () => {
      const old = new CheckpointStore(dir, 3);
      const successor = new CheckpointStore(dir, 3);
      await old.prepare();
      await old.claim({ epoch: 5, owner: 'a' });
      await old.write(content(1));
      await successor.claim({ epoch: 9, owner: 'b' });
      await assert.rejects(old.write(content(2)), FencedError);
      await assert.rejects(old.claim({ epoch: 5, owner: 'a' }), FencedError);
      assert.equal((await old.list()).length, 1, 'the fenced write left nothing');
      await successor.write(content(3));
      const files = await successor.list();
      assert.deepEqual(files.map((f) => path.basename(f)), ['checkpoint-000000000002.ckpt', 'checkpoint-000000000001.ckpt']);
      assert.deepEqual(await successor.fence(), { epoch: 9, owner: 'b', released: false });
      await successor.release();
      assert.deepEqual(await successor.fence(), { epoch: 9, owner: 'b', released: true });
    });

    it('a release by a holder that was fenced out leaves the successor\'s fence alone', async () => {
      const old = new CheckpointStore(dir, 3);
      await old.prepare();
      await old.claim({ epoch: 1, owner: 'a' });
      await new CheckpointStore(dir, 3).claim({ epoch: 2, owner: 'b' });
      await old.release();
      assert.deepEqual(await old.fence(), { epoch: 2, owner: 'b', released: false });
    });

    it('a store that never claimed a lease writes as before (no fence file)', async () => {
      const store = new CheckpointStore(dir, 3);
      await store.prepare();
      await store.write(content(1));
      assert.equal(await store.fence(), undefined);
    });
  });

  describe('LeasedPipelines', () => {
    const pipeline = (name: string, handoverTimeoutMs = 2000): LeasedPipeline => ({ name, leaseTopic: `lease.${name}`, store: () => new CheckpointStore(path.join(dir, name), 3), handoverTimeoutMs });

    it('trains a pipeline only while its lease is held: a lost lease stops it gracefully and releases the directory', async () => {
      const leases = new FakeLeases();
      const events: string[] = [];
      const supervisor = new LeasedPipelines({ pipelines: [pipeline('p'), pipeline('q')], leases, train: recordingTrainer(events), pollMs: 10 });
      await supervisor.start();
      assert.deepEqual(supervisor.active(), []);
      leases.give('lease.p', 'me');
      await until('p training', () => supervisor.active().includes('p'));
      assert.deepEqual(supervisor.active(), ['p']);
      leases.handlers?.lost('lease.p');
      await until('p stopped', () => events.includes('stop p'));
      await until('p released', async () => (await new CheckpointStore(path.join(dir, 'p'), 3).fence())?.released === true);
      assert.deepEqual(supervisor.active(), []);
      assert.equal((await new CheckpointStore(path.join(dir, 'p'), 3).list()).length, 2, 'its stop checkpoint was written');
      await supervisor.stop();
      await supervisor.done;
      assert.ok(leases.stopped);
    });

    it('a successor waits for a live previous holder to release, and does not wait for one gone from the group', async () => {
      const events: string[] = [];
      const first = new FakeLeases();
      const a = new LeasedPipelines({ pipelines: [pipeline('p')], leases: first, train: recordingTrainer(events), pollMs: 10 });
      await a.start();
      first.give('lease.p', 'a');
      await until('a training', () => a.active().includes('p'));

      // b gets the lease while a, still a member, has not stopped yet: b waits.
      const second = new FakeLeases();
      second.memberIds.add('a');
      const b = new LeasedPipelines({ pipelines: [pipeline('p')], leases: second, train: async (p, store, signal) => {
        events.push('b start');
        await recordingTrainer(events)(p, store, signal);
      }, pollMs: 10 });
      await b.start();
      second.handlers?.gained({ topic: 'lease.p', epoch: 7, owner: 'b' });
      await sleep(100);
      assert.deepEqual(b.active(), [], 'b waits while a holds the directory');
      first.handlers?.lost('lease.p');
      await until('b training', () => b.active().includes('p'));
      assert.deepEqual(events.slice(0, 4), ['start p', 'stop p', 'b start', 'start p'], 'a stopped (and wrote its last checkpoint) before b began');
      await a.stop();

      // b is killed (never releases) and leaves the group: c does not wait.
      const third = new FakeLeases();
      const c = new LeasedPipelines({ pipelines: [pipeline('p', 60_000)], leases: third, train: recordingTrainer([]), pollMs: 10 });
      await c.start();
      third.handlers?.gained({ topic: 'lease.p', epoch: 12, owner: 'c' });
      await until('c training at once', () => c.active().includes('p'), 1000);
      // b, alive after all (a pause), is fenced at its next checkpoint: its run fails, and so its supervisor.
      await b.stop();
      await assert.rejects(b.done, FencedError);
      await c.stop();
      await c.done;
    });

    it('a trainer that fails stops every other pipeline and leaves the group', async () => {
      const leases = new FakeLeases();
      const stops: string[] = [];
      const supervisor = new LeasedPipelines({
        pipelines: [pipeline('p'), pipeline('q')],
        leases,
        pollMs: 10,
        train: async (p, _store, signal) => {
          if (p.name === 'q') throw new Error('q broke');
          await stopped(signal);
          stops.push(p.name);
        },
      });
      await supervisor.start();
      leases.give('lease.p', 'me');
      await until('p training', () => supervisor.active().includes('p'));
      leases.give('lease.q', 'me');
      await assert.rejects(supervisor.done, /q broke/);
      assert.deepEqual(stops, ['p']);
      assert.ok(leases.stopped);
    });
  });
});
