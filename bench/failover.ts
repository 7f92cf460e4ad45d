/**
 * Standby trainers and pipelines spread over daemons, against a real broker (README "Scaling"):
 *
 * 1. Failover: an active trainer and its standby (`lifelong run --pipeline F`, `lease.enabled`) on a
 *    stream produced at a steady rate; the active one is SIGKILLed and the standby's first trained
 *    sample is timed (its /metrics, polled every 100 ms), per lease session timeout.
 * 2. Rebalance: three pipelines (`lifelong run --pipelines DIR`) on two daemons; a third joins, then
 *    one leaves with SIGTERM. Timed from the daemons' JSON logs: from the joiner's "waiting for the
 *    leases" to its first term, and from the SIGTERM to the last handed-over pipeline's new term.
 *
 *   npm run build && node dist/bench/failover.js [--brokers HOST:PORT] [--session-timeouts 6000,10000]
 *     [--repeats 3] [--parts failover,rebalance]
 *
 * Prints markdown tables on stdout; progress on stderr.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { killAll, scrape, sleep, startDaemon, stop, until, type Daemon } from '../test/helpers/daemon-process';
import { kafkaBrokers, stopKafka, uniqueTopicPrefix } from '../test/helpers/kafka';
import { sum } from '../test/helpers/kafka-daemon-run';
import { activeOn, leasedPipeline, logEvents, produceTasks, termsOf } from '../test/helpers/leased-daemons';

const { values } = parseArgs({
  options: {
    brokers: { type: 'string' },
    'session-timeouts': { type: 'string', default: '6000,10000' },
    repeats: { type: 'string', default: '3' },
    parts: { type: 'string', default: 'failover,rebalance' },
  },
});
const sessionTimeouts = (values['session-timeouts'] as string).split(',').map(Number);
const repeats = Number(values.repeats);
const parts = new Set((values.parts as string).split(','));
const progress = (m: string) => process.stderr.write(`${m}\n`);

function stats(ms: readonly number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  const median = s[Math.floor(s.length / 2)] as number;
  return `${(median / 1000).toFixed(1)} s (${((s[0] as number) / 1000).toFixed(1)} to ${((s[s.length - 1] as number) / 1000).toFixed(1)})`;
}

/** SIGKILL of the active trainer to the standby's term (its lease claimed) and to its first trained sample, in ms. */
async function failover(brokers: string[], sessionMs: number, dir: string): Promise<[number, number]> {
  const name = uniqueTopicPrefix('failover');
  const file = path.join(dir, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify(leasedPipeline(name, brokers, path.join(dir, name), sessionMs)));
  // Long enough that samples still flow when the standby takes over.
  const producing = produceTasks(brokers, name, 1, 2000, 40);
  producing.catch(() => undefined);
  try {
    const active = await startDaemon(['run', '--pipeline', file]);
    await until('the active trainer training', async () => (sum(await scrape(active.port), 'lifelong_samples_total', { kind: 'trained' }) > 0 ? true : undefined), 120_000);
    const standby = await startDaemon(['run', '--pipeline', file], { LIFELONG_LOG_FORMAT: 'json' });
    await until('the standby waiting', async () => ((await activeOn(standby))?.length === 0 ? true : undefined), 120_000);
    await sleep(2000);
    const killedAt = Date.now();
    active.child.kill('SIGKILL');
    const tookOver = await until('the standby training', async () => (sum(await scrape(standby.port), 'lifelong_samples_total', { kind: 'trained' }) > 0 ? Date.now() : undefined), 120_000);
    await stop(standby, 'SIGTERM');
    const [term] = termsOf([standby]);
    return [(term?.begins ?? NaN) - killedAt, tookOver - killedAt];
  } finally {
    killAll();
    await producing.catch(() => undefined);
  }
}

