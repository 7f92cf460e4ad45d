import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadPipelineConfig } from '../../src/config/pipeline-config';
import { brokerScriptPath } from '../helpers/kafka';
import { findBinary, REPO } from '../helpers/prometheus';

/**
 * docker/compose.yml without a Docker engine: valid against the Compose Specification's JSON schema
 * (test/fixtures/compose-spec), every file it mounts or runs exists, and the configs it mounts pass
 * their own tools (promtool, amtool). Where a Docker CLI with the compose plugin exists,
 * `docker compose config` checks it too.
 */

const DOCKER = path.join(REPO, 'docker');
const COMPOSE = path.join(DOCKER, 'compose.yml');

interface Service {
  readonly image?: string;
  readonly build?: { readonly context: string; readonly dockerfile: string };
  readonly command?: readonly string[];
  readonly environment?: Record<string, string | number>;
  readonly volumes?: readonly string[];
  readonly depends_on?: Record<string, unknown> | readonly string[];
}

function composeFile(): { services: Record<string, Service>; volumes: Record<string, unknown> } {
  const run = spawnSync('python3', [path.join(REPO, 'test', 'helpers', 'validate_compose.py'), path.join(REPO, 'test', 'fixtures', 'compose-spec', 'compose-spec.json'), COMPOSE], { encoding: 'utf8' });
  assert.equal(run.error, undefined, `python3 is needed to validate the compose file: ${run.error?.message}`);
  assert.ok(!/No module named/.test(run.stderr), `the validator needs PyYAML and jsonschema (pip install pyyaml jsonschema): ${run.stderr}`);
  assert.equal(run.status, 0, `docker/compose.yml breaks the Compose Specification:\n${run.stderr}`);
  return JSON.parse(run.stdout);
}

describe('docker/compose.yml: the production stack (integration, no Docker engine)', function () {
  this.timeout(30_000);
  const compose = composeFile();
  const { services } = compose;

  it('is valid against the Compose Specification schema and has the stack\'s services', () => {
    assert.deepEqual(Object.keys(services).sort(), ['alertmanager', 'grafana', 'kafka', 'lifelong', 'lifelong-finetune', 'producer', 'prometheus']);
  });

  it('Kafka 4 in KRaft mode from the apache/kafka image, the version the tests run', () => {
    const kafka = services['kafka'] as Service;
    const version = /KAFKA_VERSION = '([^']+)'/.exec(fs.readFileSync(brokerScriptPath(), 'utf8'))?.[1];
    assert.equal(kafka.image, `apache/kafka:${version}`);
    assert.match(String(kafka.environment?.['KAFKA_PROCESS_ROLES']), /controller/);
    assert.equal(kafka.environment?.['KAFKA_ADVERTISED_LISTENERS'], 'PLAINTEXT://kafka:9092');
  });

  it('the daemons and the producer run the image of docker/Dockerfile with pipelines that exist, checkpoints in volumes', () => {
    for (const name of ['lifelong', 'lifelong-finetune', 'producer']) {
      const service = services[name] as Service;
      assert.ok(service.build, `${name} is built from the repository`);
      assert.ok(fs.existsSync(path.resolve(DOCKER, service.build.context, service.build.dockerfile)), `${name}: ${service.build.dockerfile} exists`);
    }
    for (const name of ['lifelong', 'lifelong-finetune']) {
      const service = services[name] as Service;
      const pipeline = service.command?.[(service.command?.indexOf('--pipeline') ?? -2) + 1];
      assert.ok(pipeline, `${name} runs a pipeline`);
      const config = loadPipelineConfig(path.join(REPO, pipeline));
      assert.equal(config.source.type, 'kafka');
      assert.equal(service.environment?.['LIFELONG_KAFKA_BROKERS'], 'kafka:9092');
      assert.equal(service.environment?.['LIFELONG_METRICS_HOST'], '0.0.0.0', 'metrics reachable by Prometheus');
      const checkpoints = (service.volumes ?? []).find((v) => v.endsWith(':/app/checkpoints'));
      assert.ok(checkpoints && checkpoints.split(':')[0]! in compose.volumes, `${name} keeps its checkpoints in a named volume`);
    }
    assert.deepEqual((services['producer'] as Service).command?.slice(0, 3), ['produce', '--dataset', 'split-mnist']);
  });

  it('every directory it mounts exists; Prometheus loads the alert rules and scrapes both daemons; Grafana gets the generated provisioning', () => {
    for (const [name, service] of Object.entries(services)) {
      for (const volume of service.volumes ?? []) {
        const host = volume.split(':')[0] as string;
        if (host.startsWith('.')) assert.ok(fs.existsSync(path.resolve(DOCKER, host)), `${name} mounts ${host}, which exists`);
      }
    }
    const prometheusConfig = fs.readFileSync(path.join(DOCKER, 'prometheus', 'prometheus.yml'), 'utf8');
    assert.match(prometheusConfig, /rules\/lifelong\.yml/);
    assert.match(prometheusConfig, /'lifelong:9464', 'lifelong-finetune:9464'/);
    for (const file of ['datasources/prometheus.yml', 'dashboards/lifelong.yml', 'dashboards/lifelong-pipeline.json', 'dashboards/lifelong-fleet.json']) {
      assert.ok(fs.existsSync(path.join(DOCKER, 'grafana', 'provisioning', file)), `grafana provisioning ${file}`);
    }
  });

  it('promtool check config and amtool check-config accept the configs it mounts', () => {
    const prom = execFileSync(findBinary('promtool', 'prometheus'), ['check', 'config', path.join(DOCKER, 'prometheus', 'prometheus.yml')], { encoding: 'utf8' });
    assert.match(prom, /SUCCESS: 1 rule files found/);
    const am = execFileSync(findBinary('amtool', 'prometheus-alertmanager'), ['check-config', path.join(DOCKER, 'alertmanager', 'alertmanager.yml')], { encoding: 'utf8' });
    assert.match(am, /SUCCESS/);
  });

  it('docker compose config accepts it where a Docker CLI with the compose plugin exists', () => {
    const plugin = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' });
    if (plugin.status !== 0) {
      console.log('      no `docker compose` here: validated against the schema only');
      return;
    }
    const config = spawnSync('docker', ['compose', '-f', COMPOSE, 'config', '--quiet'], { encoding: 'utf8' });
    assert.equal(config.status, 0, config.stderr);
  });
});
