import * as assert from 'node:assert/strict';
import { strategiesCommand } from '../../src/cli/strategies-command';
import { builtinStrategies } from '../../src/strategies/registry';

function output(args: readonly string[]): string {
  let text = '';
  assert.equal(
    strategiesCommand(args, (chunk) => (text += chunk)),
    0,
  );
  return text;
}

describe('lifelong strategies', () => {
  const registry = builtinStrategies();

  it('--json gives every descriptor: capabilities and parameters with default and doc, no factory', () => {
    const { strategies } = JSON.parse(output(['--json'])) as { strategies: Record<string, unknown>[] };
    assert.deepEqual(
      strategies.map((s) => s.name),
      registry.names(),
    );
    for (const s of strategies) {
      const descriptor = registry.describe(s.name as string);
      assert.deepEqual(s, JSON.parse(JSON.stringify(descriptor)));
      assert.equal('create' in s, false);
    }
    const joint = strategies.find((s) => s.name === 'joint')!;
    assert.deepEqual(joint.capabilities, { scenarios: ['task-incremental', 'domain-incremental', 'class-incremental'], needsTaskIdentity: false, storesRawSamples: true, needsFiniteStream: true });
    const dgr = strategies.find((s) => s.name === 'dgr') as { params: Record<string, { default: unknown; doc: string }> };
    assert.deepEqual(dgr.params.generatorSteps!.default, { sameAs: 'training.stepsPerBatch' });
  });

  it('prints one table row per strategy with its capabilities, then its parameters with default and doc', () => {
    const text = output([]);
    const lines = text.split('\n');
    assert.match(lines[0]!, /^strategy\s+family\s+scenarios\s+task identity\s+stores raw samples\s+finite stream only$/);
    for (const name of registry.names()) assert.ok(lines.some((l) => l.startsWith(`${name} `)), `a row for ${name}`);
    assert.match(text, /^joint\s+baseline\s+task, domain, class\s+-\s+yes\s+yes$/m);
    assert.match(text, /^progressive\s+structure\s+task, domain, class\s+best with it \(Task-IL\); inferred otherwise\s+no\s+no$/m);
    assert.match(text, /^finetune: No protection.*\n {2}no parameters$/m);
    assert.match(text, /^ {2}lambda\s+number >= 0\s+default 1000\s+Penalty strength lambda of Kirkpatrick et al\. 2017\.$/m);
    assert.match(text, /^ {2}generatorLearningRate\s+number > 0\s+default = training\.learningRate\s+/m);
    assert.match(text, /^ {2}currentWeight\s+number > 0, <= 1 or "1\/t"\s+default "1\/t"\s+/m);
  });

  it('refuses an unknown option', () => {
    assert.throws(() => output(['--yaml']), /--yaml/);
  });
});
