import assert from 'node:assert/strict';
import type { Scenario } from '../../src/core/types';
import {
  averageAccuracyAfterEachTask,
  summariseRuns,
  type BenchProtocol,
  type BenchRun,
} from '../../src/suites/bench-report';
import { accuracyHeatmaps } from '../../src/suites/accuracy-heatmaps';
import { averageAccuracyPlot } from '../../src/suites/average-accuracy-plot';
import { strategyColour } from '../../src/suites/plots';
import { seedFigurePlot } from '../../src/suites/seed-figure-plot';

const PROTOCOL: BenchProtocol = {
  tasks: 2,
  hiddenLayers: [100],
  optimizer: 'sgd',
  learningRate: 0.01,
  batchSize: 16,
  iterationsPerTask: 0,
  samplesPerTask: 0,
  stepsPerBatch: 1,
  revisits: false,
  testSamplesPerTask: 0,
};

/** One hand-written run: the matrix is the input, the averages follow from it as in run-bench. */
function run(scenario: Scenario, strategy: string, seed: number, accuracyMatrix: (number | null)[][]): BenchRun {
  const averageAccuracyAfterTask = averageAccuracyAfterEachTask(accuracyMatrix);
  const width = Math.max(...accuracyMatrix.map((row) => row.length));
  return {
    dataset: 'split-mnist',
    scenario,
    strategy,
    implementationStrategy: strategy,
    params: {},
    seed,
    protocol: { ...PROTOCOL, tasks: width },
    tasks: Array.from({ length: width }, (_, j) => `digits-${2 * j}-${2 * j + 1}`),
    accuracyMatrix,
    averageAccuracyAfterTask,
    finalAverageAccuracy: averageAccuracyAfterTask[averageAccuracyAfterTask.length - 1] ?? 0,
    wallSeconds: 10,
    samplesTrained: 1000,
    samplesPerSecond: 100,
    parameters: 1234,
  };
}

/** Three tasks, two scenarios (class- before task-incremental on purpose), three strategies. */
function threeTaskRuns(): BenchRun[] {
  return [
    run('class-incremental', 'finetune', 1, [[0.99, null, null], [0.10, 0.98, null], [0.05, 0.08, 0.97]]),
    run('class-incremental', 'finetune', 2, [[0.97, null, null], [0.20, 0.96, null], [0.07, 0.06, 0.99]]),
    run('class-incremental', 'ewc', 1, [[0.99, null, null], [0.40, 0.95, null], [0.30, 0.35, 0.90]]),
    run('class-incremental', 'ewc', 2, [[0.98, null, null], [0.50, 0.93, null], [0.25, 0.45, 0.92]]),
    run('class-incremental', 'dgr+distill', 1, [[0.99, null, null], [0.90, 0.97, null], [0.85, 0.88, 0.96]]),
    run('task-incremental', 'finetune', 1, [[0.99, 0.40, 0.50], [0.80, 0.99, 0.45], [0.70, 0.75, 0.99]]),
    run('task-incremental', 'ewc', 1, [[0.99, 0.45, 0.50], [0.95, 0.98, 0.55], [0.93, 0.95, 0.98]]),
    run('task-incremental', 'dgr+distill', 1, [[0.99, 0.50, 0.50], [0.97, 0.99, 0.50], [0.96, 0.97, 0.99]]),
  ];
}

// ---------------------------------------------------------------------------------------------
// Reading the SVG back

/**
 * A minimal XML well-formedness check: tags balance, attribute values are quoted and hold no '<',
 * text holds no raw '<' or '>', and every '&' starts an entity.
 */
