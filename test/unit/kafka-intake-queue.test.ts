import * as assert from 'node:assert/strict';
import type { KafkaMessage } from 'kafkajs';
import { endOfTask } from '../../src/core/types';
import { IntakeQueue, type QueuedRecord } from '../../src/kafka/intake-queue';

function record(topic: string, partition: number, offset: number): QueuedRecord {
  const message = { key: null, value: null, offset: String(offset), timestamp: '0', attributes: 0, headers: {} } as KafkaMessage;
  return { kind: 'record', topic, partition, offset, message };
}

const describeItem = (item: ReturnType<IntakeQueue['shift']>): string => (item === undefined ? 'none' : item.kind === 'marker' ? `end(${item.control.task})` : `${item.topic}[${item.partition}]@${item.offset}`);

describe('the Kafka intake queue (without a broker)', () => {
  it('hands items out first in first out, counting the records of each topic', () => {
    const queue = new IntakeQueue();
    queue.push(record('a', 0, 0));
    queue.push(record('b', 0, 5));
    queue.push({ kind: 'marker', control: endOfTask('a', 'idle') });
    queue.push(record('a', 0, 1));
    assert.equal(queue.size, 4);
    assert.equal(queue.recordsOf('a'), 2);
    assert.equal(queue.recordsOf('b'), 1);
    assert.equal(queue.recordsOf('c'), 0);
    const order: string[] = [];
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) order.push(describeItem(item));
    assert.deepEqual(order, ['a[0]@0', 'b[0]@5', 'end(a)', 'a[0]@1']);
    assert.equal(queue.size, 0);
    assert.equal(queue.recordsOf('a'), 0);
  });

  it('drops the records of a partition taken away, keeping markers and the rest in order', () => {
    const queue = new IntakeQueue();
    queue.push(record('a', 0, 0));
    queue.push(record('a', 1, 0));
    queue.push({ kind: 'marker', control: endOfTask('a', 'idle') });
    queue.push(record('a', 1, 1));
    queue.push(record('a', 0, 1));
    queue.shift();
    queue.drop((r) => r.topic === 'a' && r.partition === 1);
    assert.equal(queue.size, 2);
    assert.equal(queue.recordsOf('a'), 1);
    assert.deepEqual([describeItem(queue.shift()), describeItem(queue.shift()), describeItem(queue.shift())], ['end(a)', 'a[0]@1', 'none']);
  });

  it('stays right past its compaction point', () => {
    const queue = new IntakeQueue();
    for (let i = 0; i < 3000; i++) queue.push(record('a', 0, i));
    for (let i = 0; i < 2000; i++) assert.equal((queue.shift() as QueuedRecord).offset, i);
    queue.push(record('a', 0, 3000));
    assert.equal(queue.size, 1001);
    assert.equal(queue.recordsOf('a'), 1001);
    assert.equal((queue.shift() as QueuedRecord).offset, 2000);
    queue.clear();
    assert.equal(queue.size, 0);
    assert.equal(queue.recordsOf('a'), 0);
  });
});
