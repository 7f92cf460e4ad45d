import { ConfigError } from '../core/errors';
import type { SourceConfig } from '../config/pipeline-config';
import type { Scenario } from '../core/types';
import { createEmbeddedSource, type EmbeddedSource } from './embedded';
import type { Source } from './source';

/** A source plus the output units its stream needs, where the source knows (0 = unknown). */
export interface CreatedSource {
  readonly source: Source;
  readonly outputUnits: number;
}

/** Builds the source a pipeline names. One place to add a source type (Kafka comes here). */
export function createSource(config: SourceConfig, scenario: Scenario, seed: number): CreatedSource {
  switch (config.type) {
    case 'split-mnist':
    case 'permuted-mnist':
    case 'rotated-mnist': {
      const source: EmbeddedSource = createEmbeddedSource({
        dataset: config.type,
        tasks: config.tasks,
        samplesPerTask: config.samplesPerTask,
        ...(config.type === 'rotated-mnist' && config.angles.length > 0 ? { angles: config.angles } : {}),
        seed,
        scenario,
      });
      return { source, outputUnits: source.outputUnits };
    }
    case 'kafka':
      throw new ConfigError('the kafka source is being wired', undefined, 'source.type');
  }
}
