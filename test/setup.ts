import { selectBackend } from '../src/backend/backend';
import { stopKafka } from './helpers/kafka';

/**
 * Mocha root hooks: every test file runs on one tensor backend, chosen once like the daemon does
 * (auto: native TensorFlow where installed, else wasm). LIFELONG_TEST_BACKEND picks another.
 */
export const mochaHooks = {
  async beforeAll(this: Mocha.Context): Promise<void> {
    this.timeout(60_000);
    const wanted = (process.env.LIFELONG_TEST_BACKEND ?? 'auto') as Parameters<typeof selectBackend>[0];
    const selection = await selectBackend(wanted, () => undefined);
    process.stderr.write(`tests run on the ${selection.name} backend\n`);
  },
  /** The Kafka broker that test/helpers/kafka.ts started on demand (if any) ends with the run. */
  async afterAll(this: Mocha.Context): Promise<void> {
    this.timeout(60_000);
    await stopKafka();
  },
};
