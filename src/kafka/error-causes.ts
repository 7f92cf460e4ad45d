/** What a kafkajs error says about itself: which broker error it is, whether trying again can help. */

/** True if a kafkajs error, or one it wraps (`cause`), is the broker's error `type`. */
export function hasErrorType(error: unknown, type: string): boolean {
  for (let e = error, depth = 0; typeof e === 'object' && e !== null && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if ((e as { type?: unknown }).type === type) return true;
  }
  return false;
}

/**
 * True when trying again later can succeed: the error says it is retriable (kafkajs errors and
 * LifelongError carry `retriable`), or kafkajs gave up retrying one that was (a broker restarting
 * for longer than kafkajs' own retries last). Only the error itself is asked: a non-retriable error
 * wrapping a retriable one means the wrapper decided.
 */
export function isTransient(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const e = error as { retriable?: unknown; name?: unknown };
  return e.retriable === true || e.name === 'KafkaJSNumberOfRetriesExceeded';
}

/** kafkajs errors that mean a broker or the group's coordinator cannot be reached yet. */
const UNREACHABLE = new Set(['KafkaJSGroupCoordinatorNotFound', 'KafkaJSConnectionError', 'KafkaJSConnectionClosedError', 'KafkaJSBrokerNotFound']);

/**
 * True when a kafkajs error, or one it wraps, says a broker or the group coordinator is not there
 * (yet): a broker restarting, or a recreated one whose offsets topic does not exist yet. kafkajs
 * gives up on these as non-retriable once its own retries ran out.
 */
export function isUnreachable(error: unknown): boolean {
  for (let e = error, depth = 0; typeof e === 'object' && e !== null && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (UNREACHABLE.has(String((e as { name?: unknown }).name))) return true;
  }
  return false;
}
