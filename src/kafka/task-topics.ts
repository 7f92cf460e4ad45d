/**
 * Which topics are tasks, in which order they are learned, and which one is current. No kafkajs
 * here: what it needs to know of the cluster (does a topic hold unread records, how many of its
 * records are queued) is asked through a TaskTopicProbe, so it is unit-tested without a broker.
 *
 * Which topics are tasks: those whose whole name matches `topicPattern`, except internal topics
 * (`__` prefix), the dead-letter topic, every topic the predictions template can produce, and the
 * request topic (its messages are task-agnostic prediction requests).
 *
 * Task order: topics known at the first discovery are ordered by name; topics discovered later
 * come after every known one, by name among those found by the same discovery. A task topic is
 * pending until its task begins, current while it is learned (one at a time), then ended.
 */
import { ConfigError } from '../core/errors';
import type { Logger } from '../core/log';
import type { TaskName } from '../core/types';

export type TaskPhase = 'pending' | 'current' | 'ended';

/** The topics around task topics, which are never tasks themselves. */
export interface TaskTopicRules {
  /** A regular expression matched against whole topic names (anchored here). */
  readonly topicPattern: string;
  readonly deadLetterTopic: string;
  /** Where predictions go; '{topic}' is the input topic. */
  readonly predictionsTopic: string;
  readonly requestTopic?: string | undefined;
  readonly requestPredictionsTopic?: string | undefined;
}

/** What advance() asks of the cluster and the intake queue. */
export interface TaskTopicProbe {
  /** True when the topic holds records after where reading starts. */
  hasUnread(topic: string): Promise<boolean>;
  /** Records of the topic taken in and not yet given to the engine. */
  queued(topic: string): number;
  /** True once the source stopped: nothing begins any more. */
  stopped(): boolean;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export class TaskTopics {
  private readonly pattern: RegExp;
  private readonly outputPattern: RegExp;
  private readonly requestTopic: string | undefined;
  private readonly deadLetterTopic: string;
  private readonly order: string[] = [];
  private readonly phases = new Map<string, TaskPhase>();
  private currentTopic: string | undefined;
  /** Pending task topics known to hold unread records. */
  private readonly withData = new Set<string>();
  /** The task name the latest sample of a topic carried (a header may name it instead of the topic). */
  private readonly taskNames = new Map<string, TaskName>();

  /** Throws ConfigError (key source.topicPattern) for a pattern that is not a regular expression. */
  constructor(
    rules: TaskTopicRules,
    private readonly log: Logger,
  ) {
    try {
      this.pattern = new RegExp(`^(?:${rules.topicPattern})$`);
    } catch (error) {
      throw new ConfigError(`kafka topicPattern is not a valid regular expression: ${(error as Error).message}`, undefined, 'source.topicPattern', error);
    }
    this.requestTopic = rules.requestTopic ? rules.requestTopic : undefined;
    this.deadLetterTopic = rules.deadLetterTopic;
    const outputs = [rules.predictionsTopic.split('{topic}').map(escapeRegExp).join('.+')];
    if (rules.requestPredictionsTopic) outputs.push(escapeRegExp(rules.requestPredictionsTopic));
    this.outputPattern = new RegExp(`^(?:${outputs.join('|')})$`);
  }

  /** True for a topic that is a task: matches the pattern and is none of the topics around tasks. */
  isTaskTopic(topic: string): boolean {
    return this.pattern.test(topic) && !topic.startsWith('__') && topic !== this.deadLetterTopic && topic !== this.requestTopic && !this.outputPattern.test(topic);
  }

  /** Takes the cluster's topic list: task topics not seen before become pending, in order. Returns them. */
  discover(topics: Iterable<string>): string[] {
    const fresh = [...topics].filter((t) => !this.phases.has(t) && this.isTaskTopic(t)).sort();
    for (const topic of fresh) {
      this.order.push(topic);
      this.phases.set(topic, 'pending');
    }
    return fresh;
  }

  /**
   * Before the first discovery: the task topics of a checkpoint, in their order, every one ended
   * but `current`, which goes on. Topics discovered later come after them.
   */
  restore(topics: readonly string[], current: string | undefined): void {
    for (const topic of topics) {
      if (this.phases.has(topic)) continue;
      this.order.push(topic);
      this.phases.set(topic, topic === current ? 'current' : 'ended');
    }
    if (current !== undefined && this.phases.get(current) === 'current') this.currentTopic = current;
  }

  /** Task topics in the order their tasks are (or will be) learned. */
  taskOrder(): readonly string[] {
    return [...this.order];
  }

  phaseOf(topic: string): TaskPhase | undefined {
    return this.phases.get(topic);
  }

  /** The topic of the task being learned, if any. */
  get current(): string | undefined {
    return this.currentTopic;
  }

  /** A sample of `topic` named its task `task` (the name an idle end-of-task marker uses). */
  noteTask(topic: string, task: TaskName): void {
    this.taskNames.set(topic, task);
  }

  /** The task of `topic`: the name its latest sample carried, else the topic. */
  taskOf(topic: string): TaskName {
    return this.taskNames.get(topic) ?? topic;
  }

  /** The current task ends (control message, idle, caught up); returns its topic. */
  endCurrent(): string | undefined {
    const ended = this.currentTopic;
    if (ended === undefined) return undefined;
    this.phases.set(ended, 'ended');
    this.currentTopic = undefined;
    return ended;
  }

  /**
   * Begins the next task when there is none, or ends the current one when it is caught up (no
   * record queued or unread) while a later topic holds data. Only the first pending topic with
   * data is considered: later ones are not asked. Returns the topic that began, if one did.
   */
  async advance(probe: TaskTopicProbe): Promise<string | undefined> {
    const pending = this.order.filter((t) => this.phases.get(t) === 'pending');
    if (pending.length === 0) return undefined;
    if (this.currentTopic !== undefined && probe.queued(this.currentTopic) > 0) return undefined;
    let next: string | undefined;
    for (const topic of pending) {
      if (!this.withData.has(topic) && (await probe.hasUnread(topic))) this.withData.add(topic);
      if (this.withData.has(topic)) {
        next = topic;
        break;
      }
    }
    if (next === undefined || probe.stopped()) return undefined;
    if (this.currentTopic !== undefined) {
      if (probe.queued(this.currentTopic) > 0 || (await probe.hasUnread(this.currentTopic))) return undefined;
      this.log.info(`kafka: task topic ${this.currentTopic} is caught up and ${next} has data: ${next} begins`);
      this.endCurrent();
    }
    if (probe.stopped()) return undefined;
    this.begin(next);
    return next;
  }

  private begin(topic: string): void {
    this.phases.set(topic, 'current');
    this.currentTopic = topic;
    this.withData.delete(topic);
    this.log.info(`kafka: task topic ${topic} begins`);
  }
}
