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
 * What a daemon of several leased pipelines (`lifelong run --pipelines DIR`) serves: each pipeline's
 * run labelled pipeline="<name>", only while this daemon runs it. A pipeline handed to another
 * daemon leaves this one's /metrics, so no series is published by two daemons at once.
 */
export class PerPipelineMetrics implements MetricsSource {
  private readonly process = new Registry();
  private readonly runs = new Map<string, LifelongMetrics>();

  constructor(private readonly maxTasks?: number) {
    collectProcessMetrics(this.process);
  }

  /** The metrics of a pipeline's new term here (its counters from zero, its gauges set on resume). */
  startRun(pipeline: string): LifelongMetrics {
    if (this.runs.has(pipeline)) throw new InvariantError(`PerPipelineMetrics: pipeline ${pipeline} already runs here`);
    const run = new LifelongMetrics({ defaultMetrics: false, pipeline, ...(this.maxTasks !== undefined ? { maxTasks: this.maxTasks } : {}) });
    this.runs.set(pipeline, run);
    return run;
  }

  /** The pipeline stopped here: its series go. */
  endRun(pipeline: string): void {
    this.runs.delete(pipeline);
  }

  get contentType(): string {
    return this.process.contentType;
  }

  metrics(): Promise<string> {
    return aggregate([this.process, ...[...this.runs.values()].map((run) => run.registry)]);
  }
}

/**
 * The registries' series under one HELP and TYPE per metric: no two registries hold the same
 * series (a run's strategy or pipeline label tells them apart), so aggregating with "first" only groups them.
 */
async function aggregate(registries: readonly Registry[]): Promise<string> {
  const families = await Promise.all(registries.map((registry) => registry.getMetricsAsJSON()));
  return AggregatorRegistry.aggregate(families.map((metrics) => metrics.map((metric) => ({ ...metric, aggregator: 'first' })))).metrics();
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

  metrics(): Promise<string> {
    return aggregate([this.process, ...this.runs.map((run) => run.registry)]);
  }
}
