import * as assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from './ports';

/** The repository's root (tests run compiled from dist/test/...). */
export const REPO = path.resolve(__dirname, '../../..');

/** The alert rules the stack loads (docker/compose.yml mounts this directory). */
export const RULES_FILE = path.join(REPO, 'docker', 'prometheus', 'rules', 'lifelong.yml');

/**
 * An executable of a Debian package (prometheus, promtool, prometheus-alertmanager) on PATH or in
 * /usr/bin; a test fails, naming the package, when it is missing.
 */
export function findBinary(name: string, debianPackage: string): string {
  const dirs = (process.env['PATH'] ?? '').split(path.delimiter).filter((d) => d !== '');
  for (const candidate of [...dirs.map((d) => path.join(d, name)), path.join('/usr/bin', name)]) {
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return assert.fail(`${name} not found on PATH or in /usr/bin: install the Debian package (apt-get install -y ${debianPackage}) to run this integration test`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface VectorSample {
  readonly metric: Record<string, string>;
  readonly value: [number, string];
}

/** An alert as Prometheus's /api/v1/alerts reports it. */
export interface PrometheusAlert {
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
  readonly state: 'pending' | 'firing';
  readonly value: string;
}

/** A rule as /api/v1/rules reports it. */
export interface PrometheusRule {
  readonly type: 'alerting' | 'recording';
  readonly name: string;
  readonly query: string;
  readonly duration?: number;
  readonly annotations?: Record<string, string>;
}

export interface PrometheusOptions {
  /** Scrape targets by job name, host:port. */
  readonly jobs: Readonly<Record<string, readonly string[]>>;
  /** Rule files to load (evaluated every second). */
  readonly ruleFiles?: readonly string[];
  /** Alertmanager to send alerts to, host:port. */
  readonly alertmanager?: string;
}

/** A real Prometheus (Debian's, 2.42) scraping and evaluating every second, in a temporary directory. */
export class PrometheusProcess {
  private child: ChildProcess | undefined;
  private log = '';
  private exit: string | undefined;
  api = '';
  private readonly tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lifelong-prom-'));

  static async start(options: PrometheusOptions): Promise<PrometheusProcess> {
    const prometheus = new PrometheusProcess();
    await prometheus.run(options);
    return prometheus;
  }

  private async run(options: PrometheusOptions): Promise<void> {
    const binary = findBinary('prometheus', 'prometheus');
    const config = [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      '  evaluation_interval: 1s',
      ...(options.ruleFiles ? ['rule_files:', ...options.ruleFiles.map((f) => `  - ${JSON.stringify(f)}`)] : []),
      ...(options.alertmanager ? ['alerting:', '  alertmanagers:', '    - static_configs:', `        - targets: ['${options.alertmanager}']`] : []),
      'scrape_configs:',
      ...Object.entries(options.jobs).flatMap(([job, targets]) => [`  - job_name: ${job}`, '    static_configs:', `      - targets: [${targets.map((t) => `'${t}'`).join(', ')}]`]),
      '',
    ].join('\n');
    fs.writeFileSync(path.join(this.tmp, 'prom.yml'), config);
    const port = await freePort();
    this.api = `http://127.0.0.1:${port}`;
    const child = spawn(binary, [`--config.file=${path.join(this.tmp, 'prom.yml')}`, `--storage.tsdb.path=${path.join(this.tmp, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const keep = (chunk: Buffer): void => void (this.log = (this.log + chunk.toString()).slice(-8000));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.once('exit', (code, signal) => (this.exit = `code ${code}, signal ${signal}`));
    child.once('error', (error) => (this.exit = `spawn error: ${error.message}`));
    await this.waitFor('prometheus to be ready', async () => ((await fetch(`${this.api}/-/ready`)).ok ? true : undefined));
  }

  /** Polls until `check` returns a value (not undefined) or `timeoutMs` passed. */
  async waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let lastError: unknown;
    while (Date.now() < deadline) {
      if (this.exit !== undefined) assert.fail(`prometheus exited (${this.exit}) while waiting for ${what}:\n${this.log}`);
      try {
        const result = await check();
        if (result !== undefined) return result;
      } catch (error) {
        lastError = error;
      }
      await sleep(250);
    }
    return assert.fail(`timed out after ${timeoutMs} ms waiting for ${what} (last error: ${String(lastError)})\n${this.log}`);
  }

  /** An instant query; a PromQL error fails the test. */
  async query(promql: string): Promise<VectorSample[]> {
    const res = await fetch(`${this.api}/api/v1/query?query=${encodeURIComponent(promql)}`);
    const body = (await res.json()) as { status: string; data?: { resultType: string; result: VectorSample[] | [number, string] }; error?: string };
    assert.equal(body.status, 'success', `query ${promql} failed: ${body.error}`);
    const result = body.data?.result ?? [];
    // A scalar (time(), vector(0) folded) is one sample without labels.
    return body.data?.resultType === 'scalar' ? [{ metric: {}, value: result as [number, string] }] : (result as VectorSample[]);
  }

  async alerts(): Promise<PrometheusAlert[]> {
    const body = (await (await fetch(`${this.api}/api/v1/alerts`)).json()) as { data: { alerts: PrometheusAlert[] } };
    return body.data.alerts;
  }

  async rules(): Promise<PrometheusRule[]> {
    const body = (await (await fetch(`${this.api}/api/v1/rules`)).json()) as { data: { groups: { rules: PrometheusRule[] }[] } };
    return body.data.groups.flatMap((g) => g.rules);
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child !== undefined && this.exit === undefined) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    fs.rmSync(this.tmp, { recursive: true, force: true });
  }
}

/** An alert as Alertmanager posts it to a webhook. */
export interface WebhookAlert {
  readonly status: 'firing' | 'resolved';
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
}

/**
 * A real Alertmanager (Debian's prometheus-alertmanager, 0.25) that sends every alert at once to a
 * webhook in this process; `received` holds what it posted.
 */
export class AlertmanagerProcess {
  readonly received: WebhookAlert[] = [];
  address = '';
  private child: ChildProcess | undefined;
  private webhook: import('node:http').Server | undefined;
  private log = '';
  private exit: string | undefined;
  private readonly tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lifelong-am-'));

  static async start(): Promise<AlertmanagerProcess> {
    const alertmanager = new AlertmanagerProcess();
    await alertmanager.run();
    return alertmanager;
  }

  private async run(): Promise<void> {
    const http = await import('node:http');
    this.webhook = http.createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        try {
          this.received.push(...(JSON.parse(body) as { alerts: WebhookAlert[] }).alerts);
        } finally {
          res.end();
        }
      });
    });
    const hookPort = await new Promise<number>((resolve) => this.webhook!.listen(0, '127.0.0.1', () => resolve((this.webhook!.address() as import('node:net').AddressInfo).port)));
    fs.writeFileSync(
      path.join(this.tmp, 'alertmanager.yml'),
      [
        'route:',
        '  receiver: test',
        "  group_by: ['alertname', 'instance', 'strategy', 'task']",
        '  group_wait: 0s',
        '  group_interval: 1s',
        '  repeat_interval: 1h',
        'receivers:',
        '  - name: test',
        '    webhook_configs:',
        `      - url: http://127.0.0.1:${hookPort}/`,
        '',
      ].join('\n'),
    );
    const port = await freePort();
    this.address = `127.0.0.1:${port}`;
    const child = spawn(findBinary('prometheus-alertmanager', 'prometheus-alertmanager'), [`--config.file=${path.join(this.tmp, 'alertmanager.yml')}`, `--storage.path=${path.join(this.tmp, 'data')}`, `--web.listen-address=${this.address}`, '--cluster.listen-address=', '--log.level=warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const keep = (chunk: Buffer): void => void (this.log = (this.log + chunk.toString()).slice(-8000));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.once('exit', (code, signal) => (this.exit = `code ${code}, signal ${signal}`));
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (this.exit !== undefined) assert.fail(`alertmanager exited (${this.exit}):\n${this.log}`);
      try {
        if ((await fetch(`http://${this.address}/-/ready`)).ok) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) assert.fail(`alertmanager not ready after 30 s:\n${this.log}`);
      await sleep(200);
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child !== undefined && this.exit === undefined) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await exited;
    }
    await new Promise<void>((resolve) => (this.webhook ? this.webhook.close(() => resolve()) : resolve()));
    fs.rmSync(this.tmp, { recursive: true, force: true });
  }
}
