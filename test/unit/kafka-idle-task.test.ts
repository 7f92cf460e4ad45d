import * as assert from 'node:assert/strict';
import { IdleTask } from '../../src/kafka/idle-task';

const IDLE_MS = 30;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves with the quiet time onIdle reported, or undefined if it was not called within `ms`. */
function watch(busy: () => boolean): { idle: IdleTask; fired: (ms: number) => Promise<number | undefined> } {
  let quiet: number | undefined;
  const idle = new IdleTask(IDLE_MS, busy, (quietMs) => (quiet = quietMs));
  const fired = async (ms: number): Promise<number | undefined> => {
    for (const end = Date.now() + ms; quiet === undefined && Date.now() < end; ) await sleep(5);
    return quiet;
  };
  return { idle, fired };
}

describe('the idle end of a Kafka task (without a broker)', () => {
  it('ends the task after idleMs without activity', async () => {
    const { idle, fired } = watch(() => false);
    const started = Date.now();
    idle.start();
    const quiet = await fired(2000);
    assert.ok(quiet !== undefined && quiet >= IDLE_MS, `quiet ${quiet}`);
    assert.ok(Date.now() - started >= IDLE_MS);
  });

  it('counts records still waiting for the engine as activity', async () => {
    let busy = true;
    const { idle, fired } = watch(() => busy);
    const started = Date.now();
    idle.start();
    assert.equal(await fired(150), undefined, 'not idle while busy');
    busy = false;
    const quiet = await fired(2000);
    // Quiet time counts from the last check that saw the queue busy (checks run every IDLE_MS), so
    // the end comes between 150 ms and 150 + IDLE_MS after the start: only the lower bound holds
    // on a loaded machine, whose timers run late.
    assert.ok(quiet !== undefined && quiet >= IDLE_MS);
    assert.ok(Date.now() - started >= 150);
  });

  it('is postponed by touch() and silenced by stop(); 0 means never', async () => {
    // A long idle time here, so that a busy machine's late timers cannot look like idleness.
    let fired = false;
    const idle = new IdleTask(200, () => false, () => (fired = true));
    idle.start();
    for (let i = 0; i < 15; i++) {
      await sleep(20);
      idle.touch();
    }
    assert.equal(fired, false, 'touched every 20 ms: never idle for 200 ms');
    idle.stop();
    await sleep(300);
    assert.equal(fired, false, 'stopped');
    let called = false;
    const never = new IdleTask(0, () => false, () => (called = true));
    never.start();
    await sleep(50);
    assert.equal(called, false);
  });
});
