/**
 * Server configuration: one resolved, frozen object per process.
 *
 * Precedence, highest first: command-line flag > `WEFT_*` environment variable > config file
 * (`--config FILE` or `WEFT_CONFIG`; JSON, JSON5 or YAML, keys as in {@link ServerConfigSchema})
 * > default. The merged object is validated with zod; an unknown key or a bad value throws a
 * VALIDATION_FAILED WeftError whose message names the key and where it came from, and the CLI
 * turns that into one line on stderr and a non-zero exit.
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import JSON5 from 'json5';
import YAML from 'yaml';
import { z } from 'zod';
import { WeftError } from '../graph/errors.js';
import { zodIssuesToDetails } from './errors.js';

/** A base path: empty (the API at the root) or `/seg[/seg...]` without a trailing slash. */
const BasePathSchema = z
  .string()
  .regex(/^(\/[A-Za-z0-9._~-]+)*$/, 'must be empty or look like /seg[/seg...] without a trailing slash');

const intFrom = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** Every server setting, with its default. Durations carry their unit in the name. */
export const ServerConfigSchema = z.strictObject({
  /** Interface to bind. Default 127.0.0.1 (loopback only); 0.0.0.0 exposes the API to the network. */
  host: z.string().min(1).default('127.0.0.1'),
  /** TCP port. Default 8080; 0 picks a free port (tests). */
  port: intFrom(0, 65535).default(8080),
  /** SQLite database file (store `sqlite`). Default ./weft.db. */
  db: z.string().min(1).default('./weft.db'),
  /** URL prefix of the API. Default /torc-service. */
  basePath: BasePathSchema.default('/torc-service'),
  /** Which graph store adapter to open. Default sqlite. */
  store: z.enum(['sqlite', 'arango']).default('sqlite'),
  /** ArangoDB endpoint (store `arango`). */
  arangoUrl: z.url().default('http://127.0.0.1:8529'),
  /** ArangoDB database name (store `arango`). */
  arangoDb: z.string().min(1).default('weft'),
  /** ArangoDB user (store `arango`). */
  arangoUser: z.string().min(1).default('root'),
  /** ArangoDB password (store `arango`); unset means none. */
  arangoPassword: z.string().optional(),
  /** ArangoDB bearer token (store `arango`); used instead of user/password when set. */
  arangoToken: z.string().optional(),
  /** A compute node whose heartbeat is older than this gives its jobs back. Default 60 s. */
  leaseTimeoutSeconds: z.coerce.number().positive().max(86_400 * 7).default(60),
  /** Largest accepted JSON request body, in MiB. Default 64. */
  bodyLimitMb: z.coerce.number().positive().max(4096).default(64),
  /** pino log level. Default info (silent under vitest unless set). */
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type ServerOptions = z.input<typeof ServerConfigSchema>;
export type ResolvedServerConfig = Readonly<z.output<typeof ServerConfigSchema>>;
export type ServerConfigKey = keyof z.output<typeof ServerConfigSchema>;

/** The environment variable of each setting (`basePath` → `WEFT_BASE_PATH`). */
export const ENV_VARS: Readonly<Record<ServerConfigKey, string>> = Object.freeze(
  Object.fromEntries(
    Object.keys(ServerConfigSchema.shape).map((k) => [k, `WEFT_${k.replace(/([A-Z])/g, '_$1').toUpperCase()}`]),
  ) as Record<ServerConfigKey, string>,
);

/** Where the config file path may come from when no flag names one. */
export const CONFIG_FILE_ENV = 'WEFT_CONFIG';

export interface ResolveConfigOptions {
  /** Values from command-line flags (undefined = not given). May also hold `config`. */
  flags?: Partial<Record<ServerConfigKey | 'config', unknown>>;
  /** Environment to read `WEFT_*` from. Default process.env. */
  env?: NodeJS.ProcessEnv;
}

/** Read a config file (JSON, JSON5 or YAML by extension; JSON5 for anything else). */
export function loadConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new WeftError('VALIDATION_FAILED', `Cannot read config file ${path}: ${(err as Error).message}`, {
      details: [{ path: ['config'], message: 'cannot read file', rule: 'file' }],
      cause: err,
    });
  }
  let parsed: unknown;
  try {
    const ext = extname(path).toLowerCase();
    parsed = ext === '.yaml' || ext === '.yml' ? YAML.parse(text) : JSON5.parse(text);
  } catch (err) {
    throw new WeftError('VALIDATION_FAILED', `Config file ${path} is not valid: ${(err as Error).message.split('\n')[0]}`, {
      details: [{ path: ['config'], message: 'cannot parse file', rule: 'syntax' }],
      cause: err,
    });
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new WeftError('VALIDATION_FAILED', `Config file ${path} must hold an object of settings`, {
      details: [{ path: ['config'], message: 'expected an object', rule: 'type' }],
    });
  }
  return parsed as Record<string, unknown>;
}

/**
 * Merge flags, environment, config file and defaults, validate, and freeze.
 * Throws VALIDATION_FAILED naming the first bad key and its source.
 */
export function resolveServerConfig(opts: ResolveConfigOptions = {}): ResolvedServerConfig {
  const env = opts.env ?? process.env;
  const flags = opts.flags ?? {};
  const sources = new Map<string, string>();
  const merged: Record<string, unknown> = {};

  const configPath = (flags.config as string | undefined) ?? env[CONFIG_FILE_ENV];
  if (configPath !== undefined && configPath !== '') {
    for (const [k, v] of Object.entries(loadConfigFile(configPath))) {
      merged[k] = v;
      sources.set(k, `config file ${configPath}`);
    }
  }
  for (const [key, name] of Object.entries(ENV_VARS)) {
    const v = env[name];
    if (v !== undefined && v !== '') {
      merged[key] = v;
      sources.set(key, `environment variable ${name}`);
    }
  }
  for (const [k, v] of Object.entries(flags)) {
    if (k === 'config' || v === undefined) continue;
    merged[k] = v;
    sources.set(k, `flag --${k.replace(/([A-Z])/g, '-$1').toLowerCase()}`);
  }

  const result = ServerConfigSchema.safeParse(merged);
  if (!result.success) {
    const details = zodIssuesToDetails(result.error.issues);
    const first = details[0]!;
    const key = String(first.path[0] ?? '');
    const from = sources.get(key);
    const known = Object.keys(ServerConfigSchema.shape).join(', ');
    const message =
      first.rule === 'unrecognized_keys'
        ? `Unknown configuration key "${key}"${from ? ` in ${from}` : ''} (known keys: ${known})`
        : `Bad configuration value for "${key}"${from ? ` from ${from}` : ''}: ${first.message}`;
    throw new WeftError('VALIDATION_FAILED', message, { details });
  }
  return Object.freeze({ ...result.data });
}
