/**
 * Synaptic Intelligence (Zenke, Poole & Ganguli 2017, "Continual Learning Through Synaptic
 * Intelligence"), written only against lifelong's public API: a user's strategy, not a built-in.
 *
 * SI measures each parameter's importance while the task streams by, as the parameter's share in
 * the drop of the loss along the training path: after every gradient step, w_k += -g_k * Δθ_k
 * (the gradient applied times the change it caused). At the task's end that path integral is
 * normalised by how far the parameter moved over the task,
 *     Ω_k += w_k / ((θ_k(end) - θ_k(start))² + ξ),
 * and later tasks pay c * Σ_k Ω_k (θ_k - θ̃_k)² for moving it away from θ̃ (the weights at the end
 * of the previous task). Unlike EWC it needs no extra pass over the task's data to measure a
 * Fisher: the importance comes for free from the steps the learner takes anyway, which suits a
 * single-pass stream. The details follow van de Ven & Tolias's implementation (the reference for
 * the three-scenario numbers): the gradient is the one applied (task loss plus the SI penalty),
 * ξ = 0.1, and Ω accumulates over tasks.
 *
 * Load it from a pipeline with `"strategy": {"name": "si", "module": "<path to the compiled .js>"}`
 * (pipelines/split-mnist-si-class.json), check it with `checkStrategy(strategy.create)`.
 */
import {
  copyParameters,
  defineStrategy,
  disposeParameters,
  exportParameters,
  growParameters,
  importParameters,
  MlpStrategy,
  quadraticPenalty,
  readParams,
  tf,
  type GrowthContext,
  type ParameterTensors,
  type Regularizer,
  type RegularizerState,
  type StepContext,
  type TrainingContext,
} from 'lifelong';

const SI_PARAMS = {
  c: { type: 'number', default: 100, min: 0, doc: 'Strength c of the surrogate loss c * sum_k Omega_k (theta_k - theta~_k)^2 (100 suits single-pass streams; the three-scenario protocol uses more).' },
  xi: { type: 'number', default: 0.1, min: 0, exclusiveMin: true, doc: "Damping xi of Omega's normalisation by the squared parameter change over the task." },
} as const;

/** Names of the state's tensor groups (exported under these prefixes). */
const STATE = { omega: 'si.omega', anchor: 'si.anchor', path: 'si.path', start: 'si.start' } as const;

class SynapticIntelligence implements Regularizer {
  /** Ω: the consolidated importance of each parameter, over the tasks learned so far. */
  private omega: ParameterTensors | undefined;
  /** θ̃: the weights at the end of the previous task. */
  private anchor: ParameterTensors | undefined;
  /** w: this task's path integral, a variable per parameter, added to in place at every step. */
  private path: Record<string, tf.Variable> = {};
  /** θ(start): each parameter's value before its first step in this task. */
  private start: ParameterTensors = {};

  constructor(
    private readonly c: number,
    private readonly xi: number,
  ) {}

  penalty({ model }: TrainingContext): tf.Scalar | undefined {
    // quadraticPenalty is (λ/2) Σ w (θ - a)²; SI's surrogate loss has no 1/2.
    return this.anchor && this.omega && this.c > 0 ? quadraticPenalty(model, this.anchor, this.omega, 2 * this.c) : undefined;
  }

  /** Inside the step's tf.tidy: what is created here is freed with the step unless kept. */
  afterStep({ model, variables, gradients, updates }: StepContext): void {
    const names = new Map<tf.Variable, string>();
    for (const [name, v] of model.namedVariables()) names.set(v, name);
    variables.forEach((v, i) => {
      const name = names.get(v);
      const g = gradients[i];
      const delta = updates[i] as tf.Tensor;
      if (name === undefined || g === undefined) return; // a head this step did not train
      // The value before the step is what θ(start) means for a parameter's first step in a task.
      if (!this.start[name]) this.start[name] = tf.keep(tf.sub(v, delta));
      const w = this.path[name] ?? (this.path[name] = tf.variable(tf.zerosLike(v), false));
      w.assign(tf.sub(w, tf.mul(g, delta)));
    });
  }

  endTask({ model }: TrainingContext): void {
    const omega: ParameterTensors = {};
    tf.tidy(() => {
      for (const [name, v] of model.namedVariables()) {
        const w = this.path[name];
        const start = this.start[name];
        const previous = this.omega?.[name];
        if (!w || !start) {
          if (previous) omega[name] = tf.keep(previous.clone());
          continue;
        }
        const added = tf.div(w, tf.add(tf.square(tf.sub(v, start)), this.xi));
        omega[name] = tf.keep(previous ? tf.add(previous, added) : added);
      }
    });
    disposeParameters(this.omega);
    disposeParameters(this.anchor);
    this.omega = omega;
    this.anchor = copyParameters(model);
    this.resetPath();
  }

  /**
   * A head grew (a new label): its new units have no importance and no path yet, and start (and
   * are anchored) at their initial values.
   */
  growHead(context: GrowthContext): void {
    growParameters(this.omega, context, 'zeros');
    growParameters(this.anchor, context, 'current');
    growParameters(this.start, context, 'current');
    const path: ParameterTensors = { ...this.path };
    growParameters(path, context, 'zeros');
    for (const [name, t] of Object.entries(path)) {
      if (t === this.path[name]) continue;
      this.path[name] = tf.variable(t, false);
      t.dispose();
    }
  }

  exportState(): RegularizerState {
    const tensors = {};
    exportParameters(STATE.omega, this.omega, tensors);
    exportParameters(STATE.anchor, this.anchor, tensors);
    exportParameters(STATE.path, this.path, tensors);
    exportParameters(STATE.start, this.start, tensors);
    return { meta: { c: this.c, xi: this.xi }, tensors };
  }

  importState(state: RegularizerState): void {
    this.dispose();
    this.omega = importParameters(STATE.omega, state.tensors);
    this.anchor = importParameters(STATE.anchor, state.tensors);
    const path = importParameters(STATE.path, state.tensors) ?? {};
    for (const [name, t] of Object.entries(path)) {
      this.path[name] = tf.variable(t, false);
      t.dispose();
    }
    this.start = importParameters(STATE.start, state.tensors) ?? {};
  }

  dispose(): void {
    disposeParameters(this.omega);
    disposeParameters(this.anchor);
    this.omega = undefined;
    this.anchor = undefined;
    this.resetPath();
  }

  private resetPath(): void {
    disposeParameters(this.path);
    disposeParameters(this.start);
    this.path = {};
    this.start = {};
  }
}

/** The descriptor a pipeline's `strategy.module` loads (and `lifelong strategies` would list). */
export const strategy = defineStrategy({
  name: 'si',
  family: 'regularization',
  summary: 'Synaptic Intelligence (Zenke et al. 2017): importance integrated along the training path, a quadratic pull toward the previous task\'s weights.',
  params: SI_PARAMS,
  create(options) {
    const { c, xi } = readParams('si', options.params, SI_PARAMS);
    return new MlpStrategy('si', options, new SynapticIntelligence(c, xi));
  },
});
