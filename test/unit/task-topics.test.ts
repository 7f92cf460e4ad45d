import * as assert from 'node:assert/strict';
import { ConfigError } from '../../src/core/errors';
import { silentLogger } from '../../src/core/log';
import { TaskTopics, type TaskTopicProbe, type TaskTopicRules } from '../../src/kafka/task-topics';

const RULES: TaskTopicRules = {
  topicPattern: 'demo\\..*',
  deadLetterTopic: 'demo.dead-letter',
  predictionsTopic: '{topic}.predictions',
  requestTopic: 'demo.requests',
  requestPredictionsTopic: 'demo.answers',
};

/** A cluster on paper: which topics hold unread records, how many records are queued; every question is noted. */
class FakeProbe implements TaskTopicProbe {
  readonly unread = new Set<string>();
  readonly queuedOf = new Map<string, number>();
  readonly asked: string[] = [];
  isStopped = false;

  async hasUnread(topic: string): Promise<boolean> {
    this.asked.push(topic);
    return this.unread.has(topic);
  }

  queued(topic: string): number {
    return this.queuedOf.get(topic) ?? 0;
  }

  stopped(): boolean {
    return this.isStopped;
  }
}

function phases(topics: TaskTopics): Record<string, string | undefined> {
  return Object.fromEntries(topics.taskOrder().map((t) => [t, topics.phaseOf(t)]));
}

