import assert from 'node:assert/strict';
import { ConfigError } from '../../src/core/errors';
import type { Sample, Scenario } from '../../src/core/types';
import { SCENARIOS } from '../../src/core/types';
import { loadMnist, mnistPixels, mnistRawPixels } from '../../src/data/mnist';
import { rotateImage } from '../../src/data/rotate';
import { defineTaskStream, splitPairs } from '../../src/data/task-streams';
import type { EmbeddedStreamSpec } from '../../src/data/task-streams';
import { createEmbeddedSource } from '../../src/sources/embedded';
import type { SourceContext } from '../../src/operators/source';

const context: SourceContext = { reject: () => undefined, log: () => undefined };

async function collect(spec: EmbeddedStreamSpec, limit = Number.POSITIVE_INFINITY): Promise<Sample[]> {
  const source = createEmbeddedSource(spec);
  const iterator = source.open(context);
  const samples: Sample[] = [];
  while (samples.length < limit) {
    const step = await iterator.next();
    if (step.done) break;
    samples.push(step.value);
  }
  await source.close();
  return samples;
}

/** The MNIST split and image index a sample id ("train-123", "test-45") refers to. */
function imageOf(sample: Sample): { digit: number; raw: Uint8Array; pixels: Float32Array } {
  const match = /^(train|test)-(\d+)$/.exec(sample.id ?? '');
  assert.ok(match, `sample id ${sample.id}`);
  const mnist = loadMnist();
  const split = match[1] === 'train' ? mnist.train : mnist.test;
  const index = Number(match[2]);
  return { digit: split.labels[index]!, raw: mnistRawPixels(split, index), pixels: mnistPixels(split, index) };
}

function countBy<T>(items: readonly T[], key: (item: T) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return counts;
}

const PAIRS = [
  [0, 1],
  [2, 3],
  [4, 5],
  [6, 7],
  [8, 9],
];

