import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

const REPO = path.resolve(__dirname, '../../..');

/** Dockerfile instructions with their continuation lines joined; comments dropped. */
function instructions(text: string): { readonly keyword: string; readonly args: string }[] {
  const joined = text.replace(/\\\n/g, ' ');
  return joined
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const [keyword, ...rest] = line.split(/\s+/);
      return { keyword: (keyword ?? '').toUpperCase(), args: rest.join(' ') };
    });
}

/** The install commands of .ci/run: every `npm ci` and `npm run setup:native` line. */
function ciInstallSteps(): string[] {
  const ci = fs.readFileSync(path.join(REPO, '.ci', 'run'), 'utf8');
  return ci
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => /^npm (ci|run setup:native)\b/.test(line));
}

/**
 * No Docker engine runs here, so the image is checked as text: it must install with exactly the
 * steps CI runs (and tests), be multi-stage and non-root, and keep its health check and volume.
 */
describe('docker/Dockerfile', () => {
  const all = instructions(fs.readFileSync(path.join(REPO, 'docker', 'Dockerfile'), 'utf8'));
  const stages = all.reduce<{ keyword: string; args: string }[][]>((acc, i) => {
    if (i.keyword === 'FROM') acc.push([]);
    acc[acc.length - 1]?.push(i);
    return acc;
  }, []);
  const runtime = stages[stages.length - 1] ?? [];

  it("installs the npm tree and native TensorFlow with .ci/run's commands, in the same order", () => {
    const steps = ciInstallSteps();
    assert.deepEqual(steps, ['npm ci --ignore-scripts --no-audit --no-fund', 'npm run setup:native']);
    const runs = all.filter((i) => i.keyword === 'RUN').map((i) => i.args);
    const positions = steps.map((step) => runs.indexOf(step));
    assert.ok(positions.every((p) => p >= 0), `RUN steps ${JSON.stringify(runs)} lack one of ${JSON.stringify(steps)}`);
    assert.deepEqual([...positions].sort((a, b) => a - b), positions);
  });

  it('is multi-stage: the runtime stage copies the build output and installs nothing', () => {
    assert.ok(stages.length >= 2, 'at least a build and a runtime stage');
    const copiedFromBuild = runtime.filter((i) => i.keyword === 'COPY' && i.args.startsWith('--from=')).map((i) => i.args);
    for (const what of ['/opt/lifelong', '/app/node_modules', '/app/dist']) {
      assert.ok(copiedFromBuild.some((a) => a.includes(what)), `runtime copies ${what} from the build stage`);
    }
    assert.ok(!runtime.some((i) => i.keyword === 'RUN' && /\b(npm|apt-get|pip)\b/.test(i.args)), 'no installs at run time');
  });

  it('runs as a non-root user, with a health check on /healthz and the checkpoints volume', () => {
    const user = runtime.filter((i) => i.keyword === 'USER').pop();
    assert.ok(user !== undefined && !/^(root|0)(:|$)/.test(user.args), 'USER is set and not root');
    const health = runtime.find((i) => i.keyword === 'HEALTHCHECK');
    assert.ok(health?.args.includes('/healthz'), 'HEALTHCHECK requests /healthz');
    assert.ok(runtime.some((i) => i.keyword === 'VOLUME' && i.args.includes('/app/checkpoints')));
    const env = runtime.filter((i) => i.keyword === 'ENV').map((i) => i.args).join(' ');
    assert.match(env, /LIFELONG_CHECKPOINT_DIRECTORY=\/app\/checkpoints/);
    const port = /LIFELONG_METRICS_PORT=(\d+)/.exec(env)?.[1];
    assert.ok(runtime.some((i) => i.keyword === 'EXPOSE' && i.args === port), `EXPOSE ${port}`);
  });

  it('sets only environment variables that the daemon or setup:native reads', () => {
    const sources = [
      fs.readFileSync(path.join(REPO, 'src', 'config', 'daemon-config.ts'), 'utf8'),
      fs.readFileSync(path.join(REPO, 'src', 'cli', 'run-command.ts'), 'utf8'),
      fs.readFileSync(path.join(REPO, 'scripts', 'setup-native.js'), 'utf8'),
    ].join('\n');
    const names = all
      .filter((i) => i.keyword === 'ENV')
      .flatMap((i) => [...i.args.matchAll(/([A-Z_][A-Z0-9_]*)=/g)].map((m) => m[1] as string))
      .filter((name) => name.startsWith('LIFELONG_'));
    assert.ok(names.length > 0);
    for (const name of names) assert.ok(sources.includes(name), `${name} is read somewhere`);
  });

  it("copies into the build stage every folder tsconfig.json compiles (npm run build runs there)", () => {
    const tsconfig = JSON.parse(fs.readFileSync(path.join(REPO, 'tsconfig.json'), 'utf8')) as { include: string[] };
    const build = stages[0] ?? [];
    const copied = build.filter((i) => i.keyword === 'COPY' && !i.args.startsWith('--from=')).flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    for (const folder of new Set(tsconfig.include.map((glob) => glob.split('/')[0] as string))) assert.ok(copied.includes(folder), `COPY ${folder} before npm run build`);
  });

  it('copies only paths that exist in the repository', () => {
    for (const i of all.filter((x) => x.keyword === 'COPY' && !x.args.startsWith('--from='))) {
      const sources = i.args.split(/\s+/).slice(0, -1);
      for (const source of sources) assert.ok(fs.existsSync(path.join(REPO, source)), `COPY ${source}`);
    }
  });
});
