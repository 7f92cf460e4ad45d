import type { Admin, ITopicConfig } from 'kafkajs';
import { hasErrorType } from './error-causes';

/** How often, and how long at most, the broker's metadata is asked for topics it has just created. */
export interface MetadataWait {
  readonly intervalMs: number;
  readonly timeoutMs: number;
}

const METADATA_WAIT: MetadataWait = { intervalMs: 100, timeoutMs: 10_000 };

/**
 * admin.createTopics with waitForLeaders, waiting out the broker's metadata lag. kafkajs waits for
 * the new topics' leaders through LEADER_NOT_AVAILABLE only, and gives up at the first
 * UNKNOWN_TOPIC_OR_PARTITION; a busy KRaft broker answers that for a moment after acknowledging the
 * creation (its metadata cache has not caught up). The topics exist then: their metadata is asked
 * again until it has them. Resolves false when they all existed already, as kafkajs does.
 */
export async function createTopics(admin: Admin, topics: readonly ITopicConfig[], wait: MetadataWait = METADATA_WAIT): Promise<boolean> {
  try {
    return await admin.createTopics({ topics: [...topics], waitForLeaders: true });
  } catch (error) {
    if (!hasErrorType(error, 'UNKNOWN_TOPIC_OR_PARTITION')) throw error;
  }
  const names = topics.map((t) => t.topic);
  const deadline = Date.now() + wait.timeoutMs;
  for (;;) {
    try {
      await admin.fetchTopicMetadata({ topics: names });
      return true;
    } catch (error) {
      const lagging = hasErrorType(error, 'UNKNOWN_TOPIC_OR_PARTITION') || hasErrorType(error, 'LEADER_NOT_AVAILABLE');
      if (!lagging || Date.now() >= deadline) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, wait.intervalMs));
  }
}
