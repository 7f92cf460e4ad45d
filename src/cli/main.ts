import { parseArgs } from 'node:util';
import { LifelongError } from '../core/errors';
import { benchCommand } from './bench-command';
import { produceCommand } from './produce';
import type { BackendName } from '../backend/backend';
import { replayGridCommand } from './replay-grid';
import { runCommand } from './run-command';
import { strategiesCommand } from './strategies-command';

const USAGE = `lifelong — online continual learning

Usage:
  lifelong run --pipeline FILE [--report FILE] [--config FILE] [--compare STRATEGY[,STRATEGY]]
               [--backend auto|tensorflow-gpu|tensorflow|wasm|cpu] [--metrics-port PORT] [--no-metrics]
               [--brokers HOST:PORT[,...]] [--checkpoint FILE]
  lifelong produce --dataset split-mnist|permuted-mnist|rotated-mnist --brokers HOST:PORT[,...]
               --topic-prefix PREFIX [--tasks N] [--samples-per-task N] [--rate R]
               [--unlabelled-fraction F] [--format json|binary] [--scenario SCENARIO] [--seed S]
               [--no-end-marker]
  lifelong replay-grid --checkpoint FILE --out FILE.png [--per-class N] [--seed S] [--backend NAME]
  lifelong bench --suite three-scenarios-split-mnist|three-scenarios-permuted-mnist|online|seed-figure
               [--repeats N] [--report FILE] [--out DIR] [--iterations N] [--test-samples N]
               [--strategies LIST] [--scenarios task,domain,class] [--resume] [--docs FILE] [--backend NAME]
  lifelong bench --compare DIR[,DIR...] [--out DIR] [--docs FILE]
  lifelong bench --render FILE[,FILE...] [--out DIR] [--docs FILE]
  lifelong strategies [--json]
  lifelong help

run       learns the pipeline's task stream; on a finite source exits 0 when the stream ends; on
          Kafka it runs until SIGINT/SIGTERM, then finishes the batch in hand, publishes, commits
          and exits 0 (non-zero when that fails within source.shutdownTimeoutMs).
          --report FILE    write the run's JSON report (accuracy matrix, transfer, forgetting, speed)
          --config FILE    daemon config (default config/default.json); LIFELONG_* variables override it
          --compare LIST   also run these strategies on the same stream, and print them side by side
          --backend NAME   override the config's tensor backend
          --metrics-port P override the metrics port (0 = any free port); --no-metrics serves none
          --brokers LIST   Kafka brokers replacing the pipeline's source.brokers (or LIFELONG_KAFKA_BROKERS)
          --checkpoint F   write the strategy's complete state to F when the run ends (replay-grid reads it)

produce   streams a built-in dataset into Kafka, one topic per task (PREFIX + task name, e.g.
          demo.split-mnist-0-1), in task order, each task followed by an end-of-task control message.
          --samples-per-task N     first N training images of each task (default 0 = all)
          --rate R                 messages per second (default 0 = unlimited)
          --unlabelled-fraction F  share of each task sent without a label: prediction requests
          --format json|binary     JSON {x, y, id} (default) or float32 little-endian, label in headers
          --scenario S             label as in this scenario (default class-incremental: the digit)
          --no-end-marker          no control message after each task

bench     runs a benchmark suite through the engine (docs/BENCHMARKS.md): the protocol of van de Ven
          & Tolias 2019, which revisits a task's images within the task (bench mode only; the
          daemon stays single-pass). Writes DIR/SUITE.json (after every run), SUITE.md and SVG plots.
          --repeats N      seeds 1..N (default 1); tables give mean ± std over seeds
          --out DIR        where the report, table and plots go (default bench-results)
          --iterations N   iterations per task instead of the protocol's (a quicker, lesser run)
          --test-samples N score a seeded sample of N test images per task instead of all (an estimate)
          --strategies L   only these rows (finetune,l2,ewc,online-ewc,progressive,den,dgr,dgr+distill,replay,joint)
          --resume         keep the runs already in the report and do the rest
          --docs FILE      also replace the suite's marked section of FILE (docs/BENCHMARKS.md)
          --compare DIRS   reports of several implementations (ours, bench/peers/) side by side,
                           suite by suite; writes OUT/comparison.md
          --render FILES   redraw table and plots from reports (several: merged)

strategies  lists the strategies (family, scenarios, what they store and need) and each one's
          strategy.params with default and doc; --json prints the descriptors.
`;

/** The CLI. Returns the process exit code; never calls process.exit (so tests can call it). */
export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'run': {
        const { values } = parseArgs({
          args: [...rest],
          options: {
            pipeline: { type: 'string' },
            report: { type: 'string' },
            config: { type: 'string' },
            compare: { type: 'string' },
            backend: { type: 'string' },
            'metrics-port': { type: 'string' },
            'no-metrics': { type: 'boolean', default: false },
            brokers: { type: 'string' },
            checkpoint: { type: 'string' },
          },
          strict: true,
        });
        if (!values.pipeline) throw new LifelongError('lifelong run needs --pipeline FILE');
        return await runCommand({
          pipeline: values.pipeline,
          ...(values.report ? { report: values.report } : {}),
          ...(values.config ? { config: values.config } : {}),
          compare: values.compare ? values.compare.split(',').map((s) => s.trim()).filter(Boolean) : [],
          ...(values.backend ? { backend: values.backend } : {}),
          ...(values['metrics-port'] !== undefined ? { metricsPort: values['metrics-port'] } : {}),
          metrics: !values['no-metrics'],
          ...(values.brokers ? { brokers: values.brokers } : {}),
          ...(values.checkpoint ? { checkpoint: values.checkpoint } : {}),
        });
      }
      case 'produce':
        return await produceCommand(rest);
      case 'bench':
        return await benchCommand(rest);
      case 'strategies':
        return strategiesCommand(rest);
      case 'replay-grid': {
        const { values } = parseArgs({
          args: [...rest],
          options: {
            checkpoint: { type: 'string' },
            out: { type: 'string' },
            'per-class': { type: 'string', default: '10' },
            seed: { type: 'string', default: '0' },
            backend: { type: 'string', default: 'auto' },
          },
          strict: true,
        });
        if (!values.checkpoint || !values.out) throw new LifelongError('lifelong replay-grid needs --checkpoint FILE and --out FILE.png');
        return await replayGridCommand({
          checkpoint: values.checkpoint,
          out: values.out,
          perClass: Number(values['per-class']),
          seed: Number(values.seed),
          backend: values.backend as BackendName,
        });
      }
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return command === undefined ? 2 : 0;
      default:
        process.stderr.write(`lifelong: unknown command "${command}"\n\n${USAGE}`);
        return 2;
    }
  } catch (error) {
    process.stderr.write(`lifelong: ${(error as Error).message}\n`);
    return 1;
  }
}
