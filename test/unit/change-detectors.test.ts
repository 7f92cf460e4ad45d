import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InvariantError } from '../../src/core/errors';
import { Adwin } from '../../src/metrics/adwin';
import type { ChangeDetector } from '../../src/metrics/change-detector';
import { PageHinkley } from '../../src/metrics/page-hinkley';
import { abruptStream, CHANGE_AT, detections, DRIFT_SEEDS, gradualStream, stationaryStream, STREAM_LENGTH, type SyntheticStream } from '../helpers/drift-streams';

const REPO = path.resolve(__dirname, '../../..');

/**
 * River 0.26.1's docstring example of ADWIN and PageHinkley, with the positions River prints.
 * Written by:
 *   python -c 'import json, random; from river import drift; rng = random.Random(12345); ...'
 * (the stream is rng.choices([0, 1], k=1000) + rng.choices(range(4, 8), k=1000); see the file's "source").
 */
const riverExample = JSON.parse(fs.readFileSync(path.join(REPO, 'test/fixtures/drift/river-docstring-stream.json'), 'utf8')) as { stream: number[]; adwin: number[]; pageHinkley: number[] };

interface Measured {
  /** Seeds whose stream was detected at or after the change. */
  readonly detected: number;
  /** Detections before the change, over every seed. */
  readonly early: number;
  readonly meanDelay: number;
  readonly maxDelay: number;
}

function measure(streams: readonly SyntheticStream[], make: () => ChangeDetector): Measured {
  let detected = 0;
  let early = 0;
  const delays: number[] = [];
  for (const stream of streams) {
    const detector = make();
    const at = detections(stream.values, (x) => detector.update(x));
    early += at.filter((i) => i < CHANGE_AT).length;
    const first = at.find((i) => i >= CHANGE_AT);
    if (first === undefined) continue;
    detected += 1;
    delays.push(first - CHANGE_AT);
  }
  return { detected, early, meanDelay: delays.reduce((a, b) => a + b, 0) / Math.max(1, delays.length), maxDelay: Math.max(...delays) };
}

function falseAlarms(make: () => ChangeDetector): number {
  return DRIFT_SEEDS.map(stationaryStream).reduce((n, stream) => {
    const detector = make();
    return n + detections(stream.values, (x) => detector.update(x)).length;
  }, 0);
}

