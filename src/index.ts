/**
 * The public API of lifelong, what `import ... from 'lifelong'` gives: enough to write a strategy
 * of your own, check it with checkStrategy and run it from a pipeline (README "Your own strategy")
 * without reaching into dist/src.
 */

// The tfjs instance lifelong computes with: a regularizer's penalty must build its tensors with
// this one, not with another copy of @tensorflow/tfjs.
import * as tf from '@tensorflow/tfjs';
export { tf };

// Types and errors.
export { SCENARIOS, TASK_AGNOSTIC } from './core/types';
export type { Label, Prediction, Sample, Scenario, TaskInfo, TaskName } from './core/types';
export { BackendError, ConfigError, DataFormatError, InterruptedError, InvariantError, LifelongError, StrategyError, TimeoutError, UsageError, ValidationError } from './core/errors';

// The strategy contract.
export type {
  LabelledBatch,
  PredictAndTrainOptions,
  Strategy,
  StrategyDiagnostic,
  StrategyFactory,
  StrategyOptions,
  StrategyState,
  TensorSnapshot,
  TrainRejection,
  TrainResult,
} from './strategies/strategy';

// Building blocks: the MLP learner and its regularizer and rehearsal plugins.
export type { Head, HeadGrowth, MultiHeadMlp } from './models/mlp';
export { MlpStrategy, SHARED_HEAD } from './strategies/mlp-strategy';
export { NoRegularizer } from './strategies/finetune';
export { copyParameters, disposeParameters, exportParameters, growParameters, importParameters, quadraticPenalty } from './strategies/regularizer';
export type { BatchContext, GrowthContext, ParameterTensors, Regularizer, RegularizerState, StepContext, TrainingContext } from './strategies/regularizer';
export type { AppliedStep, StepGradient } from './models/gradient-step';
export { seededRng } from './strategies/rehearsal';
export type { Rehearsal, RehearsalBatchContext, RehearsalContext, RehearsalState, ReplayBatch, ReplayGroup } from './strategies/rehearsal';

// Parameters, descriptors and the registry.
export { readParams } from './strategies/params';
export { EXPERT_GATE_TEMPERATURE, ExpertGate, gateConfidences } from './strategies/expert-gate';
export type { ExpertGateSettings, ExpertGateState } from './strategies/expert-gate';
export { createTaskInference, predictWithoutTask, TASK_INFERENCE_PARAMS } from './strategies/task-inference';
export type { Answerer, TaskInference, TaskInferenceRule } from './strategies/task-inference';
export type { ParamSpec, ParamValues, SettingDefault } from './strategies/params';
export { DEFAULT_CAPABILITIES, defineStrategy } from './strategies/descriptor';
export type { StrategyCapabilities, StrategyDefinition, StrategyDescriptor, StrategyFamily } from './strategies/descriptor';
export { BUILTIN_STRATEGIES, builtinStrategies, loadStrategyModule, StrategyRegistry } from './strategies/registry';

// Conformance checks.
export { checkStrategy, strategyChecks } from './testing/check-strategy';
export type { CheckOutcome, CheckReport, CheckStrategyOptions, StrategyCheck } from './testing/check-strategy';

// Running a pipeline (select the tensor backend first, as the CLI does).
export { selectBackend } from './backend/backend';
export type { BackendName } from './backend/backend';
export { loadPipelineConfig } from './config/pipeline-config';
export type { PipelineConfig } from './config/pipeline-config';
export { runPipeline } from './engine/run-pipeline';
export type { RunPipelineOptions } from './engine/run-pipeline';
export type { RunReport } from './engine/report';
