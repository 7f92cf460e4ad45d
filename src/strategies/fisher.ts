import * as tf from '@tensorflow/tfjs';
import { oneHotTargets } from '../models/gradient-step';
import type { Head, MultiHeadMlp } from '../models/mlp';
import type { Rng } from '../core/rng';

/**
 * Which labels the Fisher's log-likelihood gradients use:
 * - 'predicted': the model's own most probable class (van de Ven & Tolias's default);
 * - 'sampled': a class drawn from the model's predictive distribution (the true Fisher, in expectation);
 * - 'true': the sample's label (the "empirical Fisher").
 */
export type FisherLabels = 'predicted' | 'sampled' | 'true';

/**
 * Diagonal Fisher information of one batch, exactly, from per-sample gradients.
 *
 * EWC needs E[(d log p(y|x) / d theta)^2] per parameter: the square of each *sample's* gradient,
 * not the square of a batch gradient. For a dense layer with inputs A (batch x in) and per-sample
 * gradients of its pre-activations D (batch x out), the per-sample kernel gradient is the outer
 * product a_i d_i^T, so sum_i (a_i d_i^T)^2 = (A*A)^T (D*D) (Goodfellow 2015), one matmul; the bias
 * gets the column sums of D*D. D comes from differentiating the summed loss with respect to zero
 * "taps" added to each pre-activation: the samples are independent, so row i of that gradient is
 * sample i's own.
 *
 * Returns, for the trunk layers and the head, the mean over the batch of the squared per-sample
 * gradients, keyed like MultiHeadMlp.namedVariables() and shaped like the variables (the head's
 * inactive units get zero). The caller owns the returned tensors.
 */
export function batchFisher(
  model: MultiHeadMlp,
  head: Head,
  x: tf.Tensor2D,
  trueUnits: tf.Tensor1D,
  labels: FisherLabels,
  rng: Rng,
): Record<string, tf.Tensor> {
  const batchSize = x.shape[0];
  const active = Math.max(1, head.labels.size);
  const targets = labels === 'true' ? trueUnits : fisherTargets(model, head, x, labels, rng);
  const layers = [...model.trunk, head.layer];
  const kept: tf.Tensor2D[] = [];
  try {
    return tf.tidy(() => {
      const taps = layers.map((layer, i) => tf.zeros([batchSize, i < model.trunk.length ? layer.kernel.shape[1] : active]) as tf.Tensor2D);
      const perSampleGrads = tf.grads((...t: tf.Tensor[]) => {
        const pass = model.forward(x, head, t as tf.Tensor2D[]);
        // The forward pass runs in a scope that frees its intermediates; keep the layer inputs.
        for (const input of pass.layerInputs) kept.push(tf.keep(input.clone()));
        const logp = tf.logSoftmax(pass.logits);
        return tf.neg(tf.sum(tf.mul(logp, oneHotTargets(targets, active))));
      })(taps);
      const fisher: Record<string, tf.Tensor> = {};
      layers.forEach((layer, i) => {
        const a2 = tf.square(kept[i] as tf.Tensor2D);
        const d2 = tf.square(perSampleGrads[i] as tf.Tensor2D);
        let kernel = tf.div(tf.matMul(a2, d2, true, false), batchSize) as tf.Tensor2D;
        let bias = tf.div(tf.sum(d2, 0), batchSize) as tf.Tensor1D;
        const missing = layer.kernel.shape[1] - kernel.shape[1];
        if (missing > 0) {
          kernel = tf.pad(kernel, [[0, 0], [0, missing]]);
          bias = tf.pad(bias, [[0, missing]]);
        }
        fisher[`${layer.name}.kernel`] = kernel;
        fisher[`${layer.name}.bias`] = bias;
      });
      return fisher;
    });
  } finally {
    for (const t of kept) t.dispose();
    if (targets !== trueUnits) targets.dispose();
  }
}

/** The labels the model itself would give: its argmax, or a draw from its softmax. */
function fisherTargets(model: MultiHeadMlp, head: Head, x: tf.Tensor2D, labels: 'predicted' | 'sampled', rng: Rng): tf.Tensor1D {
  return tf.tidy(() => {
    const { logits } = model.forward(x, head);
    if (labels === 'predicted') return tf.cast(tf.argMax(logits, 1), 'int32') as tf.Tensor1D;
    const probs = tf.softmax(logits).arraySync() as number[][];
    const drawn = probs.map((p) => {
      let u = rng.next();
      for (let k = 0; k < p.length; k++) {
        u -= p[k] as number;
        if (u <= 0) return k;
      }
      return p.length - 1;
    });
    return tf.tensor1d(drawn, 'int32');
  });
}