/** Three pipelines on two daemons; a third joins, then the first leaves: [join, leave] in ms. */
async function rebalance(brokers: string[], dir: string): Promise<[number, number]> {
  const group = uniqueTopicPrefix('bench-leases');
  const pipelinesDir = path.join(dir, group);
  fs.mkdirSync(pipelinesDir);
  for (const n of ['a', 'b', 'c']) {
    const name = uniqueTopicPrefix(`bench-${n}`);
    fs.writeFileSync(path.join(pipelinesDir, `${name}.json`), JSON.stringify(leasedPipeline(name, brokers, path.join(dir, name), 6000)));
    await produceTasks(brokers, name, 1, 100, 0);
  }
  const args = ['run', '--pipelines', pipelinesDir, '--lease-group', group];
  const env = { LIFELONG_LOG_FORMAT: 'json' };
  const daemons: Daemon[] = [];
  const spread = (count: number) =>
    until(`${count} daemons sharing the pipelines`, async () => {
      const actives = await Promise.all(daemons.filter((d) => d.child.exitCode === null).map(activeOn));
      const held = actives.map((a) => a?.length ?? -1);
      return held.length === count && held.reduce((a, b) => a + b, 0) === 3 && Math.max(...held) - Math.min(...held) <= 1 ? true : undefined;
    }, 120_000);
  try {
    daemons.push(await startDaemon(args, env), await startDaemon(args, env));
    await spread(2);
    daemons.push(await startDaemon(args, env));
    await spread(3);
    const leftAt = Date.now();
    await stop(daemons[0] as Daemon, 'SIGTERM');
    await spread(2);
    for (const d of daemons.slice(1)) await stop(d, 'SIGTERM');
    const terms = termsOf(daemons);
    const joinedAt = Date.parse(logEvents(daemons[2] as Daemon).find((e) => /^waiting for the leases/.test(e.message))?.time ?? '');
    const onJoin = Math.min(...terms.filter((t) => t.daemon === 2).map((t) => t.begins)) - joinedAt;
    const onLeave = Math.max(...terms.filter((t) => t.daemon !== 0 && t.begins > leftAt).map((t) => t.begins)) - leftAt;
    return [onJoin, onLeave];
  } finally {
    killAll();
  }
}

async function main(): Promise<void> {
  const brokers = values.brokers ? values.brokers.split(',') : await kafkaBrokers();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifelong-failover-'));
  try {
    process.stdout.write(`machine: ${os.cpus().length} cores, ${os.cpus()[0]?.model ?? '?'}; load average at start ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}\n\n`);
    if (parts.has('failover')) {
      process.stdout.write("| lease session timeout | SIGKILL to the standby's lease (claimed), median (min to max) | SIGKILL to its first trained sample | runs |\n|---|---|---|---|\n");
      for (const sessionMs of sessionTimeouts) {
        const [leased, trained]: number[][] = [[], []];
        for (let r = 0; r < repeats; r++) {
          const [lease, train] = await failover(brokers, sessionMs, dir);
          leased.push(lease);
          trained.push(train);
          progress(`failover, session ${sessionMs} ms: lease ${lease} ms, first trained sample ${train} ms`);
        }
        process.stdout.write(`| ${sessionMs / 1000} s | ${stats(leased)} | ${stats(trained)} | ${repeats} |\n`);
      }
    }
    if (parts.has('rebalance')) {
      const joins: number[] = [];
      const leaves: number[] = [];
      for (let r = 0; r < repeats; r++) {
        const [join, leave] = await rebalance(brokers, dir);
        joins.push(join);
        leaves.push(leave);
        progress(`rebalance: join ${join} ms, leave ${leave} ms`);
      }
      process.stdout.write(`\n| directory mode, 3 pipelines | median (min to max) | runs |\n|---|---|---|\n`);
      process.stdout.write(`| a daemon joins 2 others: its first pipeline trains | ${stats(joins)} | ${repeats} |\n`);
      process.stdout.write(`| SIGTERM of one of 3 daemons: its pipeline trains elsewhere | ${stats(leaves)} | ${repeats} |\n`);
    }
    process.stdout.write(`\nload average at the end ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}\n`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    await stopKafka();
  }
}

main().catch((error: Error) => {
  process.stderr.write(`${error.stack ?? error.message}\n`);
  killAll();
  process.exit(1);
});
