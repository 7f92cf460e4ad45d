import type { KafkaConnection } from '../connection';
import { createTopics } from '../create-topics';

/**
 * Creates the snapshot topic unless it exists: one partition (the order chunks-then-manifest holds
 * only within one) and cleanup.policy=compact (the newest manifest and its chunks are kept for
 * ever, older ones go). Both the trainer and the replicas call it, so that neither a replica that
 * starts first nor the broker's auto-creation makes it a plain topic.
 */
export async function ensureSnapshotTopic(connection: KafkaConnection, topic: string): Promise<void> {
  const admin = await connection.admin();
  if ((await admin.listTopics()).includes(topic)) return;
  try {
    await createTopics(admin, [{ topic, numPartitions: 1, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }]);
  } catch (error) {
    // The other side created it meanwhile.
    if (!(await admin.listTopics()).includes(topic)) throw error;
  }
}
