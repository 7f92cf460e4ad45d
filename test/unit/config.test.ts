import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError } from '../../src/core/errors';
import { Rng } from '../../src/core/rng';
import { SCENARIOS } from '../../src/core/types';
import { loadDaemonConfig } from '../../src/config/daemon-config';
import { locateJsonSyntaxError } from '../../src/config/json-syntax';
import { loadPipelineConfig, type PipelineConfig } from '../../src/config/pipeline-config';

// Compiled to <outDir>/test/unit, with outDir one level below the repository.
const REPO = path.resolve(__dirname, '../../..');
const PIPELINES = path.join(REPO, 'pipelines');

/** A valid pipeline file's content; tests break one thing at a time. */
function validPipeline(): Record<string, any> {
  return {
    name: 'test-pipeline',
    description: 'for tests',
    seed: 3,
    scenario: 'class-incremental',
    source: { type: 'split-mnist', tasks: 5, samplesPerTask: 0 },
    model: { hiddenLayers: [400, 400], outputUnits: 0 },
    strategy: { name: 'ewc', params: { lambda: 100 } },
    training: { batchSize: 128, optimizer: 'adam', learningRate: 0.001, stepsPerBatch: 1, batchTimeoutMs: 1000 },
    evaluation: { probeSize: 300, holdoutEvery: 10 },
  };
}

