// The strategy checks need these too, so they live in src/testing; tests keep importing them from here.
export { batches, firstSplitTask, takeSamples } from '../../src/testing/mnist-tasks';
