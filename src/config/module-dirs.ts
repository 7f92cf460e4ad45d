/**
 * Where a pipeline's `strategy.module` may be loaded from. Loading a module runs its code with the
 * daemon's rights, so a pipeline file must not be able to name any file on the machine (a
 * world-writable /tmp, an upload directory): only files under the directories of the daemon
 * config's `strategies.moduleDirs`.
 *
 * The default is the pipeline file's own folder and the working directory. Whoever can write a
 * pipeline file's folder can already change what it runs, and the working directory is where the
 * daemon is installed and started from (the container's /app, a checkout), which the operator
 * controls: the shipped examples (`../dist/examples/...`) load from there. Anything else must be
 * listed, and an empty list allows no module at all.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ConfigIssue } from './config-issue';

/** '{pipeline}' stands for the pipeline file's folder. */
export const PIPELINE_DIR = '{pipeline}';
export const DEFAULT_MODULE_DIRS: readonly string[] = [PIPELINE_DIR, '.'];

/** The directories, absolute and with symbolic links resolved (a missing one is left out). */
export function moduleDirs(dirs: readonly string[], pipelineFolder: string): string[] {
  const real: string[] = [];
  for (const dir of dirs) {
    try {
      real.push(fs.realpathSync(dir === PIPELINE_DIR ? pipelineFolder : path.resolve(dir)));
    } catch {
      // A directory that does not exist holds no module.
    }
  }
  return real;
}

/**
 * Adds an issue (key strategy.module) unless `module` (absolute, existing) lies under one of
 * `dirs`. Symbolic links are resolved first, so neither the module nor a link on its way can
 * lead outside.
 */
export function checkModuleDir(module: string, dirs: readonly string[], pipelineFolder: string, issues: ConfigIssue[]): void {
  const file = fs.realpathSync(module);
  const allowed = moduleDirs(dirs, pipelineFolder);
  const inside = allowed.some((dir) => {
    const relative = path.relative(dir, file);
    return relative !== '' && relative.split(path.sep)[0] !== '..' && !path.isAbsolute(relative);
  });
  if (inside) return;
  const listed = dirs.length === 0 ? 'none: strategies.moduleDirs is empty' : dirs.map((d) => (d === PIPELINE_DIR ? `${PIPELINE_DIR} (${pipelineFolder})` : path.resolve(d))).join(', ');
  issues.push({
    key: 'strategy.module',
    problem: `${file} is outside the directories strategy modules may be loaded from (${listed}); move it there or add its directory to strategies.moduleDirs in the daemon config`,
  });
}
