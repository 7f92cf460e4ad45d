import type { KafkaMessage } from 'kafkajs';
import type { TaskControl } from '../core/types';

/** A fetched record waiting for the engine. */
export interface QueuedRecord {
  readonly kind: 'record';
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly message: KafkaMessage;
}

/** An end-of-task marker the source decided on (idle), yielded in order with the records. */
export interface QueuedMarker {
  readonly kind: 'marker';
  readonly control: TaskControl;
}

export type Queued = QueuedRecord | QueuedMarker;

/** The records between Kafka and the engine, first in first out, counted per topic. */
export class IntakeQueue {
  private items: Queued[] = [];
  private head = 0;
  private readonly recordsByTopic = new Map<string, number>();

  /** Items waiting (records and markers). */
  get size(): number {
    return this.items.length - this.head;
  }

  /** Records of `topic` waiting. */
  recordsOf(topic: string): number {
    return this.recordsByTopic.get(topic) ?? 0;
  }

  push(item: Queued): void {
    this.items.push(item);
    if (item.kind === 'record') this.recordsByTopic.set(item.topic, this.recordsOf(item.topic) + 1);
  }

  shift(): Queued | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head] as Queued;
    this.head += 1;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    if (item.kind === 'record') this.recordsByTopic.set(item.topic, this.recordsOf(item.topic) - 1);
    return item;
  }

  /** Removes the records `which` selects (a partition this member no longer owns). */
  drop(which: (record: QueuedRecord) => boolean): void {
    const kept: Queued[] = [];
    for (let i = this.head; i < this.items.length; i++) {
      const item = this.items[i] as Queued;
      if (item.kind === 'record' && which(item)) this.recordsByTopic.set(item.topic, this.recordsOf(item.topic) - 1);
      else kept.push(item);
    }
    this.items = kept;
    this.head = 0;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
    this.recordsByTopic.clear();
  }
}
