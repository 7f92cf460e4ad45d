/**
 * Peer check of the drift detectors (issue 15): the test streams of test/unit/change-detectors.test.ts
 * (synthetic Bernoulli error streams, abrupt, gradual and stationary, 20 seeds each, and River's
 * own docstring example) through lifelong's ADWIN and Page-Hinkley and through River's
 * (bench/peers/river_drift.py), detection positions side by side. Not part of npm test.
 *
 *   python3 -m venv ~/.cache/lifelong/river-venv && ~/.cache/lifelong/river-venv/bin/pip install river==0.26.1
 *   npm run build && node dist/bench/peers/drift-peers.js
 *
 * LIFELONG_RIVER_PYTHON overrides the interpreter. Writes bench/peers/results/drift-peers.json and
 * prints a Markdown table (docs/BENCHMARKS.md "Drift detectors against River"); exits 1 when a
 * position differs.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Adwin, type AdwinOptions } from '../../src/metrics/adwin';
import type { ChangeDetector } from '../../src/metrics/change-detector';
import { PageHinkley, type PageHinkleyOptions } from '../../src/metrics/page-hinkley';
import { CHANGE_AT, detections, syntheticStreams, type SyntheticStream } from '../../test/helpers/drift-streams';

const REPO = path.resolve(__dirname, '../../..');

type PeerConfig =
  | { readonly name: string; readonly detector: 'adwin'; readonly params: AdwinOptions }
  | { readonly name: string; readonly detector: 'page-hinkley'; readonly params: PageHinkleyOptions };

const CONFIGS: readonly PeerConfig[] = [
  { name: 'ADWIN defaults', detector: 'adwin', params: {} },
  { name: 'ADWIN clock 1', detector: 'adwin', params: { clock: 1 } },
  { name: 'ADWIN delta 0.05', detector: 'adwin', params: { delta: 0.05 } },
  { name: 'Page-Hinkley defaults (both)', detector: 'page-hinkley', params: {} },
  { name: "Page-Hinkley mode 'up'", detector: 'page-hinkley', params: { mode: 'up' } },
  { name: "Page-Hinkley mode 'up', threshold 10", detector: 'page-hinkley', params: { mode: 'up', threshold: 10 } },
];

function make(config: PeerConfig): ChangeDetector {
  return config.detector === 'adwin' ? new Adwin(config.params) : new PageHinkley(config.params);
}

function main(): void {
  const example = JSON.parse(fs.readFileSync(path.join(REPO, 'test/fixtures/drift/river-docstring-stream.json'), 'utf8')) as { stream: number[] };
  const streams: SyntheticStream[] = [{ name: 'river-docstring', seed: 12345, changeAt: 1000, values: example.stream }, ...syntheticStreams()];
  const python = process.env.LIFELONG_RIVER_PYTHON ?? path.join(os.homedir(), '.cache/lifelong/river-venv/bin/python');
  const t0 = performance.now();
  const river = JSON.parse(
    execFileSync(python, [path.join(REPO, 'bench/peers/river_drift.py')], { input: JSON.stringify({ configs: CONFIGS, streams }), maxBuffer: 1 << 28 }).toString('utf8'),
  ) as { river: string; positions: Record<string, number[][]> };
  const riverSeconds = (performance.now() - t0) / 1000;

  const rows: string[] = [];
  const results: Record<string, unknown>[] = [];
  let differences = 0;
  for (const config of CONFIGS) {
    const theirs = river.positions[config.name] as number[][];
    const ours = streams.map((stream) => {
      const detector = make(config);
      return detections(stream.values, (x) => detector.update(x));
    });
    const same = ours.filter((at, i) => JSON.stringify(at) === JSON.stringify(theirs[i])).length;
    differences += streams.length - same;
    const summary = (kind: string, positions: number[][]) => {
      const picked = streams.map((s, i) => [s, positions[i] as number[]] as const).filter(([s]) => s.name === kind);
      if (kind === 'stationary') return `${picked.reduce((n, [, at]) => n + at.length, 0)} false alarms`;
      const first = picked.map(([s, at]) => at.find((i) => i >= (s.changeAt as number)));
      const delays = first.filter((f): f is number => f !== undefined).map((f) => f - CHANGE_AT);
      const early = picked.reduce((n, [s, at]) => n + at.filter((i) => i < (s.changeAt as number)).length, 0);
      return `${delays.length}/${picked.length}, delay ${(delays.reduce((a, b) => a + b, 0) / Math.max(1, delays.length)).toFixed(1)}, ${early} early`;
    };
    const docstring = (positions: number[][]) => (positions[0] as number[]).join(' ') || '-';
    rows.push(`| ${config.name} | ${docstring(ours)} / ${docstring(theirs)} | ${summary('abrupt', ours)} / ${summary('abrupt', theirs)} | ${summary('gradual', ours)} / ${summary('gradual', theirs)} | ${summary('stationary', ours)} / ${summary('stationary', theirs)} | ${same}/${streams.length} |`);
    results.push({ config, identicalStreams: same, streams: streams.length, lifelong: ours, river: theirs });
  }
  const header = [
    `River ${river.river} (${riverSeconds.toFixed(1)} s), ${streams.length} streams: River's docstring example, then 20 seeds each of abrupt, gradual and stationary (change at ${CHANGE_AT}); each cell lifelong / River.`,
    '',
    '| detector | docstring example | abrupt: detected, mean delay, early | gradual: detected, mean delay, early | stationary (60000 values) | identical positions |',
    '| --- | --- | --- | --- | --- | --- |',
  ];
  console.log([...header, ...rows].join('\n'));
  const out = path.join(REPO, 'bench/peers/results/drift-peers.json');
  fs.writeFileSync(out, `${JSON.stringify({ river: river.river, results })}\n`);
  console.log(`\nwritten ${path.relative(REPO, out)}; ${differences === 0 ? 'every position identical' : `${differences} stream(s) differ`}`);
  if (differences > 0) process.exitCode = 1;
}

main();
