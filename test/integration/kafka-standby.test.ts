import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { CheckpointStore } from '../../src/engine/checkpoint-store';
import { decodeRunState } from '../../src/engine/resume-state';
import { killAll, readTopics, scrape, sleep, startDaemon, stop, until, type Daemon } from '../helpers/daemon-process';
import { kafkaBrokers, uniqueTopicPrefix } from '../helpers/kafka';
import { sum } from '../helpers/kafka-daemon-run';
import { activeOn, leasedPipeline, logEvents, produceTasks, termsOf } from '../helpers/leased-daemons';

/**
 * Standby trainers and a directory of pipelines over several daemons, against a real broker (README
 * "Scaling"): the daemons are child processes of the real CLI. The lease and data groups use the
 * broker's shortest session timeout (6 s), so a killed holder's lease moves within about that.
 */

const SESSION_MS = 6000;

describe('standby trainers and pipelines spread over daemons (integration)', function () {
  this.timeout(300_000);
  let brokers: string[];
  let dir: string;
  before(async () => {
    brokers = await kafkaBrokers();
  });
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifelong-standby-'));
  });
  afterEach(() => {
    killAll();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('SIGKILL of the active trainer: the standby takes over from the newest checkpoint, learns the rest, nothing trained twice or lost', async () => {
    const TASKS = 3;
    const prefix = uniqueTopicPrefix('standby');
    const pipelineFile = path.join(dir, 'pipeline.json');
    fs.writeFileSync(pipelineFile, JSON.stringify(leasedPipeline(prefix, brokers, path.join(dir, 'checkpoints'), SESSION_MS)));
    const trainedLog = path.join(dir, 'trained.log');
    const producing = produceTasks(brokers, prefix, TASKS, 200, 60);
    producing.catch(() => undefined);
    const args = ['run', '--pipeline', pipelineFile];
    const env = { LIFELONG_TRAINED_LOG: trainedLog };

    const active = await startDaemon(args, env);
    await until('the first daemon training', async () => (sum(await scrape(active.port), 'lifelong_samples_total', { kind: 'trained' }) > 0 ? true : undefined), 60_000);
    const standby = await startDaemon(args, env);
    await until('the standby up, waiting', async () => ((await activeOn(standby))?.length === 0 ? true : undefined), 60_000);
    assert.deepEqual(await activeOn(active), [prefix], 'the standby took nothing from the active trainer');
    await sleep(1500);
    const killedAt = Date.now();
    active.child.kill('SIGKILL');
    assert.equal(await active.exited, null);
    const tookOver = await until('the standby training', async () => (sum(await scrape(standby.port), 'lifelong_samples_total', { kind: 'trained' }) > 0 ? Date.now() : undefined), 60_000).catch((error: Error) => {
      throw new Error(`${error.message}; its log:\n${standby.stderr().slice(-3000)}`);
    });
    const topics = await producing;
    await until('every task learned by the standby', async () => (sum(await scrape(standby.port), 'lifelong_tasks_learned') >= TASKS ? true : undefined), 120_000);
    assert.equal(await stop(standby, 'SIGTERM'), 0, standby.stderr().slice(-3000));
    process.stderr.write(`standby test: SIGKILL of the active to the standby's first trained sample ${((tookOver - killedAt) / 1000).toFixed(1)} s (session timeout ${SESSION_MS / 1000} s)\n`);

    const found = await new CheckpointStore(path.join(dir, 'checkpoints'), 3).newest();
    assert.ok(found?.checkpoint.run);
    const run = decodeRunState(found.checkpoint.run, found.file);
    assert.deepEqual(run.engine.tasks, topics.map((t) => t.topic), 'each task once, in order');
    assert.deepEqual((await new CheckpointStore(path.join(dir, 'checkpoints'), 3).fence())?.released, true, 'the standby released the directory on SIGTERM');

    // The durability test's accounting: what the model learned is exactly what was labelled.
    const inputs = await readTopics(brokers, topics.map((t) => t.topic), (got) => got.length >= topics.reduce((a, t) => a + t.samples, 0));
    const labelled = new Set<string>();
    for (const { topic, message } of inputs) {
      if (message.value === null || message.value.length === 0) continue; // control
      const body = JSON.parse(String(message.value)) as { id: string; y?: unknown };
      if (body.y !== undefined) labelled.add(`${topic} ${body.id}`);
    }
    const trained = fs.readFileSync(trainedLog, 'utf8').split('\n').filter(Boolean).map((line) => {
      const [where, id] = line.split(' ') as [string, string];
      return `${where.split('/')[0]} ${id}`;
    });
    assert.deepEqual(trained.filter((key, i) => trained.indexOf(key) !== i), [], 'no labelled sample trained twice');
    const heldOut = Object.entries(run.engine.probes).flatMap(([task, samples]) => samples.map((s) => `${task} ${s.id}`));
    const learned = new Set([...trained, ...heldOut]);
    assert.deepEqual([...labelled].filter((key) => !learned.has(key)), [], 'every labelled sample trained or held out');
    assert.equal(learned.size, labelled.size);
  });

  it('three pipelines over two daemons, a third joining and one leaving: always exactly one trainer per pipeline', async () => {
    const group = uniqueTopicPrefix('leases');
    const pipelinesDir = path.join(dir, 'pipelines');
    fs.mkdirSync(pipelinesDir);
    const names = ['a', 'b', 'c'].map((n) => uniqueTopicPrefix(`dir-${n}`));
    for (const name of names) {
      fs.writeFileSync(path.join(pipelinesDir, `${name}.json`), JSON.stringify(leasedPipeline(name, brokers, path.join(dir, 'checkpoints', name), SESSION_MS)));
      await produceTasks(brokers, name, 1, 100, 0);
    }
    const args = ['run', '--pipelines', pipelinesDir, '--lease-group', group];
    // JSON logs: each daemon's terms of each pipeline, with the times they begin and end.
    const env = { LIFELONG_LOG_FORMAT: 'json' };
    const daemons: Daemon[] = [];
    const running = () => daemons.filter((d) => d.child.exitCode === null && d.child.signalCode === null);
    const kafka = new Kafka({ brokers, clientId: `${group}-observer`, logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();

    // The broker's view, every 100 ms: a pipeline's data group never has two members.
    const violations: string[] = [];
    let observing = true;
    const observer = (async () => {
      while (observing) {
        const { groups } = await admin.describeGroups(names.map((n) => `${n}-group`));
        for (const g of groups) if (g.members.length > 1) violations.push(`${g.groupId} has ${g.members.length} members`);
        await sleep(100);
      }
    })();
    const spread = async (what: string, count: number) =>
      until(what, async () => {
        const actives = await Promise.all(running().map(activeOn));
        const held = actives.map((a) => a?.length ?? -1).sort();
        const all = new Set(actives.flat().filter((n): n is string => n !== undefined));
        return held.length === count && all.size === names.length && held[held.length - 1]! - held[0]! <= 1 ? held : undefined;
      }, 90_000);
    let joinedAt = 0;
    let leftAt = 0;
    try {
      daemons.push(await startDaemon(args, env), await startDaemon(args, env));
      assert.deepEqual(await spread('three pipelines over two daemons', 2), [1, 2]);
      daemons.push(await startDaemon(args, env));
      assert.deepEqual(await spread('a third daemon taking its share', 3), [1, 1, 1]);
      const leaver = daemons[0] as Daemon;
      leftAt = Date.now();
      assert.equal(await stop(leaver, 'SIGTERM'), 0, leaver.stderr().slice(-3000));
      assert.deepEqual(await spread("the leaver's pipelines handed over", 2), [1, 2]);
      joinedAt = Date.parse(logEvents(daemons[2] as Daemon).find((e) => /^waiting for the leases/.test(e.message))?.time ?? '');
      for (const daemon of running()) assert.equal(await stop(daemon, 'SIGTERM'), 0, daemon.stderr().slice(-3000));
    } finally {
      observing = false;
      await observer.catch(() => undefined);
      await admin.disconnect();
    }
    assert.deepEqual(violations, []);

    // Every pipeline's terms, over all daemons: one after the other, the gaps under a session timeout.
    const terms = termsOf(daemons);
    const handovers: string[] = [];
    for (const name of names) {
      const mine = terms.filter((t) => t.pipeline === name).sort((a, b) => a.begins - b.begins);
      for (let i = 1; i < mine.length; i++) {
        const [before, after] = [mine[i - 1]!, mine[i]!];
        assert.ok(after.begins >= before.ends, `${name}: daemon ${after.daemon} began at ${after.begins} before daemon ${before.daemon} stopped at ${before.ends}`);
        assert.ok(after.begins - before.ends <= SESSION_MS, `${name} went ${after.begins - before.ends} ms without a trainer`);
        handovers.push(`${name.split('-')[2]} ${after.begins - before.ends} ms`);
      }
    }
    const onJoin = Math.min(...terms.filter((t) => t.daemon === 2).map((t) => t.begins)) - joinedAt;
    const onLeave = Math.max(...terms.filter((t) => t.daemon !== 0 && t.begins > leftAt).map((t) => t.begins)) - leftAt;
    process.stderr.write(`directory test: a third daemon's first pipeline ${onJoin} ms after it joined; SIGTERM of a daemon to its pipelines training elsewhere ${onLeave} ms; handovers (old trainer stopped to new one training): ${handovers.join(', ')}\n`);
  });
});
