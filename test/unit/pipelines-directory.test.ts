import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadPipelineDirectory } from '../../src/cli/pipelines-directory';
import { parseRunArgs } from '../../src/cli/run-command';
import { LEASE_DEFAULTS, loadPipelineConfig } from '../../src/config/pipeline-config';
import { ConfigError, UsageError } from '../../src/core/errors';

function kafkaPipeline(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { name, scenario: 'task-incremental', source: { type: 'kafka', brokers: ['127.0.0.1:9092'], topicPattern: `${name}\\..*`, inputSize: 4 }, strategy: { name: 'ewc' }, ...extra };
}

describe('leased pipelines: config, directory and arguments', () => {
  let dir: string;
  const write = (file: string, value: unknown) => fs.writeFileSync(path.join(dir, file), JSON.stringify(value));
  const same = <T>(p: T) => p;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifelong-pipelines-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('lease defaults, and the lease keys checked with the file and key named', () => {
    write('p.json', kafkaPipeline('p'));
    assert.deepEqual(loadPipelineConfig(path.join(dir, 'p.json')).lease, LEASE_DEFAULTS);
    write('q.json', kafkaPipeline('q', { lease: { enabled: true, sessionTimeoutMs: 6000, heartbeatIntervalMs: 6000 } }));
    assert.throws(() => loadPipelineConfig(path.join(dir, 'q.json')), (e: ConfigError) => e instanceof ConfigError && /q\.json/.test(e.message) && /lease\.heartbeatIntervalMs/.test(e.message));
    write('r.json', { name: 'r', scenario: 'task-incremental', source: { type: 'split-mnist' }, strategy: { name: 'ewc' }, lease: { enabled: true } });
    assert.throws(() => loadPipelineConfig(path.join(dir, 'r.json')), /lease\.enabled/);
  });

  it('a directory: its Kafka pipelines in name order; a repeated name, another source or other brokers refused', () => {
    write('b.json', kafkaPipeline('second'));
    write('a.json', kafkaPipeline('first'));
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'not a pipeline');
    assert.deepEqual(loadPipelineDirectory(dir, {}, same).map((p) => p.name), ['first', 'second']);
    write('c.json', kafkaPipeline('first'));
    assert.throws(() => loadPipelineDirectory(dir, {}, same), (e: ConfigError) => e instanceof ConfigError && e.key === 'name' && /c\.json/.test(e.message));
    fs.rmSync(path.join(dir, 'c.json'));
    write('d.json', { ...kafkaPipeline('third'), source: { type: 'kafka', brokers: ['elsewhere:9092'], topicPattern: 'x', inputSize: 4 } });
    assert.throws(() => loadPipelineDirectory(dir, {}, same), (e: ConfigError) => e.key === 'source.brokers');
    fs.rmSync(path.join(dir, 'd.json'));
    write('e.json', { name: 'embedded', scenario: 'task-incremental', source: { type: 'split-mnist' }, strategy: { name: 'ewc' } });
    assert.throws(() => loadPipelineDirectory(dir, {}, same), (e: ConfigError) => e.key === 'source.type');
    fs.rmSync(path.join(dir, 'e.json'));
    write('f.json', kafkaPipeline('fourth', { lease: { sessionTimeoutMs: 20000 } }));
    assert.throws(() => loadPipelineDirectory(dir, {}, same), (e: ConfigError) => e.key === 'lease.sessionTimeoutMs');
  });

  it('run takes --pipeline FILE or --pipelines DIR, and --lease-group only with a directory', () => {
    assert.deepEqual(parseRunArgs(['--pipelines', 'dir', '--lease-group', 'g']).pipelines, 'dir');
    assert.throws(() => parseRunArgs(['--pipeline', 'f', '--pipelines', 'dir']), (e: UsageError) => e instanceof UsageError && e.key === '--pipelines');
    assert.throws(() => parseRunArgs(['--pipeline', 'f', '--lease-group', 'g']), (e: UsageError) => e.key === '--lease-group');
    assert.throws(() => parseRunArgs([]), UsageError);
  });
});