describe('config', () => {
  let dir: string;
  let counter = 0;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifelong-config-'));
  });
  after(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function writeFile(content: string, name = `pipeline-${counter++}.json`): string {
    const file = path.join(dir, name);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, content);
    return file;
  }
  const writeJson = (value: unknown, name?: string): string => writeFile(JSON.stringify(value, null, 2), name);

  /** Asserts that loading throws a ConfigError whose message names the file and each key. */
  function assertRejected(load: () => unknown, file: string | undefined, keys: string[]): ConfigError {
    let caught: unknown;
    try {
      load();
    } catch (error) {
      caught = error;
    }
    assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${String(caught)}`);
    if (file !== undefined) {
      assert.equal(caught.file, file);
      assert.ok(caught.message.includes(file), `message does not name the file: ${caught.message}`);
    }
    for (const key of keys) {
      assert.ok(caught.message.includes(`${key}:`), `message does not name ${key}: ${caught.message}`);
    }
    if (keys.length > 0) assert.equal(caught.key, keys[0]);
    return caught;
  }

  describe('shipped pipelines', () => {
    const files = fs.readdirSync(PIPELINES).filter((f) => f.endsWith('.json'));

    it('all load, are named after their file and describe themselves', () => {
      assert.ok(files.length >= 14, `only ${files.length} pipeline files`);
      for (const file of files) {
        const config = loadPipelineConfig(path.join(PIPELINES, file));
        assert.equal(config.name, path.basename(file, '.json'));
        assert.ok(config.description.length > 20, `${file} has no real description`);
      }
    });

    it('cover split MNIST with finetune, l2, ewc and online-ewc in every scenario', () => {
      const suffix = { 'task-incremental': 'task', 'domain-incremental': 'domain', 'class-incremental': 'class' };
      for (const strategy of ['finetune', 'l2', 'ewc', 'online-ewc']) {
        for (const scenario of SCENARIOS) {
          const config = loadPipelineConfig(path.join(PIPELINES, `split-mnist-${strategy}-${suffix[scenario]}.json`));
          assert.equal(config.scenario, scenario);
          assert.equal(config.strategy.name, strategy);
          assert.equal(config.source.type, 'split-mnist');
          assert.deepEqual(config.model.hiddenLayers, [400, 400]);
          const expectedKeys = { finetune: [], l2: ['lambda'], ewc: ['lambda'], 'online-ewc': ['gamma', 'lambda'] }[strategy];
          assert.deepEqual(Object.keys(config.strategy.params).sort(), expectedKeys);
        }
      }
    });

    it('quickstart is the small permuted-MNIST EWC run', () => {
      const config = loadPipelineConfig(path.join(PIPELINES, 'quickstart.json'));
      assert.deepEqual(config.source, { type: 'permuted-mnist', tasks: 3, samplesPerTask: 3000 });
      assert.equal(config.scenario, 'domain-incremental');
      assert.deepEqual(config.model.hiddenLayers, [200, 200]);
      assert.equal(config.training.batchSize, 32);
      assert.deepEqual(config.strategy, { name: 'ewc', params: { lambda: 1000 } });
    });
  });

  describe('loadPipelineConfig', () => {
    it('returns the typed values and fills defaults', () => {
      const raw = validPipeline();
      delete raw.training;
      delete raw.evaluation;
      delete raw.description;
      const config: PipelineConfig = loadPipelineConfig(writeJson(raw));
      assert.equal(config.name, 'test-pipeline');
      assert.equal(config.description, '');
      assert.equal(config.seed, 3);
      assert.deepEqual(config.training, {
        batchSize: 128,
        optimizer: 'adam',
        learningRate: 0.001,
        stepsPerBatch: 1,
        batchTimeoutMs: 1000,
      });
      assert.deepEqual(config.evaluation, { probeSize: 300, holdoutEvery: 10, endedTaskLabelled: 'evaluate' });
      assert.equal(config.strategy.module, undefined);
      assert.deepEqual(config.strategy.params, { lambda: 100 });
    });

    it('rejects a misspelt key, naming it, its likely meaning and the file', () => {
      const raw = validPipeline();
      raw.training.batchsize = 64;
      const file = writeJson(raw);
      const error = assertRejected(() => loadPipelineConfig(file), file, ['training.batchsize']);
      assert.match(error.message, /did you mean training\.batchSize/);
    });

    it('rejects a value of the wrong type, naming the key and the file', () => {
      const raw = validPipeline();
      raw.training.batchSize = 'big';
      const file = writeJson(raw);
      assertRejected(() => loadPipelineConfig(file), file, ['training.batchSize']);
    });

    it('does not coerce strings from a file the way convict does for environment variables', () => {
      for (const [section, key, value] of [
        ['training', 'batchSize', '128'],
        ['training', 'learningRate', '0.01'],
        ['model', 'hiddenLayers', '[400]'],
        ['strategy', 'params', '{}'],
      ] as const) {
        const raw = validPipeline();
        raw[section][key] = value;
        const file = writeJson(raw);
        assertRejected(() => loadPipelineConfig(file), file, [`${section}.${key}`]);
      }
    });

    it('rejects an unknown top-level key, also when it holds an object', () => {
      const raw = validPipeline();
      raw.learning = { rate: { value: 1 } };
      const file = writeJson(raw);
      const error = assertRejected(() => loadPipelineConfig(file), file, ['learning']);
      assert.doesNotMatch(error.message, /learning\.rate/, 'reported leaf by leaf instead of once');
    });

    it('rejects a dotted key instead of reading it as a path', () => {
      const raw = validPipeline();
      raw['training.batchSize'] = 5;
      const file = writeJson(raw);
      assertRejected(() => loadPipelineConfig(file), file, ['training.batchSize']);
    });

    it('rejects a section that is not an object', () => {
      const raw = validPipeline();
      raw.training = 5;
      const file = writeJson(raw);
      assertRejected(() => loadPipelineConfig(file), file, ['training']);
    });

    it('rejects an unknown scenario', () => {
      const raw = validPipeline();
      raw.scenario = 'class';
      const file = writeJson(raw);
      assertRejected(() => loadPipelineConfig(file), file, ['scenario']);
    });

    it('requires name, scenario, strategy.name and source', () => {
      const file = writeJson({});
      assertRejected(() => loadPipelineConfig(file), file, ['name', 'scenario', 'strategy.name', 'source']);
    });

    it('rejects semantic errors, each naming its key', () => {
      const cases: [string, (raw: Record<string, any>) => void][] = [
        ['training.batchSize', (raw) => (raw.training.batchSize = 0)],
        ['training.learningRate', (raw) => (raw.training.learningRate = 0)],
        ['training.learningRate', (raw) => (raw.training.learningRate = -0.1)],
        ['training.stepsPerBatch', (raw) => (raw.training.stepsPerBatch = 1.5)],
        ['model.hiddenLayers', (raw) => (raw.model.hiddenLayers = [])],
        ['model.hiddenLayers', (raw) => (raw.model.hiddenLayers = [400, 0])],
        ['evaluation.probeSize', (raw) => (raw.evaluation.probeSize = 0)],
        ['source.tasks', (raw) => (raw.source.tasks = 0)],
        ['source.tasks', (raw) => (raw.source.tasks = 6)], // split MNIST has 5 pairs of digits
        ['name', (raw) => (raw.name = 'Has Spaces')],
      ];
      for (const [key, breakIt] of cases) {
        const raw = validPipeline();
        breakIt(raw);
        const file = writeJson(raw);
        assertRejected(() => loadPipelineConfig(file), file, [key]);
      }
    });

    it('reports every problem of a file at once', () => {
      const raw = validPipeline();
      raw.training.batchSize = -1;
      raw.evaluation.probeSize = 'all';
      raw.source.colour = true;
      const file = writeJson(raw);
      assertRejected(() => loadPipelineConfig(file), file, [
        'evaluation.probeSize',
        'training.batchSize',
        'source.colour',
      ]);
    });

    it('validates the source by its type: unknown types and keys of another type are rejected', () => {
      const unknownType = validPipeline();
      unknownType.source = { type: 'rabbitmq' };
      const file1 = writeJson(unknownType);
      assertRejected(() => loadPipelineConfig(file1), file1, ['source.type']);

      const wrongKey = validPipeline();
      wrongKey.source.angles = [0, 90]; // only rotated-mnist has angles
      const file2 = writeJson(wrongKey);
      assertRejected(() => loadPipelineConfig(file2), file2, ['source.angles']);
    });

    it('validates a kafka source: required pattern, broker addresses, topic names, a regex that compiles', () => {
      const raw = validPipeline();
      raw.source = { type: 'kafka', topicPattern: 'mnist\\..*' };
      const config = loadPipelineConfig(writeJson(raw));
      assert.equal(config.source.type, 'kafka');
      if (config.source.type !== 'kafka') return;
      assert.deepEqual(config.source.brokers, ['127.0.0.1:9092']);
      assert.equal(config.source.predictionsTopic, '{topic}.predictions');
      assert.equal(config.source.ssl, false);

      raw.source = { type: 'kafka' };
      const missing = writeJson(raw);
      assertRejected(() => loadPipelineConfig(missing), missing, ['source.topicPattern']);
      raw.source = { type: 'kafka', topicPattern: 'a', brokers: ['nohostport'], deadLetterTopic: 'bad topic', samplesPerTask: 3 };
      const bad = writeJson(raw);
      assertRejected(() => loadPipelineConfig(bad), bad, ['source.brokers', 'source.deadLetterTopic', 'source.samplesPerTask']);
      raw.source = { type: 'kafka', topicPattern: 'a' };
      raw.strategy = { name: 'joint' };
      const offline = writeJson(raw);
      assertRejected(() => loadPipelineConfig(offline), offline, ['strategy.name']);
      raw.strategy = { name: 'ewc' };
      raw.source = { type: 'kafka', topicPattern: 'a(' };
      const badRegex = writeJson(raw);
      assertRejected(() => loadPipelineConfig(badRegex), badRegex, ['source.topicPattern']);
    });

    it('a kafka source takes tasks from topics and bounds features by default; taskFrom and maxAbsFeature are checked', () => {
      const raw = validPipeline();
      raw.source = { type: 'kafka', topicPattern: 'a' };
      const config = loadPipelineConfig(writeJson(raw));
      assert.ok(config.source.type === 'kafka');
      assert.equal(config.source.taskFrom, 'topic');
      assert.equal(config.source.maxAbsFeature, 1e6);
      raw.source = { type: 'kafka', topicPattern: 'a', taskFrom: 'header', maxAbsFeature: 255 };
      const chosen = loadPipelineConfig(writeJson(raw));
      assert.ok(chosen.source.type === 'kafka' && chosen.source.taskFrom === 'header' && chosen.source.maxAbsFeature === 255);
      raw.source = { type: 'kafka', topicPattern: 'a', taskFrom: 'headers', maxAbsFeature: 0 };
      const bad = writeJson(raw);
      assertRejected(() => loadPipelineConfig(bad), bad, ['source.maxAbsFeature', 'source.taskFrom']);
    });

    it('spreads rotated-MNIST angles when none are given and checks given ones', () => {
      const raw = validPipeline();
      raw.source = { type: 'rotated-mnist', tasks: 4 };
      const config = loadPipelineConfig(writeJson(raw));
      assert.deepEqual(config.source, { type: 'rotated-mnist', tasks: 4, samplesPerTask: 0, angles: [0, 45, 90, 135] });

      raw.source.angles = [0, 30];
      const file = writeJson(raw);
      assertRejected(() => loadPipelineConfig(file), file, ['source.angles']);
    });

    it('resolves strategy.module relative to the pipeline file, and requires it to exist', () => {
      const moduleFile = writeFile('module.exports = () => undefined;\n', 'strategies/mine.js');
      const raw = validPipeline();
      raw.strategy = { name: 'mine', module: '../strategies/mine.js', params: {} };
      const pipelineFile = writeJson(raw, 'nested/pipe.json');
      // Beside the pipeline's folder, not in it: allowed by strategies.moduleDirs.
      const config = loadPipelineConfig(pipelineFile, { moduleDirs: [path.join(dir, 'strategies')] });
      assert.equal(config.strategy.module, moduleFile);
      assert.ok(path.isAbsolute(config.strategy.module ?? ''));

      raw.strategy.module = './missing.js';
      const broken = writeJson(raw, 'nested/broken.json');
      const error = assertRejected(() => loadPipelineConfig(broken), broken, ['strategy.module']);
      assert.ok(error.message.includes(path.join(dir, 'nested', 'missing.js')));
    });

    it('loads strategy.module only from strategies.moduleDirs, symbolic links resolved', () => {
      const raw = validPipeline();
      writeFile('module.exports = () => undefined;\n', 'beside/mine.js');
      writeFile('module.exports = () => undefined;\n', 'dirs/pipes/own.js');
      raw.strategy = { name: 'mine', module: './own.js', params: {} };
      const own = writeJson(raw, 'dirs/pipes/own.json');
      assert.equal(loadPipelineConfig(own).strategy.module, path.join(dir, 'dirs/pipes/own.js'), "the pipeline's folder is allowed by default");

      raw.strategy.module = '../../beside/mine.js';
      const outside = writeJson(raw, 'dirs/pipes/outside.json');
      const error = assertRejected(() => loadPipelineConfig(outside), outside, ['strategy.module']);
      assert.match(error.message, /outside the directories strategy modules may be loaded from .*strategies\.moduleDirs/);
      assert.equal(loadPipelineConfig(outside, { moduleDirs: [path.join(dir, 'beside')] }).strategy.module, path.join(dir, 'beside/mine.js'));
      assertRejected(() => loadPipelineConfig(own, { moduleDirs: [] }), own, ['strategy.module']);

      // A link inside an allowed folder that points outside it is outside.
      fs.symlinkSync(path.join(dir, 'beside/mine.js'), path.join(dir, 'dirs/pipes/link.js'));
      raw.strategy.module = './link.js';
      const linked = writeJson(raw, 'dirs/pipes/linked.json');
      assertRejected(() => loadPipelineConfig(linked), linked, ['strategy.module']);
    });

    it("checks a kafka source's ssl and sasl key by key, reading passwordEnv and resolving file paths", () => {
      const raw = validPipeline();
      writeFile('-----BEGIN CERTIFICATE-----\n', 'tls/ca.pem');
      raw.source = { type: 'kafka', topicPattern: 'a', ssl: { caFile: '../tls/ca.pem', rejectUnauthorized: true }, sasl: { mechanism: 'scram-sha-512', username: 'u', passwordEnv: 'LIFELONG_TEST_KAFKA_PASSWORD' } };
      const good = writeJson(raw, 'secure/good.json');
      process.env.LIFELONG_TEST_KAFKA_PASSWORD = 'from-env';
      try {
        const config = loadPipelineConfig(good);
        assert.equal(config.source.type, 'kafka');
        if (config.source.type !== 'kafka') return;
        assert.deepEqual(config.source.ssl, { caFile: path.join(dir, 'tls/ca.pem'), rejectUnauthorized: true });
        assert.deepEqual(config.source.sasl, { mechanism: 'scram-sha-512', username: 'u', password: 'from-env' });
      } finally {
        delete process.env.LIFELONG_TEST_KAFKA_PASSWORD;
      }
      assertRejected(() => loadPipelineConfig(good), good, ['source.sasl.passwordEnv']);

      raw.source = { type: 'kafka', topicPattern: 'a', ssl: { caFlie: 'x', ca: 'not pem', certFile: './missing.pem', rejectUnauthorized: 'no' }, sasl: { mechanism: 'PLAIN', user: 'u' } };
      const bad = writeJson(raw, 'secure/bad.json');
      const error = assertRejected(() => loadPipelineConfig(bad), bad, ['source.ssl.caFlie', 'source.ssl.ca', 'source.ssl.certFile', 'source.ssl.rejectUnauthorized', 'source.ssl.key', 'source.sasl.user', 'source.sasl.mechanism', 'source.sasl.username', 'source.sasl.password']);
      assert.match(error.message, /source\.sasl\.mechanism: must be one of "plain", "scram-sha-256", "scram-sha-512", got "PLAIN"/);
      assert.match(error.message, /source\.ssl\.certFile: cannot read .*missing\.pem/);
    });

    it('rejects a file that is not JSON, naming the file and the position', () => {
      const file = writeFile('{\n  "name": "x",\n  "seed": 1,\n}\n');
      const error = assertRejected(() => loadPipelineConfig(file), file, []);
      assert.match(error.message, /not valid JSON at line 4, column 1/);

      const unquoted = writeFile('{\n  "scenario": class-incremental\n}');
      assert.match(assertRejected(() => loadPipelineConfig(unquoted), unquoted, []).message, /line 2, column 15/);
    });

    it('rejects JSON that is not an object, and a missing file', () => {
      const array = writeFile('[1, 2]');
      assertRejected(() => loadPipelineConfig(array), array, []);
      const missing = path.join(dir, 'does-not-exist.json');
      assertRejected(() => loadPipelineConfig(missing), missing, []);
    });

    it('model.outputUnits is an optional initial capacity and model.maxClasses an optional cap; bad values name the file and the key', () => {
      const kafka = { type: 'kafka', brokers: ['127.0.0.1:9092'], topicPattern: 'birds\\.\\d+', inputSize: 64 };
      const raw = { ...validPipeline(), source: kafka, model: { hiddenLayers: [64] } };
      assert.deepEqual(loadPipelineConfig(writeJson(raw)).model, { hiddenLayers: [64], outputUnits: 0, maxClasses: 0 }, 'no class count anywhere');
      assert.deepEqual(loadPipelineConfig(writeJson({ ...raw, model: { hiddenLayers: [64], outputUnits: 0, maxClasses: 12 } })).model, { hiddenLayers: [64], outputUnits: 0, maxClasses: 12 });
      for (const [model, key] of [
        [{ hiddenLayers: [64], outputUnits: -1 }, 'model.outputUnits'],
        [{ hiddenLayers: [64], maxClasses: 2.5 }, 'model.maxClasses'],
        [{ hiddenLayers: [64], outputUnits: 10, maxClasses: 4 }, 'model.outputUnits'],
      ] as const) {
        const file = writeJson({ ...raw, model });
        assertRejected(() => loadPipelineConfig(file), file, [key]);
      }
    });
  });

  describe('locateJsonSyntaxError', () => {
    it('agrees with JSON.parse on randomly damaged pipeline files', () => {
      const texts = fs.readdirSync(PIPELINES).map((f) => fs.readFileSync(path.join(PIPELINES, f), 'utf8'));
      const rng = new Rng(11);
      const alphabet = '{}[],:"\\ \n0123456789.-eEtrufalsn\u0001x';
      let invalid = 0;
      for (let n = 0; n < 3000; n++) {
        let text = texts[rng.int(texts.length)] as string;
        const at = rng.int(text.length);
        const c = alphabet[rng.int(alphabet.length)] as string;
        text = rng.int(2) === 0 ? text.slice(0, at) + c + text.slice(at) : text.slice(0, at) + text.slice(at + 1);
        let parses = true;
        try {
          JSON.parse(text);
        } catch {
          parses = false;
          invalid++;
        }
        const located = locateJsonSyntaxError(text);
        assert.equal(located === undefined, parses, `disagreement on ${JSON.stringify(text)}`);
        if (located) assert.ok(located.offset <= text.length);
      }
      assert.ok(invalid > 300, 'the damage rarely broke the JSON; the test proves little');
    });
  });

  describe('loadDaemonConfig', () => {
    it('defaults equal config/default.json', () => {
      const defaults = loadDaemonConfig(undefined, {}, {});
      assert.deepEqual(defaults, {
        backend: 'auto',
        metrics: { enabled: true, host: '127.0.0.1', port: 9464, maxTasks: 100 },
        log: { level: 'info', format: 'text' },
        strategies: { moduleDirs: ['{pipeline}', '.'] },
      });
      assert.deepEqual(loadDaemonConfig(path.join(REPO, 'config', 'default.json'), {}, {}), defaults);
    });

    it('lets the environment override the file, and overrides the environment', () => {
      const file = writeJson({ backend: 'cpu', metrics: { port: 9000 } }, 'daemon.json');
      const env = { LIFELONG_METRICS_PORT: '0', LIFELONG_LOG_LEVEL: 'debug', LIFELONG_METRICS_HOST: '' };
      const config = loadDaemonConfig(file, {}, env);
      assert.equal(config.backend, 'cpu');
      assert.equal(config.metrics.port, 0);
      assert.equal(config.metrics.host, '127.0.0.1', 'an empty variable counts as unset');
      assert.equal(config.log.level, 'debug');

      const overridden = loadDaemonConfig(file, { metrics: { port: '1234' }, backend: 'wasm' }, env);
      assert.equal(overridden.metrics.port, 1234);
      assert.equal(overridden.backend, 'wasm');
    });

    it('reads process.env by default', () => {
      const saved = process.env.LIFELONG_BACKEND;
      process.env.LIFELONG_BACKEND = 'wasm';
      try {
        assert.equal(loadDaemonConfig().backend, 'wasm');
      } finally {
        if (saved === undefined) delete process.env.LIFELONG_BACKEND;
        else process.env.LIFELONG_BACKEND = saved;
      }
    });

    it('names the variable of a bad environment value', () => {
      for (const env of [{ LIFELONG_METRICS_PORT: '94a' }, { LIFELONG_METRICS_PORT: '70000' }]) {
        const error = assertRejected(() => loadDaemonConfig(undefined, {}, env), undefined, ['metrics.port']);
        assert.match(error.message, /LIFELONG_METRICS_PORT/);
      }
      const error = assertRejected(() => loadDaemonConfig(undefined, {}, { LIFELONG_BACKEND: 'gpu' }), undefined, [
        'backend',
      ]);
      assert.match(error.message, /LIFELONG_BACKEND/);
    });

    it('rejects unknown keys and wrong types in the file', () => {
      const file = writeJson({ metrics: { enabled: 'yes', prot: 1 } }, 'bad-daemon.json');
      assertRejected(() => loadDaemonConfig(file, {}, {}), file, ['metrics.enabled', 'metrics.prot']);
    });
  });
});
