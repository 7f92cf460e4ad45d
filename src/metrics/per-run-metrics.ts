import { AggregatorRegistry, Registry } from 'prom-client';
import { InvariantError } from '../core/errors';
import type { MetricsSource } from './http-server';
import { collectProcessMetrics, LifelongMetrics } from './prometheus';

export interface PerRunMetricsOptions {
  /**
   * Label each run's series with strategy="<name>", so that several runs on one stream
   * (`lifelong run --compare`) are published side by side. Without it there is one run.
   */
  readonly labelByStrategy: boolean;
  /** Tasks exported per metric in each run (LifelongMetricsOptions.maxTasks). */
  readonly maxTasks?: number;
}

/**
 * What `lifelong run` serves on /metrics: each run has a LifelongMetrics of its own (its counters
 * start at zero), and a scrape returns every run so far, the finished ones at their final values.
 * The process metrics belong to the process, not to a run: they are served once, unlabelled.
 */
export class PerRunMetrics implements MetricsSource {
  private readonly process = new Registry();
  private readonly runs: LifelongMetrics[] = [];
  private readonly strategies = new Set<string>();

  constructor(private readonly options: PerRunMetricsOptions) {
    collectProcessMetrics(this.process);
  }

  /** The metrics a new run publishes to. */
  startRun(strategy: string): LifelongMetrics {
    // Two runs on the same series would each overwrite the other's values.
    if (this.options.labelByStrategy ? this.strategies.has(strategy) : this.runs.length > 0) {
      throw new InvariantError(`PerRunMetrics: a run of ${strategy} cannot share the series of an earlier run`);
    }
    const run = new LifelongMetrics({ defaultMetrics: false, ...(this.options.labelByStrategy ? { strategy } : {}), ...(this.options.maxTasks !== undefined ? { maxTasks: this.options.maxTasks } : {}) });
    this.runs.push(run);
    this.strategies.add(strategy);
    return run;
  }

  get contentType(): string {
    return this.process.contentType;
  }

  async metrics(): Promise<string> {
    const registries = [this.process, ...this.runs.map((run) => run.registry)];
    const families = await Promise.all(registries.map((registry) => registry.getMetricsAsJSON()));
    // No two registries hold the same series (a run's strategy label tells them apart), so
    // aggregating with "first" only groups each metric's series under one HELP and TYPE.
    return AggregatorRegistry.aggregate(families.map((metrics) => metrics.map((metric) => ({ ...metric, aggregator: 'first' })))).metrics();
  }
}
