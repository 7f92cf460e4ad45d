import { tap, type MonoTypeOperatorFunction } from 'rxjs';
import type { LifelongMetrics } from '../metrics/prometheus';
import type { EngineEvent } from '../operators/events';
import type { RunRecorder } from './run-recorder';

/**
 * Publishes each engine event to Prometheus. Reads the recorder, which must have observed the
 * event first (see recordRun), so the math lives in one place.
 */
export function publishMetrics(metrics: LifelongMetrics, recorder: RunRecorder): MonoTypeOperatorFunction<EngineEvent> {
  return tap((event) => {
    switch (event.kind) {
      case 'task-started':
        metrics.setCurrentTask(event.task.name, event.task.index);
        metrics.setParameters(event.parameters);
        break;
      case 'step-outcome': {
        const perTask = new Map<string, Map<string, number>>();
        event.plan.forEach((kind, i) => {
          const task = event.samples[i]?.task.name ?? event.task.name;
          const kinds = perTask.get(task) ?? new Map<string, number>();
          kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
          perTask.set(task, kinds);
        });
        for (const [task, kinds] of perTask) {
          for (const [kind, n] of kinds) metrics.countSamples(task, kind as never, n);
          metrics.setPrequential(task, recorder.prequential.accuracy(task), recorder.prequential.fading(task));
        }
        if (event.trainSeconds !== undefined) metrics.observeTrainingStep(event.trainSeconds);
        if (event.predictSeconds !== undefined) metrics.observePrediction(event.predictSeconds);
        if (event.loss !== undefined) metrics.setLoss(event.task.name, event.loss);
        metrics.setParameters(event.parameters);
        if (event.classes) metrics.setClasses(event.classes);
        metrics.setModelVersion(event.modelVersion);
        if (event.layerWeights) metrics.setDrift(recorder.latestDrift, recorder.taskNames());
        if (event.diagnostics) metrics.setStrategyDiagnostics(event.diagnostics);
        for (const status of event.drift?.status ?? []) metrics.setDriftStatus(status);
        for (const drift of event.drift?.confirmed ?? []) metrics.countConceptDrift(drift.task, drift.detector);
        break;
      }
      case 'task-outcome':
        metrics.setAccuracyMatrix(recorder.taskNames(), recorder.matrix);
        if (event.taskInferenceAccuracy) metrics.setTaskInferenceAccuracy(recorder.taskNames(), event.taskInferenceAccuracy);
        metrics.setDrift(recorder.latestDrift, recorder.taskNames());
        metrics.setParameters(event.parameters);
        metrics.setModelVersion(event.modelVersion);
        metrics.setTasksLearned(recorder.tasksLearned);
        metrics.setParametersAfterTask(event.task.name, event.parameters);
        if (event.diagnostics) metrics.setStrategyDiagnostics(event.diagnostics);
        break;
    }
  });
}

/** Feeds every engine event to the run recorder. */
export function recordRun(recorder: RunRecorder): MonoTypeOperatorFunction<EngineEvent> {
  return tap((event) => recorder.observe(event));
}
