import { DataFormatError } from '../core/errors';
import type { Sample, TaskName } from '../core/types';
import type { TensorSnapshot } from '../core/tensor-snapshot';
import type { EngineSnapshot } from '../operators/checkpoints';
import type { RecorderState } from '../sinks/run-recorder';
import type { StatePart } from './checkpoint';

/** The run around the strategy, as a daemon's checkpoint keeps it. */
export interface RunState {
  /** The source's description when written (a resume from another source is warned about). */
  readonly source: string;
  readonly engine: EngineSnapshot;
  readonly recorder: RecorderState;
  /** Length of the trained-sample log (LIFELONG_TRAINED_LOG) that this state covers, if one is kept. */
  readonly trainedLogBytes?: number;
}

const RUN_STATE_FORMAT = 1;

interface ProbeEntry {
  readonly tensor: string;
  readonly ys: readonly (string | null)[];
  readonly ids: readonly (string | null)[];
}

/** The run state as checkpoint meta plus tensors: probe features go to the blob. */
export function encodeRunState(run: RunState): StatePart {
  const tensors: Record<string, TensorSnapshot> = {};
  const probes: Record<TaskName, ProbeEntry> = {};
  Object.entries(run.engine.probes).forEach(([task, samples], i) => {
    const width = samples[0]?.x.length ?? 0;
    const data = new Float32Array(samples.length * width);
    samples.forEach((s, k) => data.set(s.x, k * width));
    const tensor = `probe.${i}`;
    tensors[tensor] = { shape: [samples.length, width], data };
    probes[task] = { tensor, ys: samples.map((s) => s.y ?? null), ids: samples.map((s) => s.id ?? null) };
  });
  const { probes: _samples, ...engine } = run.engine;
  return {
    meta: { format: RUN_STATE_FORMAT, source: run.source, engine: { ...engine, probes }, recorder: run.recorder, ...(run.trainedLogBytes !== undefined ? { trainedLogBytes: run.trainedLogBytes } : {}) },
    tensors,
  };
}

/** Reads the run state back; DataFormatError names the file and what is missing. */
export function decodeRunState(part: StatePart, file: string): RunState {
  const bad = (why: string): never => {
    throw new DataFormatError(`${file}: run state ${why}`);
  };
  const meta = part.meta as { format?: unknown; source?: unknown; engine?: Record<string, unknown>; recorder?: unknown; trainedLogBytes?: unknown };
  if (meta.format !== RUN_STATE_FORMAT) bad(`has format ${String(meta.format)}, this version reads ${RUN_STATE_FORMAT}`);
  if (typeof meta.source !== 'string' || typeof meta.engine !== 'object' || meta.engine === null || typeof meta.recorder !== 'object' || meta.recorder === null) bad('lacks source, engine or recorder');
  const engine = meta.engine as Omit<EngineSnapshot, 'probes'> & { probes: Record<TaskName, ProbeEntry> };
  if (!Array.isArray(engine.tasks) || typeof engine.modelVersion !== 'number' || typeof engine.positions !== 'object' || typeof engine.holdout !== 'object' || typeof engine.probes !== 'object') bad('has a corrupt engine snapshot');
  const probes: Record<TaskName, Sample[]> = {};
  for (const [task, entry] of Object.entries(engine.probes)) {
    const t = part.tensors[entry.tensor];
    if (!t || t.shape.length !== 2 || t.shape[0] !== entry.ys.length || entry.ids.length !== entry.ys.length) bad(`has a corrupt probe for task ${task}`);
    const [n, width] = (t as TensorSnapshot).shape as [number, number];
    probes[task] = Array.from({ length: n }, (_, k) => ({
      task,
      x: (t as TensorSnapshot).data.slice(k * width, (k + 1) * width),
      ...(entry.ys[k] !== null ? { y: entry.ys[k] as string } : {}),
      ...(entry.ids[k] !== null ? { id: entry.ids[k] as string } : {}),
    }));
  }
  return {
    source: meta.source as string,
    engine: { ...engine, probes },
    recorder: meta.recorder as RecorderState,
    ...(typeof meta.trainedLogBytes === 'number' ? { trainedLogBytes: meta.trainedLogBytes } : {}),
  };
}
