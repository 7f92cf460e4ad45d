/**
 * A command's help, in two parts so that `lifelong help` can list every synopsis first and every
 * description after, while `lifelong COMMAND --help` shows the same text for one command.
 */
export interface CommandUsage {
  /** `  lifelong NAME OPTIONS...`, continuation lines indented. */
  readonly synopsis: string;
  /** What the command does and what each option means. */
  readonly description: string;
}

/** `lifelong COMMAND --help`. */
export function formatCommandUsage(usage: CommandUsage): string {
  return `Usage:\n${usage.synopsis}\n\n${usage.description}`;
}
