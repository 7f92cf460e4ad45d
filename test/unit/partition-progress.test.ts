import * as assert from 'node:assert/strict';
import { OffsetLedger, PartitionProgress } from '../../src/kafka/partition-progress';

/** A partition with `offsets` taken in, in order. */
function taken(...offsets: number[]): PartitionProgress {
  const progress = new PartitionProgress();
  for (const offset of offsets) progress.take(offset);
  return progress;
}

describe('partition progress: the offset ledger (without a broker)', () => {
  describe('PartitionProgress', () => {
    it('has nothing to commit before a record is taken in', () => {
      const progress = new PartitionProgress();
      assert.equal(progress.commitValue(), undefined);
      assert.equal(progress.next, undefined);
    });

    it('commits the lowest offset not done: a taken record holds the commit back until it is done', () => {
      const progress = taken(0, 1, 2);
      assert.equal(progress.next, 3);
      assert.equal(progress.commitValue(), 0);
      progress.finish(0);
      assert.equal(progress.commitValue(), 1);
      progress.finish(1);
      progress.finish(2);
      assert.equal(progress.commitValue(), 3, 'everything done: the intake position');
    });

    it('takes acknowledgements out of order: what is done above an open offset waits for it', () => {
      const progress = taken(0, 1, 2, 3, 4);
      progress.finish(2);
      progress.finish(4);
      assert.equal(progress.commitValue(), 0);
      progress.finish(0);
      assert.equal(progress.commitValue(), 1);
      progress.finish(1);
      assert.equal(progress.commitValue(), 3, '2 was done already: the commit jumps past it');
      progress.finish(3);
      assert.equal(progress.commitValue(), 5);
    });

    it('follows gaps in the offsets (compacted topics, transaction markers)', () => {
      const progress = taken(10, 12, 15);
      assert.equal(progress.commitValue(), 10);
      progress.finish(10);
      assert.equal(progress.commitValue(), 12, 'the next open offset, not 11');
      progress.finish(15);
      assert.equal(progress.commitValue(), 12);
      progress.finish(12);
      assert.equal(progress.commitValue(), 16);
    });

    it('skipTo moves the intake past records that carry nothing, never backwards', () => {
      const progress = taken(3);
      progress.skipTo(8);
      assert.equal(progress.next, 8);
      assert.equal(progress.commitValue(), 3, 'an open record still holds the commit');
      progress.finish(3);
      assert.equal(progress.commitValue(), 8);
      progress.skipTo(5);
      assert.equal(progress.next, 8);
      const fresh = new PartitionProgress();
      fresh.skipTo(42);
      assert.equal(fresh.commitValue(), 42, 'a batch of markers only: its end is committed');
    });

    it('ignores offsets it never took and offsets already done', () => {
      const progress = taken(5, 6, 7);
      progress.finish(4);
      progress.finish(99);
      assert.equal(progress.commitValue(), 5);
      progress.finish(6);
      progress.finish(6);
      progress.finish(5);
      assert.equal(progress.commitValue(), 7);
      progress.finish(5);
      assert.equal(progress.commitValue(), 7);
    });

    it('stays right over many records (its storage is compacted as the head moves)', () => {
      const progress = new PartitionProgress();
      const n = 5000;
      for (let offset = 0; offset < n; offset++) progress.take(offset);
      // Every offset but 4321 done, in an order that is neither ascending nor descending.
      for (let offset = 0; offset < n; offset += 2) if (offset !== 4321) progress.finish(offset);
      for (let offset = n - 1; offset > 0; offset -= 2) if (offset !== 4321) progress.finish(offset);
      assert.equal(progress.commitValue(), 4321);
      progress.finish(4321);
      assert.equal(progress.commitValue(), n);
      progress.take(n);
      assert.equal(progress.commitValue(), n);
    });
  });

  describe('OffsetLedger', () => {
    it('tracks partitions apart and commits each one that moved past what the group committed', () => {
      const ledger = new OffsetLedger();
      ledger.partition('a', 0).take(0);
      ledger.partition('a', 0).take(1);
      ledger.partition('a', 1).take(0);
      ledger.partition('b', 0).take(7);
      ledger.finish('a', 0, 0);
      ledger.finish('b', 0, 7);
      assert.deepEqual(ledger.toCommit(), [
        { topic: 'a', partition: 0, offset: '1' },
        { topic: 'a', partition: 1, offset: '0' },
        { topic: 'b', partition: 0, offset: '8' },
      ]);
      assert.equal(ledger.intake('a', 0), 2);
      assert.equal(ledger.intake('a', 2), undefined);
      assert.equal(ledger.intake('c', 0), undefined);
    });

    it('leaves out what the group already committed, and never goes back on a late report', () => {
      const ledger = new OffsetLedger();
      for (const offset of [0, 1, 2]) ledger.partition('a', 0).take(offset);
      ledger.finish('a', 0, 0);
      ledger.committed('a', 0, 1);
      assert.deepEqual(ledger.toCommit(), [], 'offset 1 is committed and still the lowest open one');
      ledger.finish('a', 0, 1);
      assert.deepEqual(ledger.toCommit(), [{ topic: 'a', partition: 0, offset: '2' }]);
      ledger.committed('a', 0, 2);
      ledger.committed('a', 0, 1);
      assert.deepEqual(ledger.toCommit(), []);
      assert.equal(ledger.partition('a', 0).committed, 2);
      ledger.committed('x', 3, 10); // a partition it never read: nothing to note
      assert.deepEqual(ledger.toCommit(), []);
    });

    it('finishing a record of an unknown partition is ignored', () => {
      const ledger = new OffsetLedger();
      ledger.finish('a', 0, 0);
      assert.deepEqual(ledger.toCommit(), []);
    });

    it('a reassignment drops the partitions taken away, which start over if they come back', () => {
      const ledger = new OffsetLedger();
      ledger.partition('a', 0).take(4);
      ledger.partition('a', 1).take(9);
      ledger.partition('b', 0).take(2);
      const dropped = ledger.keepAssigned({ a: [0] });
      assert.deepEqual(dropped, [
        { topic: 'a', partition: 1 },
        { topic: 'b', partition: 0 },
      ]);
      assert.deepEqual(ledger.toCommit(), [{ topic: 'a', partition: 0, offset: '4' }]);
      // An acknowledgement of a record of a dropped partition arrives late: the new owner commits it.
      ledger.finish('a', 1, 9);
      assert.deepEqual(ledger.toCommit(), [{ topic: 'a', partition: 0, offset: '4' }]);
      assert.equal(ledger.intake('a', 1), undefined, 'given back, it is read from the committed offset');
      ledger.partition('a', 1).take(9);
      assert.deepEqual(ledger.toCommit(), [
        { topic: 'a', partition: 0, offset: '4' },
        { topic: 'a', partition: 1, offset: '9' },
      ]);
      assert.deepEqual(ledger.keepAssigned({ a: [0, 1] }), []);
    });
  });
});
