/** Public surface of the schedulers folder: the port, the executors and every adapter. */
export * from './port.js';
export * from './local-scheduler.js';
export * from './executor.js';
export * from './local-executor.js';
export * from './ssh-executor.js';
export * from './shell-quote.js';
export * from './known-hosts.js';
export * from './sbatch-script.js';
export * from './slurm-scheduler.js';
export * from './aws-scheduler.js';
export * from './api.js';
export * from './allocations.js';
export * from './reconcile.js';
