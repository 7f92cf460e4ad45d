import { builtinStrategies } from '../../src/strategies/registry';
import { strategyChecks } from '../../src/testing/check-strategy';

/**
 * The public conformance checks (checkStrategy) over every built-in strategy, one test per check:
 * whatever the method, it must learn, free its tensors, survive export/import unchanged and
 * survive degenerate batches.
 */
for (const descriptor of builtinStrategies().all()) {
  describe(`strategy conformance: ${descriptor.name}`, () => {
    for (const check of strategyChecks(descriptor)) {
      it(check.name, async () => {
        await check.run();
      });
    }
  });
}