describe('task topics: which topics are tasks, their order and phases (without a broker)', () => {
  it('takes the topics matching the whole pattern, except those around tasks', () => {
    const topics = new TaskTopics(RULES, silentLogger);
    for (const topic of ['demo.a', 'demo.split-mnist-0-1', 'demo.x.predictions-old']) assert.ok(topics.isTaskTopic(topic), topic);
    for (const topic of ['other.a', 'xdemo.a', '__consumer_offsets', 'demo.dead-letter', 'demo.requests', 'demo.a.predictions', 'demo.answers']) {
      assert.ok(!topics.isTaskTopic(topic), topic);
    }
    const internal = new TaskTopics({ ...RULES, topicPattern: '.*' }, silentLogger);
    assert.ok(!internal.isTaskTopic('__transaction_state'));
    assert.ok(internal.isTaskTopic('plain'));
  });

  it('escapes the predictions template: only its literal parts are matched as such', () => {
    const topics = new TaskTopics({ ...RULES, topicPattern: '.*', predictionsTopic: 'out.{topic}+p', requestPredictionsTopic: undefined }, silentLogger);
    assert.ok(!topics.isTaskTopic('out.demo.a+p'));
    assert.ok(topics.isTaskTopic('outXdemo.aXp'), '"." and "+" in the template are literal');
    assert.ok(topics.isTaskTopic('demo.answers'), 'without a request predictions topic it is an ordinary name');
    assert.ok(!topics.isTaskTopic('demo.requests'));
  });

  it('refuses a pattern that is not a regular expression, naming the key', () => {
    assert.throws(
      () => new TaskTopics({ ...RULES, topicPattern: 'demo.(' }, silentLogger),
      (error: unknown) => error instanceof ConfigError && error.key === 'source.topicPattern' && /not a valid regular expression/.test(error.message),
    );
  });

  it('orders the first discovery by name and later ones after every known topic', () => {
    const topics = new TaskTopics(RULES, silentLogger);
    assert.deepEqual(topics.discover(['demo.c', 'demo.a', 'other', 'demo.dead-letter', 'demo.b']), ['demo.a', 'demo.b', 'demo.c']);
    assert.deepEqual(topics.discover(['demo.c', 'demo.a', 'demo.0-late', 'demo.b', 'demo.z']), ['demo.0-late', 'demo.z']);
    assert.deepEqual(topics.discover(new Set(['demo.a'])), []);
    assert.deepEqual(topics.taskOrder(), ['demo.a', 'demo.b', 'demo.c', 'demo.0-late', 'demo.z']);
    assert.deepEqual(phases(topics), { 'demo.a': 'pending', 'demo.b': 'pending', 'demo.c': 'pending', 'demo.0-late': 'pending', 'demo.z': 'pending' });
    assert.equal(topics.current, undefined);
    assert.equal(topics.phaseOf('demo.requests'), undefined, 'the request topic has no phase: it is read throughout');
  });

  it('begins the first pending topic holding data, without asking about later ones', async () => {
    const topics = new TaskTopics(RULES, silentLogger);
    topics.discover(['demo.a', 'demo.b', 'demo.c']);
    const probe = new FakeProbe();
    assert.equal(await topics.advance(probe), undefined, 'no topic has data: nothing begins');
    assert.deepEqual(probe.asked, ['demo.a', 'demo.b', 'demo.c']);
    probe.asked.length = 0;
    probe.unread.add('demo.b');
    probe.unread.add('demo.c');
    assert.equal(await topics.advance(probe), 'demo.b');
    assert.deepEqual(probe.asked, ['demo.a', 'demo.b']);
    assert.equal(topics.current, 'demo.b');
    assert.deepEqual(phases(topics), { 'demo.a': 'pending', 'demo.b': 'current', 'demo.c': 'pending' });
  });

  it('keeps the current task while it has records queued or unread; ends it once caught up and a later topic has data', async () => {
    const topics = new TaskTopics(RULES, silentLogger);
    topics.discover(['demo.a', 'demo.b']);
    const probe = new FakeProbe();
    probe.unread.add('demo.a');
    assert.equal(await topics.advance(probe), 'demo.a');

    probe.unread.add('demo.b');
    probe.queuedOf.set('demo.a', 3);
    probe.asked.length = 0;
    assert.equal(await topics.advance(probe), undefined, 'records of the current task are queued');
    assert.deepEqual(probe.asked, [], 'nothing asked while the current task has records queued');

    probe.queuedOf.set('demo.a', 0);
    assert.equal(await topics.advance(probe), undefined, 'demo.a still holds unread records');
    assert.equal(topics.current, 'demo.a');

    probe.unread.delete('demo.a');
    assert.equal(await topics.advance(probe), 'demo.b');
    assert.deepEqual(phases(topics), { 'demo.a': 'ended', 'demo.b': 'current' });
    assert.equal(await topics.advance(probe), undefined, 'no pending topic left');
  });

  it('a pending topic once seen with data is not asked again', async () => {
    const topics = new TaskTopics(RULES, silentLogger);
    topics.discover(['demo.a', 'demo.b']);
    const probe = new FakeProbe();
    probe.unread.add('demo.a');
    await topics.advance(probe);
    probe.unread.add('demo.b');
    await topics.advance(probe); // demo.a not caught up: demo.b is known to have data
    probe.unread.delete('demo.b');
    probe.unread.delete('demo.a');
    probe.asked.length = 0;
    assert.equal(await topics.advance(probe), 'demo.b');
    assert.deepEqual(probe.asked, ['demo.a'], 'only the current topic was asked');
  });

  it('ending the current task (control message, idle) leaves none current until the next advance', async () => {
    const topics = new TaskTopics(RULES, silentLogger);
    topics.discover(['demo.a', 'demo.b']);
    const probe = new FakeProbe();
    probe.unread.add('demo.a');
    await topics.advance(probe);
    assert.equal(topics.endCurrent(), 'demo.a');
    assert.equal(topics.endCurrent(), undefined);
    assert.equal(topics.current, undefined);
    assert.equal(topics.phaseOf('demo.a'), 'ended');
    probe.unread.add('demo.b');
    assert.equal(await topics.advance(probe), 'demo.b');
  });

  it('begins nothing once stopped', async () => {
    const topics = new TaskTopics(RULES, silentLogger);
    topics.discover(['demo.a']);
    const probe = new FakeProbe();
    probe.unread.add('demo.a');
    probe.isStopped = true;
    assert.equal(await topics.advance(probe), undefined);
    assert.equal(topics.phaseOf('demo.a'), 'pending');
  });

  it("names a topic's task after the latest sample's task header, else the topic", () => {
    const topics = new TaskTopics(RULES, silentLogger);
    assert.equal(topics.taskOf('demo.a'), 'demo.a');
    topics.noteTask('demo.a', 'digits-0-1');
    assert.equal(topics.taskOf('demo.a'), 'digits-0-1');
  });
});