describe('embedded split-MNIST', () => {
  it('streams every training image once, task after task, class-incremental labels = digits', async () => {
    const samples = await collect({ dataset: 'split-mnist', seed: 1, scenario: 'class-incremental' });
    const { train } = loadMnist();
    assert.equal(samples.length, train.count, 'all five pairs cover every training image');
    assert.equal(new Set(samples.map((sample) => sample.id)).size, samples.length, 'ids are unique');

    const taskOrder = samples.map((sample) => sample.task).filter((task, i, all) => i === 0 || all[i - 1] !== task);
    assert.deepEqual(taskOrder, ['split-mnist-0-1', 'split-mnist-2-3', 'split-mnist-4-5', 'split-mnist-6-7', 'split-mnist-8-9']);

    const digitCounts = new Array<number>(10).fill(0);
    for (const label of train.labels) digitCounts[label]! += 1;
    const perTask = countBy(samples, (sample) => sample.task);
    PAIRS.forEach(([a, b]) => assert.equal(perTask.get(`split-mnist-${a}-${b}`), digitCounts[a!]! + digitCounts[b!]!));

    for (const sample of samples.filter((_, i) => i % 97 === 0)) {
      const { digit, pixels } = imageOf(sample);
      assert.equal(sample.y, String(digit));
      assert.match(sample.task, new RegExp(`-${digit}(-|$)`), `digit ${digit} belongs to ${sample.task}`);
      assert.deepEqual(sample.x, pixels);
    }
  });

  for (const scenario of ['task-incremental', 'domain-incremental'] as Scenario[]) {
    it(`labels "0"/"1" for the first/second digit of the pair (${scenario})`, async () => {
      const samples = await collect({ dataset: 'split-mnist', seed: 2, scenario, samplesPerTask: 200 });
      assert.equal(samples.length, 5 * 200);
      for (const sample of samples) {
        const pair = PAIRS.find(([a, b]) => sample.task === `split-mnist-${a}-${b}`)!;
        const { digit } = imageOf(sample);
        assert.ok(pair.includes(digit), `digit ${digit} in ${sample.task}`);
        assert.equal(sample.y, String(pair.indexOf(digit)));
      }
      assert.deepEqual(new Set(samples.map((sample) => sample.y)), new Set(['0', '1']));
    });
  }

  it('honours tasks and samplesPerTask, and is shuffled within a task', async () => {
    const samples = await collect({ dataset: 'split-mnist', tasks: 2, samplesPerTask: 300, seed: 3, scenario: 'class-incremental' });
    assert.deepEqual([...countBy(samples, (sample) => sample.task)], [
      ['split-mnist-0-1', 300],
      ['split-mnist-2-3', 300],
    ]);
    const indices = samples.slice(0, 300).map((sample) => Number(sample.id!.slice('train-'.length)));
    const ascending = indices.every((index, i) => i === 0 || index > indices[i - 1]!);
    assert.equal(ascending, false, 'seeded shuffle, not file order');
    const digits = countBy(samples.slice(0, 300), (sample) => sample.y!);
    assert.ok(digits.get('0')! > 100 && digits.get('1')! > 100, 'both digits mixed in the first task');
  });

  it('reports tasks, description and output units per scenario', () => {
    const source = createEmbeddedSource({ dataset: 'split-mnist', seed: 1, scenario: 'class-incremental' });
    assert.deepEqual(source.knownTasks(), ['split-mnist-0-1', 'split-mnist-2-3', 'split-mnist-4-5', 'split-mnist-6-7', 'split-mnist-8-9']);
    assert.equal(source.description, 'split-mnist (5 tasks, class-incremental)');
    assert.equal(source.inputSize, 784);
    const units = SCENARIOS.map((scenario) => createEmbeddedSource({ dataset: 'split-mnist', seed: 1, scenario }).outputUnits);
    assert.deepEqual(units, [2, 2, 10]);
  });

  it('pairs the digits at random per seed with pairs: random, and keeps (0,1)...(8,9) by default', () => {
    assert.deepEqual(splitPairs('fixed', 7), [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]);
    const drawn = splitPairs('random', 7);
    assert.deepEqual(drawn.flat().sort(), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'every digit once');
    assert.deepEqual(splitPairs('random', 7), drawn, 'the same seed, the same pairs');
    assert.notDeepEqual(splitPairs('random', 8), drawn, 'another seed, other pairs');
    const stream = defineTaskStream({ dataset: 'split-mnist', seed: 7, scenario: 'task-incremental', pairs: 'random' });
    assert.deepEqual(stream.tasks.map((t) => t.digits), drawn);
    const [first, second] = drawn[0]!;
    assert.deepEqual([stream.tasks[0]!.label(first), stream.tasks[0]!.label(second)], ['0', '1']);
    const fixed = defineTaskStream({ dataset: 'split-mnist', seed: 7, scenario: 'task-incremental' });
    assert.deepEqual(stream.tasks.map((t) => t.trainSeed), fixed.tasks.map((t) => t.trainSeed), 'task seeds do not depend on the pairing');
    assert.throws(() => defineTaskStream({ dataset: 'permuted-mnist', seed: 1, scenario: 'task-incremental', pairs: 'random' }), (e: unknown) => e instanceof ConfigError && e.key === 'pairs');
  });
});

