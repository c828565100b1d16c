/** The job runner on a compute node (`weft worker`): see worker/worker.ts for the loop. */
export { runWorker, Worker } from './worker.js';
export type { WorkerOptions, WorkerSummary, StopReason } from './options.js';
export { numberFlag } from './options.js';
export { detectResources, detectGpuIds, parseNvidiaSmiIndices, parseSqueueTime, slurmEndTimeMs, type DetectedResources, type ResourceOverrides } from './resources.js';
export { GpuPool } from './gpu-pool.js';
export { ProcessTreeSampler, readProcessTable, treePids, parseProcStat, type TreeStatsSummary } from './process-tree.js';
export { JobProcess, stdioPaths, hasPdeathsig } from './job-process.js';
export { parseDurationSeconds, formatDuration } from './time.js';
export { createWorkerLogger } from './log.js';