describe('change detectors on the prequential error (issue 15)', () => {
  describe('River\'s documented examples', () => {
    it('ADWIN detects the change at index 1023, as River prints', () => {
      const adwin = new Adwin();
      assert.deepEqual(detections(riverExample.stream, (x) => adwin.update(x)), riverExample.adwin);
      assert.deepEqual(riverExample.adwin, [1023]);
    });

    it('Page-Hinkley detects the change at index 1006, as River prints', () => {
      const ph = new PageHinkley();
      assert.deepEqual(detections(riverExample.stream, (x) => ph.update(x)), riverExample.pageHinkley);
      assert.deepEqual(riverExample.pageHinkley, [1006]);
    });
  });

  describe(`synthetic Bernoulli error streams, ${DRIFT_SEEDS.length} seeds of ${STREAM_LENGTH} values, change at ${CHANGE_AT}`, () => {
    const detectors: [string, () => ChangeDetector, { abrupt: number; gradual: number }][] = [
      ['ADWIN (River defaults)', () => new Adwin(), { abrupt: 150, gradual: 500 }],
      ["Page-Hinkley (River defaults, mode 'up')", () => new PageHinkley({ mode: 'up' }), { abrupt: 250, gradual: 500 }],
    ];
    for (const [name, make, bound] of detectors) {
      it(`${name}: fires on every abrupt change (0.1 -> 0.4), never before it`, () => {
        const m = measure(DRIFT_SEEDS.map(abruptStream), make);
        console.log(`      ${name} abrupt: ${m.detected}/${DRIFT_SEEDS.length} detected, delay mean ${m.meanDelay.toFixed(1)} max ${m.maxDelay}, ${m.early} early`);
        assert.equal(m.detected, DRIFT_SEEDS.length);
        assert.equal(m.early, 0);
        assert.ok(m.maxDelay <= bound.abrupt, `delay ${m.maxDelay}`);
      });

      it(`${name}: fires on every gradual change (0.1 -> 0.4 over 500 values), never before it`, () => {
        const m = measure(DRIFT_SEEDS.map(gradualStream), make);
        console.log(`      ${name} gradual: ${m.detected}/${DRIFT_SEEDS.length} detected, delay mean ${m.meanDelay.toFixed(1)} max ${m.maxDelay}, ${m.early} early`);
        assert.equal(m.detected, DRIFT_SEEDS.length);
        assert.equal(m.early, 0);
        assert.ok(m.maxDelay <= bound.gradual, `delay ${m.maxDelay}`);
      });

      it(`${name}: stays silent on stationary streams (error 0.2): false-alarm rate measured`, () => {
        const alarms = falseAlarms(make);
        const values = DRIFT_SEEDS.length * STREAM_LENGTH;
        console.log(`      ${name} stationary: ${alarms} false alarms in ${values} values`);
        assert.ok(alarms / values <= 1e-4, `${alarms} false alarms in ${values} values`);
      });
    }

    it('a more sensitive Page-Hinkley (threshold 10) is faster and raises false alarms: the trade-off is measured', () => {
      const make = () => new PageHinkley({ mode: 'up', threshold: 10 });
      const m = measure(DRIFT_SEEDS.map(abruptStream), make);
      const alarms = falseAlarms(make);
      console.log(`      Page-Hinkley threshold 10: abrupt delay mean ${m.meanDelay.toFixed(1)}, ${m.early} early; stationary ${alarms} false alarms in ${DRIFT_SEEDS.length * STREAM_LENGTH} values`);
      assert.ok(m.meanDelay < measure(DRIFT_SEEDS.map(abruptStream), () => new PageHinkley({ mode: 'up' })).meanDelay);
      assert.ok(alarms > 0);
    });
  });

  describe('semantics', () => {
    it('ADWIN checks for a cut every `clock` values, starts over after a detection, and keeps its estimate as the window mean', () => {
      // River 0.26.1 on the same step from 0 to 1: [212] with clock=1, [223] with the default clock (32).
      const step = [...Array<number>(200).fill(0), ...Array<number>(200).fill(1)];
      const everyValue = new Adwin({ clock: 1 });
      assert.deepEqual(detections(step, (x) => everyValue.update(x)), [212]);
      const every32 = new Adwin();
      assert.deepEqual(detections(step, (x) => every32.update(x)), [223]);
      const restarted = new Adwin();
      step.slice(0, 224).forEach((x) => restarted.update(x));
      assert.ok(restarted.driftDetected);
      assert.equal(restarted.update(1), false);
      assert.equal(restarted.windowWidth, 1, 'the update after a detection starts over');
      const steady = new Adwin();
      for (let i = 0; i < 100; i++) steady.update(i % 4 === 0 ? 1 : 0);
      assert.equal(steady.estimate, 0.25);
      assert.equal(steady.windowWidth, 100);
    });

    it("Page-Hinkley's mode picks the direction: 'up' ignores a fall, 'down' ignores a rise", () => {
      const rise = [...Array<number>(100).fill(0), ...Array<number>(200).fill(1)];
      const fall = [...Array<number>(100).fill(1), ...Array<number>(200).fill(0)];
      const run = (mode: 'up' | 'down' | 'both', values: number[]) => {
        const ph = new PageHinkley({ mode, threshold: 10 });
        return detections(values, (x) => ph.update(x)).length;
      };
      assert.ok(run('up', rise) > 0);
      assert.equal(run('up', fall), 0);
      assert.ok(run('down', fall) > 0);
      assert.equal(run('down', rise), 0);
      assert.ok(run('both', rise) > 0 && run('both', fall) > 0);
    });

    it('refuses parameters outside their domain', () => {
      assert.throws(() => new Adwin({ delta: 1 }), InvariantError);
      assert.throws(() => new Adwin({ clock: 0 }), InvariantError);
      assert.throws(() => new Adwin({ minWindowLength: 1.5 }), InvariantError);
      assert.throws(() => new PageHinkley({ alpha: 0 }), InvariantError);
      assert.throws(() => new PageHinkley({ mode: 'sideways' as never }), InvariantError);
    });
  });
});