describe('embedded permuted-MNIST', () => {
  it('task 1 is plain MNIST, task 2 a permutation of the same pixels', async () => {
    const samples = await collect({ dataset: 'permuted-mnist', tasks: 3, samplesPerTask: 50, seed: 4, scenario: 'domain-incremental' });
    assert.deepEqual([...countBy(samples, (sample) => sample.task).keys()], ['permuted-mnist-1', 'permuted-mnist-2', 'permuted-mnist-3']);
    for (const sample of samples.slice(0, 50)) assert.deepEqual(sample.x, imageOf(sample).pixels);
    for (const sample of samples.slice(50, 100)) {
      const { pixels, digit } = imageOf(sample);
      assert.equal(sample.y, String(digit));
      assert.deepEqual([...sample.x].sort(), [...pixels].sort(), 'same pixel values');
    }
    const differing = samples.slice(50, 100).filter((sample) => sample.x.some((value, i) => value !== imageOf(sample).pixels[i]));
    assert.equal(differing.length, 50, 'every task-2 image is permuted');
  });

  it('the same seed gives the same stream, another seed another permutation', async () => {
    const spec: EmbeddedStreamSpec = { dataset: 'permuted-mnist', tasks: 2, samplesPerTask: 20, seed: 5, scenario: 'task-incremental' };
    const first = await collect(spec);
    const again = await collect(spec);
    assert.deepEqual(again.map((s) => [s.task, s.id, s.y]), first.map((s) => [s.task, s.id, s.y]));
    again.forEach((sample, i) => assert.deepEqual(sample.x, first[i]!.x));

    const raw = mnistRawPixels(loadMnist().train, 0);
    const task2 = (seed: number): Float32Array => defineTaskStream({ ...spec, seed }).tasks[1]!.transform(raw);
    assert.deepEqual(task2(5), task2(5));
    assert.notDeepEqual(task2(5), task2(6));
    const other = await collect({ ...spec, seed: 6 });
    assert.notDeepEqual(other.map((s) => s.id), first.map((s) => s.id), 'the training order depends on the seed');
  });

  it('labels per scenario: the digit, or 10 * task + digit in class-incremental', async () => {
    const samples = await collect({ dataset: 'permuted-mnist', tasks: 3, samplesPerTask: 40, seed: 7, scenario: 'class-incremental' });
    samples.forEach((sample, i) => {
      const task = Math.floor(i / 40);
      assert.equal(sample.task, `permuted-mnist-${task + 1}`);
      assert.equal(sample.y, String(10 * task + imageOf(sample).digit));
    });
    const units = SCENARIOS.map((scenario) => createEmbeddedSource({ dataset: 'permuted-mnist', seed: 1, scenario }).outputUnits);
    assert.deepEqual(units, [10, 10, 100]);
    assert.equal(createEmbeddedSource({ dataset: 'permuted-mnist', seed: 1, scenario: 'task-incremental' }).knownTasks().length, 10);
  });
});

describe('rotateImage', () => {
  it('rotates counter-clockwise: a single pixel right of centre moves above it at 90 degrees', () => {
    const image = new Float32Array(784);
    image[13 * 28 + 20] = 1; // row 13, column 20: 6.5 right of and 0.5 above the centre (13.5, 13.5)
    const rotated = rotateImage(image, 90);
    // Counter-clockwise by 90 degrees: 6.5 above and 0.5 left of the centre, i.e. row 7, column 13.
    assert.equal(rotated[7 * 28 + 13], 1);
    assert.equal(rotated.reduce((sum, value) => sum + value, 0), 1);
  });

  it('is the identity at 0 and after four quarter turns, and interpolates in between', () => {
    const image = mnistPixels(loadMnist().train, 3);
    assert.deepEqual(rotateImage(image, 0), image);
    let turned = image;
    for (let i = 0; i < 4; i++) turned = rotateImage(turned, 90);
    turned.forEach((value, i) => assert.ok(Math.abs(value - image[i]!) < 1e-6));
    const tilted = rotateImage(image, 30);
    assert.ok(tilted.every((value) => value >= 0 && value <= 1));
    assert.notDeepEqual(tilted, image);
  });
});

describe('embedded rotated-MNIST', () => {
  it('names tasks by angle; task 0deg is plain MNIST, others are the rotated images', async () => {
    const source = createEmbeddedSource({ dataset: 'rotated-mnist', seed: 8, scenario: 'domain-incremental' });
    assert.deepEqual(source.knownTasks(), ['rotated-mnist-0deg', 'rotated-mnist-36deg', 'rotated-mnist-72deg', 'rotated-mnist-108deg', 'rotated-mnist-144deg']);
    const samples = await collect({ dataset: 'rotated-mnist', samplesPerTask: 10, seed: 8, scenario: 'domain-incremental' });
    assert.equal(samples.length, 50);
    for (const sample of samples.slice(0, 10)) assert.deepEqual(sample.x, imageOf(sample).pixels);
    for (const sample of samples.slice(10, 20)) {
      assert.deepEqual(sample.x, rotateImage(imageOf(sample).pixels, 36));
      assert.equal(sample.y, String(imageOf(sample).digit));
    }
  });

  it('takes given angles; a 90-degree task turns the image a quarter', async () => {
    const samples = await collect({ dataset: 'rotated-mnist', angles: [0, 90], samplesPerTask: 5, seed: 9, scenario: 'class-incremental' });
    assert.deepEqual([...countBy(samples, (sample) => sample.task)], [
      ['rotated-mnist-0deg', 5],
      ['rotated-mnist-90deg', 5],
    ]);
    for (const sample of samples.slice(5)) {
      const { pixels, digit } = imageOf(sample);
      assert.equal(sample.y, String(10 + digit));
      // Counter-clockwise: output (row r, column c) shows source (row c, column 27 - r).
      for (let r = 0; r < 28; r++) for (let c = 0; c < 28; c++) assert.equal(sample.x[r * 28 + c], pixels[c * 28 + (27 - r)]);
    }
  });
});

