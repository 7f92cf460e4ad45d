import assert from 'node:assert/strict';
import type { Admin } from 'kafkajs';
import { silentLogger } from '../../src/core/log';
import { consumerLag, type LogEnd } from '../../src/kafka/consumer-lag';
import { LogResets } from '../../src/kafka/log-resets';
import { LifelongMetrics } from '../../src/metrics/prometheus';
import { parseExposition } from '../helpers/exposition';

/** The series the dashboards and alerts read beyond the learning metrics (issue 15). */
describe('production metrics: prediction latency, consumer lag, checkpoint age', () => {
  const series = async (metrics: LifelongMetrics) => parseExposition(await metrics.metrics());

  it('lifelong_prediction_duration_seconds counts each prediction batch; a bad duration is refused', async () => {
    const metrics = new LifelongMetrics({ defaultMetrics: false });
    metrics.observePrediction(0.004);
    metrics.observePrediction(0.02);
    const all = await series(metrics);
    assert.equal(all.find((s) => s.name === 'lifelong_prediction_duration_seconds_count')?.value, 2);
    assert.equal(all.find((s) => s.name === 'lifelong_prediction_duration_seconds_bucket' && s.labels['le'] === '0.005')?.value, 1);
    assert.throws(() => metrics.observePrediction(Number.NaN), /prediction duration/);
  });

  it('lifelong_checkpoint_last_success_timestamp_seconds is absent until a checkpoint, never a false 0', async () => {
    const metrics = new LifelongMetrics({ defaultMetrics: false });
    assert.equal((await series(metrics)).some((s) => s.name === 'lifelong_checkpoint_last_success_timestamp_seconds'), false);
    metrics.setCheckpointSuccess(1_700_000_000.5);
    assert.equal((await series(metrics)).find((s) => s.name === 'lifelong_checkpoint_last_success_timestamp_seconds')?.value, 1_700_000_000.5);
  });

  it('lifelong_kafka_consumer_lag{topic} holds the latest lag of each topic', async () => {
    const metrics = new LifelongMetrics({ defaultMetrics: false });
    metrics.setConsumerLag('a', 12);
    metrics.setConsumerLag('b', 0);
    metrics.setConsumerLag('a', 3);
    const lag = (await series(metrics)).filter((s) => s.name === 'lifelong_kafka_consumer_lag');
    assert.deepEqual(Object.fromEntries(lag.map((s) => [s.labels['topic'], s.value])), { a: 3, b: 0 });
  });

  it('consumer lag: log end minus the lowest offset not done, over the partitions read', () => {
    const ends: LogEnd[] = [{ partition: 0, high: 100 }, { partition: 1, high: 50 }, { partition: 2, high: 70 }];
    const notDone = new Map([[0, 90], [1, 50]]);
    assert.equal(consumerLag(ends, (p) => notDone.get(p)), 10, 'partition 2 is not read by this consumer');
    assert.equal(consumerLag(ends, () => undefined), undefined, 'no partition read: no lag to report');
    assert.equal(consumerLag([{ partition: 0, high: 5 }], () => 9), 0, 'a log that ends below the position (recreated) is not a negative lag');
  });

  it('the discovery poll\'s log-end requests feed the lag: no request of its own', async () => {
    const seen: [string, readonly LogEnd[]][] = [];
    let requests = 0;
    const admin = {
      fetchTopicOffsets: async () => {
        requests += 1;
        return [{ partition: 0, offset: '40', low: '0', high: '40' }];
      },
    } as unknown as Admin;
    const resets = new LogResets(silentLogger, (topic, ends) => seen.push([topic, ends]));
    await resets.shrunk(admin, 't', new Map([[0, 30]]));
    assert.equal(requests, 1);
    assert.deepEqual(seen.map(([topic, ends]) => [topic, ends.map((e) => e.high)]), [['t', [40]]]);
  });
});