function assertWellFormed(svg: string): void {
  const tag = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>/y;
  const entity = /&(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/g;
  const checkEntities = (chunk: string, where: number): void => {
    assert.ok(!chunk.replace(entity, '').includes('&'), `bare '&' near offset ${where}: ${chunk.slice(0, 80)}`);
  };
  const stack: string[] = [];
  let position = 0;
  let roots = 0;
  while (position < svg.length) {
    const lt = svg.indexOf('<', position);
    const content = svg.slice(position, lt < 0 ? svg.length : lt);
    assert.ok(!content.includes('>'), `raw '>' in text near offset ${position}: ${content.slice(0, 80)}`);
    checkEntities(content, position);
    if (stack.length === 0) assert.equal(content.trim(), '', `text outside the root element: ${content.slice(0, 80)}`);
    if (lt < 0) break;
    tag.lastIndex = lt;
    const match = tag.exec(svg);
    assert.ok(match, `malformed tag at offset ${lt}: ${svg.slice(lt, lt + 80)}`);
    const [, closing, name, attributes, selfClosing] = match;
    checkEntities(attributes ?? '', lt);
    const attributeNames = [...(attributes ?? '').matchAll(/([\w:.-]+)="/g)].map((m) => m[1]);
    assert.equal(new Set(attributeNames).size, attributeNames.length, `duplicate attribute in ${match[0].slice(0, 80)}`);
    if (closing) {
      assert.equal(stack.pop(), name, `</${name}> closes the wrong element at offset ${lt}`);
    } else {
      if (stack.length === 0) roots += 1;
      if (!selfClosing) stack.push(name as string);
    }
    position = tag.lastIndex;
  }
  assert.deepEqual(stack, [], 'unclosed elements');
  assert.equal(roots, 1, 'exactly one root element');
}

/** The common checks every plot must pass. */
function assertValidSvg(svg: string): void {
  assertWellFormed(svg);
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="[\d.]+" height="[\d.]+" viewBox="0 0 [\d.]+ [\d.]+"/);
  assert.match(svg, /font-family="sans-serif"/);
  assert.ok(!/NaN|Infinity|undefined/.test(svg), 'NaN, Infinity or undefined in the SVG');
}

interface Element {
  readonly name: string;
  readonly attributes: Record<string, string>;
  /** Text up to the next tag (for <text> elements: their content, unescaped). */
  readonly text: string;
}

function unescape(value: string): string {
  return value.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&amp;/g, '&');
}

/** Start tags with their attributes, in document order, optionally only those of one class. */
function elements(svg: string, name: string, className?: string): Element[] {
  const found: Element[] = [];
  const pattern = new RegExp(`<${name}((?:\\s+[\\w:.-]+="[^"]*")*)\\s*/?>([^<]*)`, 'g');
  for (const match of svg.matchAll(pattern)) {
    const attributes: Record<string, string> = {};
    for (const a of (match[1] ?? '').matchAll(/([\w:.-]+)="([^"]*)"/g)) attributes[a[1] as string] = unescape(a[2] as string);
    if (className === undefined || attributes.class === className) {
      found.push({ name, attributes, text: unescape(match[2] ?? '') });
    }
  }
  return found;
}

function points(polyline: Element): { x: number; y: number }[] {
  const list = polyline.attributes.points ?? '';
  return list === ''
    ? []
    : list.split(' ').map((pair) => {
        const [x, y] = pair.split(',').map(Number);
        return { x: x as number, y: y as number };
      });
}

/** The panels (<g class="panel">…</g>) as separate strings, with their scenario. */
function panels(svg: string): { scenario: string; body: string }[] {
  return [...svg.matchAll(/<g class="panel" data-scenario="([^"]*)"[^>]*>([\s\S]*?)\n<\/g>\n(?=<g class="panel"|<g class="legend-item"|<\/svg>)/g)].map((m) => ({
    scenario: m[1] as string,
    body: m[2] as string,
  }));
}

function numberAttribute(element: Element, name: string): number {
  const value = Number(element.attributes[name]);
  assert.ok(Number.isFinite(value), `${element.name}.${name} = ${element.attributes[name]}`);
  return value;
}

