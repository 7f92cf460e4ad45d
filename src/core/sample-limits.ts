/**
 * What a source accepts of its input, as plain data: the Kafka codec applies it, the pipeline
 * config sets it.
 */

/** Where a message's task comes from: its topic only, or a lifelong-task header where present. */
export type TaskFrom = 'topic' | 'header';
export const TASK_FROM: readonly TaskFrom[] = ['topic', 'header'];

/**
 * The default bound on |feature|. Large for any real input (pixels in [0, 1] or [0, 255],
 * standardised values), and safe for float32 products: a weight's gradient sums x·delta over a
 * batch (|delta| <= 1 at a softmax output), so with 256 samples |g| <= 2.6e8 and the g² of Adam's
 * second moment and of the Fisher diagonals <= 7e16; activations grow by about fan-in x |w| per
 * layer (784 x 0.05), so three layers stay near 1e12, and their squares far below float32's 3.4e38.
 * 3e38, a finite float32, overflows in the first layer's products.
 */
export const DEFAULT_MAX_ABS_FEATURE = 1e6;