describe('embedded probes', () => {
  it('draws a deterministic, cached, scenario-labelled held-out set from the test split', () => {
    const spec: EmbeddedStreamSpec = { dataset: 'split-mnist', seed: 10, scenario: 'task-incremental' };
    const source = createEmbeddedSource(spec);
    const probe = source.probe('split-mnist-4-5', 100)!;
    assert.equal(probe.length, 100);
    assert.equal(source.probe('split-mnist-4-5', 100), probe, 'cached');
    assert.deepEqual(createEmbeddedSource(spec).probe('split-mnist-4-5', 100)!.map((s) => s.id), probe.map((s) => s.id), 'deterministic');
    assert.deepEqual(source.probe('split-mnist-4-5', 40)!.map((s) => s.id), probe.slice(0, 40).map((s) => s.id), 'smaller is a prefix');
    assert.equal(new Set(probe.map((s) => s.id)).size, 100);
    for (const sample of probe) {
      assert.match(sample.id!, /^test-\d+$/);
      assert.equal(sample.task, 'split-mnist-4-5');
      const { digit, pixels } = imageOf(sample);
      assert.equal(sample.y, String(digit - 4));
      assert.deepEqual(sample.x, pixels);
    }
    const { test } = loadMnist();
    const available = test.labels.filter((digit) => digit === 4 || digit === 5).length;
    assert.equal(source.probe('split-mnist-4-5', 1_000_000)!.length, available, 'all when size exceeds');
    assert.equal(source.probe('no-such-task', 10), undefined);
    assert.throws(() => source.probe('split-mnist-4-5', -1), ConfigError);
  });

  it('applies the task transformation and class-incremental labels', () => {
    const source = createEmbeddedSource({ dataset: 'permuted-mnist', tasks: 3, seed: 11, scenario: 'class-incremental' });
    const probe = source.probe('permuted-mnist-3', 30)!;
    assert.equal(probe.length, 30);
    const transform = defineTaskStream({ dataset: 'permuted-mnist', tasks: 3, seed: 11, scenario: 'class-incremental' }).tasks[2]!.transform;
    for (const sample of probe) {
      assert.equal(sample.y, String(20 + imageOf(sample).digit));
      assert.deepEqual(sample.x, transform(imageOf(sample).raw));
    }
  });
});

describe('embedded source lifecycle and validation', () => {
  it('close() ends an open iterator and is safe twice', async () => {
    const source = createEmbeddedSource({ dataset: 'permuted-mnist', seed: 12, scenario: 'task-incremental' });
    const iterator = source.open(context);
    assert.equal((await iterator.next()).done, false);
    await source.close();
    await source.close();
    assert.equal((await iterator.next()).done, true);
  });

  it('refuses invalid specs with ConfigError', () => {
    const bad: EmbeddedStreamSpec[] = [
      { dataset: 'split-mnist', tasks: 6, seed: 1, scenario: 'task-incremental' },
      { dataset: 'permuted-mnist', tasks: 0, seed: 1, scenario: 'task-incremental' },
      { dataset: 'permuted-mnist', samplesPerTask: -1, seed: 1, scenario: 'task-incremental' },
      { dataset: 'permuted-mnist', angles: [0], seed: 1, scenario: 'task-incremental' },
      { dataset: 'rotated-mnist', tasks: 3, angles: [0, 45], seed: 1, scenario: 'task-incremental' },
      { dataset: 'rotated-mnist', angles: [0, 0], seed: 1, scenario: 'task-incremental' },
      { dataset: 'bogus-mnist' as 'split-mnist', seed: 1, scenario: 'task-incremental' },
      { dataset: 'split-mnist', seed: 1, scenario: 'bogus' as Scenario },
    ];
    for (const spec of bad) assert.throws(() => createEmbeddedSource(spec), ConfigError, JSON.stringify(spec));
  });
});