function luminanceOf(hex: string): number {
  const [r, g, b] = [1, 3, 5].map((k) => parseInt(hex.slice(k, k + 2), 16) / 255) as [number, number, number];
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

/** The fill of the first element of `className` tagged with data-strategy="strategy". */
function colourOf(svg: string, name: string, className: string, strategy: string): string {
  const element = elements(svg, name, className).find((e) => e.attributes['data-strategy'] === strategy);
  assert.ok(element, `no ${className} for ${strategy}`);
  return element.attributes.fill ?? element.attributes.stroke ?? '';
}

// ---------------------------------------------------------------------------------------------

describe('bench plots: average accuracy', () => {
  const runs = threeTaskRuns();
  const summaries = summariseRuns(runs);
  const svg = averageAccuracyPlot(summaries);

  it('is a well-formed SVG with no NaN', () => {
    assertValidSvg(svg);
  });

  it('draws one panel per scenario present, in task → domain → class order', () => {
    const drawn = panels(svg);
    assert.deepEqual(
      drawn.map((p) => p.scenario),
      ['task-incremental', 'class-incremental'],
    );
    for (const panel of drawn) assert.ok(panel.body.includes(`>${panel.scenario}</text>`), `panel title ${panel.scenario}`);
  });

  it('draws one polyline per strategy and panel, one point per task, x increasing', () => {
    const polylines = elements(svg, 'polyline', 'series');
    assert.equal(polylines.length, 3 * 2);
    for (const polyline of polylines) {
      const xy = points(polyline);
      assert.equal(xy.length, 3);
      for (let t = 1; t < xy.length; t += 1) assert.ok((xy[t] as { x: number }).x > (xy[t - 1] as { x: number }).x);
    }
  });

  it('draws a higher average accuracy higher, and y linear in the accuracy', () => {
    for (const panel of panels(svg)) {
      const inPanel = summaries.filter((s) => s.scenario === panel.scenario);
      const byStrategy = new Map(elements(panel.body, 'polyline', 'series').map((p) => [p.attributes['data-strategy'], points(p)]));
      const pairs: { accuracy: number; y: number }[] = [];
      for (const summary of inPanel) {
        const xy = byStrategy.get(summary.strategy);
        assert.ok(xy, `polyline for ${summary.strategy} in ${panel.scenario}`);
        summary.averageAccuracyAfterTask.forEach((stat, t) => pairs.push({ accuracy: stat.mean, y: (xy[t] as { y: number }).y }));
      }
      for (const a of pairs) {
        for (const b of pairs) {
          if (a.accuracy > b.accuracy + 1e-9) assert.ok(a.y < b.y, `${a.accuracy} drawn at y=${a.y}, not above ${b.accuracy} at y=${b.y}`);
        }
      }
      // Linear: the slope dy/daccuracy is the same for every pair of points (up to 2-decimal rounding).
      const [first, ...rest] = pairs as [{ accuracy: number; y: number }, ...{ accuracy: number; y: number }[]];
      const far = rest.reduce((best, p) => (Math.abs(p.accuracy - first.accuracy) > Math.abs(best.accuracy - first.accuracy) ? p : best));
      const slope = (far.y - first.y) / (far.accuracy - first.accuracy);
      assert.ok(slope < 0);
      for (const p of rest) assert.ok(Math.abs(first.y + slope * (p.accuracy - first.accuracy) - p.y) < 0.05, `y of ${p.accuracy}`);
    }
  });

  it('has gridlines at 0, 20 … 100 % in every panel and the axis labels', () => {
    for (const panel of panels(svg)) {
      const ticks = elements(panel.body, 'text', 'tick-y').map((t) => t.text);
      assert.deepEqual(ticks, ['0', '20', '40', '60', '80', '100']);
      assert.equal(elements(panel.body, 'line', 'gridline').length, 6);
      assert.ok(panel.body.includes('>tasks learned</text>'));
      assert.ok(panel.body.includes('>average accuracy (%)</text>'));
    }
  });

  it('draws error bars only where the std over seeds is above 0', () => {
    // Class-incremental finetune and ewc have two differing seeds (std > 0 after each task);
    // dgr+distill and all task-incremental runs have one seed (std 0).
    const expected = summaries.reduce((n, s) => n + s.averageAccuracyAfterTask.filter((stat) => stat.std > 0).length, 0);
    assert.equal(expected, 2 * 3);
    assert.equal(elements(svg, 'path', 'errorbar').length, expected);
    const classPanel = panels(svg).find((p) => p.scenario === 'class-incremental');
    assert.equal(elements(classPanel?.body ?? '', 'path', 'errorbar').length, expected);
  });

  it('has a legend with each strategy once, in its fixed colour', () => {
    const legend = elements(svg, 'text', 'legend-label').map((t) => t.text);
    assert.deepEqual(legend, ['finetune', 'ewc', 'dgr+distill']);
    for (const strategy of legend) {
      const colour = strategyColour(strategy);
      assert.equal(colourOf(svg, 'circle', 'legend-marker', strategy), colour);
      for (const polyline of elements(svg, 'polyline', 'series').filter((p) => p.attributes['data-strategy'] === strategy)) {
        assert.equal(polyline.attributes.stroke, colour);
      }
    }
  });

  it('clamps accuracies outside 0..1 and skips NaN points', () => {
    const odd = summariseRuns([run('domain-incremental', 'weird', 1, [[1.3, null], [Number.NaN, -0.2]])]);
    // averageAccuracyAfterTask: [1.3, NaN] from the matrix; force a NaN mean and an out-of-range one.
    const summary = { ...odd[0]!, averageAccuracyAfterTask: [{ mean: 1.3, std: 0.5 }, { mean: Number.NaN, std: 0 }, { mean: -0.2, std: Number.NaN }] };
    const out = averageAccuracyPlot([summary]);
    assertValidSvg(out);
    const [polyline] = elements(out, 'polyline', 'series');
    assert.ok(polyline);
    const xy = points(polyline);
    assert.equal(xy.length, 2, 'the NaN point is skipped');
    const ticks = elements(out, 'text', 'tick-y');
    const yOfTick = (label: string): number => numberAttribute(ticks.find((t) => t.text === label)!, 'y') - 4;
    assert.ok(Math.abs((xy[0] as { y: number }).y - yOfTick('100')) < 0.05, '1.3 clamped to 100 %');
    assert.ok(Math.abs((xy[1] as { y: number }).y - yOfTick('0')) < 0.05, '-0.2 clamped to 0 %');
  });

  it('escapes strategy names and titles', () => {
    const strange = summariseRuns([run('task-incremental', 'a<b & "c"', 1, [[0.9, 0.1], [0.8, 0.7]])]);
    const out = averageAccuracyPlot([...summaries, ...strange], { title: 'x < y & "z" > w' });
    assertValidSvg(out);
    assert.ok(out.includes('x &lt; y &amp; &quot;z&quot; &gt; w'));
    assert.ok(out.includes('>a&lt;b &amp; &quot;c&quot;</text>'));
    assert.ok(out.includes('data-strategy="dgr+distill"'));
  });

  it('is deterministic and handles no summaries', () => {
    assert.equal(averageAccuracyPlot(summariseRuns(threeTaskRuns())), svg);
    const empty = averageAccuracyPlot([]);
    assertValidSvg(empty);
    assert.equal(elements(empty, 'polyline', 'series').length, 0);
  });
});

describe('bench plots: accuracy heatmaps', () => {
  const summaries = summariseRuns(threeTaskRuns());
  const svg = accuracyHeatmaps(summaries);

  it('is a well-formed SVG with no NaN', () => {
    assertValidSvg(svg);
  });

  it('draws T×T cells per summary, titled "strategy · scenario", with ticks 1..T', () => {
    const cells = elements(svg, 'rect', 'cell');
    assert.equal(cells.length, summaries.length * 3 * 3);
    const titles = elements(svg, 'text', 'heatmap-title').map((t) => t.text);
    assert.deepEqual(
      [...titles].sort(),
      summaries.map((s) => `${s.strategy} · ${s.scenario}`).sort(),
    );
    const columnTicks = elements(svg, 'text', 'tick-column').map((t) => t.text);
    const rowTicks = elements(svg, 'text', 'tick-row').map((t) => t.text);
    const expectedTicks = summaries.flatMap(() => ['1', '2', '3']);
    assert.deepEqual(columnTicks, expectedTicks);
    assert.deepEqual(rowTicks, expectedTicks);
    assert.equal(svg.split('>after task i</text>').length - 1, summaries.length);
    assert.equal(svg.split('>task j</text>').length - 1, summaries.length);
  });

  it('prints each measured cell in percent with no decimals, and nothing in null cells', () => {
    const heatmaps = [...svg.matchAll(/<g class="heatmap" data-strategy="([^"]*)" data-scenario="([^"]*)"[^>]*>([\s\S]*?)<\/g>/g)];
    assert.equal(heatmaps.length, summaries.length);
    let nullCells = 0;
    for (const [, strategy, scenario, body] of heatmaps) {
      const summary = summaries.find((s) => s.strategy === unescape(strategy as string) && s.scenario === scenario);
      assert.ok(summary);
      const values = elements(body as string, 'text', 'cell-value');
      const cells = elements(body as string, 'rect', 'cell');
      for (const cell of cells) {
        const i = numberAttribute(cell, 'data-row');
        const j = numberAttribute(cell, 'data-column');
        const expected: number | null = summary.meanAccuracyMatrix[i]?.[j] ?? null;
        const printed = values.find((v) => v.attributes['data-row'] === String(i) && v.attributes['data-column'] === String(j));
        if (expected === null) {
          nullCells += 1;
          assert.equal(printed, undefined, `null cell (${i}, ${j}) printed`);
          assert.equal(cell.attributes['data-value'], 'none');
        } else {
          assert.ok(printed, `cell (${i}, ${j}) of ${strategy} not printed`);
          assert.match(printed.text, /^-?\d+$/);
          assert.equal(Number(printed.text), Math.round(expected * 100));
        }
      }
    }
    assert.equal(nullCells, 3 * 3, 'the three class-incremental upper triangles are null');
  });

  it('colours a higher accuracy darker and picks a readable text colour', () => {
    const cells = elements(svg, 'rect', 'cell').filter((c) => c.attributes['data-value'] !== 'none');
    const nulls = elements(svg, 'rect', 'cell').filter((c) => c.attributes['data-value'] === 'none');
    assert.equal(new Set(nulls.map((c) => c.attributes.fill)).size, 1, 'one colour for null cells');
    for (const a of cells) {
      for (const b of cells) {
        if (Number(a.attributes['data-value']) > Number(b.attributes['data-value']) + 0.02) {
          assert.ok(
            luminanceOf(a.attributes.fill as string) < luminanceOf(b.attributes.fill as string),
            `${a.attributes['data-value']} (${a.attributes.fill}) not darker than ${b.attributes['data-value']} (${b.attributes.fill})`,
          );
        }
      }
    }
    const values = elements(svg, 'text', 'cell-value').sort((a, b) => Number(a.text) - Number(b.text));
    const lightest = values[0];
    const darkest = values[values.length - 1];
    assert.ok(Number(lightest?.text) < 10 && Number(darkest?.text) > 95);
    assert.equal(darkest?.attributes.fill, '#ffffff', 'white text on the darkest cell');
    assert.notEqual(lightest?.attributes.fill, '#ffffff', 'dark text on the lightest cell');
  });

  it('draws missing rows of an unfinished run as empty cells, and clamps odd values', () => {
    const unfinished = summariseRuns([run('class-incremental', 'ewc', 1, [[0.9, null, null], [Number.NaN, 1.4, null]])]);
    const summary = { ...unfinished[0]!, tasks: ['a', 'b', 'c'] };
    const out = accuracyHeatmaps([summary]);
    assertValidSvg(out);
    const cells = elements(out, 'rect', 'cell');
    assert.equal(cells.length, 9);
    assert.deepEqual(
      elements(out, 'text', 'cell-value').map((v) => v.text),
      ['90', '140'],
    );
    const above = cells.find((c) => c.attributes['data-value'] === '1.4');
    const full = colourOfAFullCell();
    assert.equal(above?.attributes.fill, full, '1.4 clamped to the colour of 100 %');
  });

  it('escapes names and shows the same strategy colour as the line plot', () => {
    const strange = summariseRuns([run('task-incremental', 'mine<&>', 1, [[0.9, 0.1], [0.8, 0.7]])]);
    const all = [...summaries, ...strange];
    const out = accuracyHeatmaps(all, { title: '<R> & "friends"' });
    assertValidSvg(out);
    assert.ok(out.includes('>mine&lt;&amp;&gt; · task-incremental</text>'));
    const lines = averageAccuracyPlot(all);
    for (const strategy of ['finetune', 'ewc', 'dgr+distill', 'mine<&>']) {
      assert.equal(colourOf(out, 'rect', 'strategy-swatch', strategy), colourOf(lines, 'circle', 'legend-marker', strategy));
    }
  });

  it('handles no summaries', () => {
    const empty = accuracyHeatmaps([]);
    assertValidSvg(empty);
    assert.equal(elements(empty, 'rect', 'cell').length, 0);
  });
});

/** The fill of a cell whose value is 1.0, drawn alone. */
function colourOfAFullCell(): string {
  const one = accuracyHeatmaps(summariseRuns([run('task-incremental', 'x', 1, [[1]])]));
  const [cell] = elements(one, 'rect', 'cell');
  return cell?.attributes.fill ?? '';
}

describe('bench plots: seed figure (two tasks)', () => {
  // ewc: three seeds, R[1][0] = 0.9, 0.8, 0.7 (mean 0.8, std 0.1); R[1][1] = 0.95, 0.95, 0.95 (std 0).
  // finetune: one seed. sgd: two seeds, R[1][0] = 0.2, 0.4 (mean 0.3, std √0.02).
  const runs = [
    run('domain-incremental', 'finetune', 1, [[0.98, 0.5], [0.3, 0.99]]),
    run('domain-incremental', 'ewc', 1, [[0.98, 0.5], [0.9, 0.95]]),
    run('domain-incremental', 'ewc', 2, [[0.98, 0.5], [0.8, 0.95]]),
    run('domain-incremental', 'ewc', 3, [[0.98, 0.5], [0.7, 0.95]]),
    run('domain-incremental', 'l2', 1, [[0.98, 0.5], [0.2, 0.9]]),
    run('domain-incremental', 'l2', 2, [[0.98, 0.5], [0.4, 0.7]]),
  ];
  const svg = seedFigurePlot(runs);
  const bars = elements(svg, 'rect', 'bar');
  const bar = (strategy: string, task: string): Element => {
    const found = bars.find((b) => b.attributes['data-strategy'] === strategy && b.attributes['data-task'] === task);
    assert.ok(found, `bar ${strategy} ${task}`);
    return found;
  };
  const expectedMeans: [string, string, number][] = [
    ['finetune', 'A', 0.3],
    ['finetune', 'B', 0.99],
    ['ewc', 'A', 0.8],
    ['ewc', 'B', 0.95],
    ['l2', 'A', 0.3],
    ['l2', 'B', 0.8],
  ];

  it('is a well-formed SVG with no NaN, with a task A / task B legend', () => {
    assertValidSvg(svg);
    assert.deepEqual(
      elements(svg, 'text', 'legend-label').map((t) => t.text),
      ['task A', 'task B'],
    );
  });

  it('draws two bars per strategy, heights proportional to the means, bottoms aligned', () => {
    assert.equal(bars.length, 2 * 3);
    const ratios = expectedMeans.map(([strategy, task, mean]) => numberAttribute(bar(strategy, task), 'height') / mean);
    for (const ratio of ratios) assert.ok(Math.abs(ratio - (ratios[0] as number)) < 0.1, `heights not proportional: ${ratios.join(', ')}`);
    const bottoms = bars.map((b) => numberAttribute(b, 'y') + numberAttribute(b, 'height'));
    for (const bottom of bottoms) assert.ok(Math.abs(bottom - (bottoms[0] as number)) < 0.02);
    // Groups in order of appearance, task A left of task B.
    assert.ok(numberAttribute(bar('finetune', 'B'), 'x') < numberAttribute(bar('ewc', 'A'), 'x'));
    assert.ok(numberAttribute(bar('ewc', 'A'), 'x') < numberAttribute(bar('ewc', 'B'), 'x'));
    assert.equal(bar('ewc', 'A').attributes.fill, bar('l2', 'A').attributes.fill);
    assert.notEqual(bar('ewc', 'A').attributes.fill, bar('ewc', 'B').attributes.fill);
  });

  it('prints the mean over seeds above each bar', () => {
    const values = elements(svg, 'text', 'bar-value').map((t) => t.text);
    assert.deepEqual(
      values,
      expectedMeans.map(([, , mean]) => (mean * 100).toFixed(1)),
    );
    const ewcA = elements(svg, 'text', 'bar-value').find((t) => t.text === '80.0');
    assert.ok(ewcA && numberAttribute(ewcA, 'y') < numberAttribute(bar('ewc', 'A'), 'y'), 'above the bar');
  });

  it('draws error bars only for groups of two or more seeds with a spread, as long as ±std', () => {
    const errorBars = elements(svg, 'path', 'errorbar');
    // ewc task A (std 0.1), l2 task A (std √0.02) and l2 task B (std √0.02); ewc task B has std 0;
    // finetune has one seed.
    assert.deepEqual(
      errorBars.map((e) => `${e.attributes['data-strategy']} ${e.attributes['data-task']}`),
      ['ewc A', 'l2 A', 'l2 B'],
    );
    const pixelsPerUnit = numberAttribute(bar('ewc', 'A'), 'height') / 0.8;
    const extent = (e: Element): number => {
      const match = /^M[\d.]+,([\d.]+)V([\d.]+)/.exec(e.attributes.d ?? '');
      assert.ok(match, e.attributes.d);
      return Number(match[1]) - Number(match[2]);
    };
    assert.ok(Math.abs(extent(errorBars[0] as Element) - 2 * 0.1 * pixelsPerUnit) < 0.1);
    assert.ok(Math.abs(extent(errorBars[1] as Element) - 2 * Math.sqrt(0.02) * pixelsPerUnit) < 0.1);
  });

  it('skips runs without a second row, escapes names, no NaN', () => {
    const odd = [
      run('class-incremental', 'one-task & <more>', 1, [[0.9]]),
      run('class-incremental', 'dgr+distill', 1, [[0.9, null], [0.7, 1.2]]),
    ];
    const out = seedFigurePlot(odd, { title: 'EWC < SGD?' });
    assertValidSvg(out);
    const oddBars = elements(out, 'rect', 'bar');
    assert.deepEqual(
      oddBars.map((b) => `${b.attributes['data-strategy']} ${b.attributes['data-task']}`),
      ['dgr+distill A', 'dgr+distill B'],
    );
    assert.ok(out.includes('>one-task &amp; &lt;more&gt;</text>'));
    assert.ok(out.includes('EWC &lt; SGD?'));
    const empty = seedFigurePlot([]);
    assertValidSvg(empty);
  });

  it('gives a strategy the same colour as in the line plot and the heatmaps', () => {
    const summaries = summariseRuns(runs);
    const lines = averageAccuracyPlot(summaries);
    const heatmaps = accuracyHeatmaps(summaries);
    for (const strategy of ['finetune', 'ewc', 'l2']) {
      const colour = colourOf(svg, 'rect', 'strategy-swatch', strategy);
      assert.equal(colour, colourOf(lines, 'circle', 'legend-marker', strategy));
      assert.equal(colour, colourOf(heatmaps, 'rect', 'strategy-swatch', strategy));
    }
  });
});

describe('bench plots: strategy colours', () => {
  it('fixes distinct colours for the known strategies, whatever the order of appearance', () => {
    const known = ['finetune', 'l2', 'ewc', 'online-ewc', 'progressive', 'den', 'dgr', 'dgr+distill', 'replay', 'joint'];
    const colours = known.map((name) => strategyColour(name));
    assert.equal(new Set(colours).size, known.length);
    for (const colour of colours) assert.match(colour, /^#[0-9a-f]{6}$/);
    assert.deepEqual(
      known.map((name) => strategyColour(name, [...known].reverse())),
      colours,
    );
  });

  it('gives unknown names further colours in order of appearance', () => {
    const order = ['ewc', 'mine', 'finetune', 'theirs'];
    const mine = strategyColour('mine', order);
    const theirs = strategyColour('theirs', order);
    assert.notEqual(mine, theirs);
    const knownColours = ['finetune', 'l2', 'ewc', 'online-ewc', 'progressive', 'den', 'dgr', 'dgr+distill', 'replay', 'joint'].map((n) =>
      strategyColour(n),
    );
    assert.ok(!knownColours.includes(mine) && !knownColours.includes(theirs));
    assert.equal(strategyColour('theirs', ['theirs']), mine, 'first unknown name gets the first extra colour');
  });
});
