/** Public surface of the schedulers folder: the port and every adapter. */
export * from './port.js';
export * from './local-scheduler.js';
