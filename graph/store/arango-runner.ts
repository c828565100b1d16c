/**
 * How the ArangoDB adapter sends one AQL query: directly (retried with backoff on transient
 * failures), or as one step of a stream transaction (steps queued so they never overlap, and each
 * cursor read to the end before the next step, since a half-read cursor blocks the transaction).
 */
import type { Database } from 'arangojs/databases';
import type { AqlQuery } from 'arangojs/aql';
import type { DocumentCollection, EdgeCollection } from 'arangojs/collections';
import type { Transaction } from 'arangojs/transactions';
import type { CollectionName } from '../model.js';
import { WeftError } from '../errors.js';
import { toWeftError, withRetry, type RetryPolicy } from './arango-errors.js';

const BATCH_SIZE = 5000;

export type AnyCollection = DocumentCollection & EdgeCollection;

export interface Context {
  db: Database;
  /** URL for messages (no credentials). */
  url: string;
  coll(name: CollectionName): AnyCollection;
  edgeColls: AnyCollection[];
  perWorkflowColls: AnyCollection[];
  globalColls: AnyCollection[];
  policy: RetryPolicy;
}

export interface QueryOpts {
  idempotent: boolean;
  fullCount?: boolean;
  what: string;
}

export interface Rows<T> {
  items: T[];
  fullCount: number | undefined;
}

/** Sends AQL: directly with retries, or as steps of one stream transaction. */
export interface Runner {
  readonly inTx: boolean;
  query<T>(query: AqlQuery, opts: QueryOpts): Promise<Rows<T>>;
}

async function collect<T>(db: Database, send: (fn: () => Promise<unknown>) => Promise<unknown>, query: AqlQuery, fullCount: boolean): Promise<Rows<T>> {
  const cursor = (await send(() => db.query<T>(query, { batchSize: BATCH_SIZE, fullCount }))) as Awaited<ReturnType<Database['query']>>;
  // Consume the whole cursor before anything else uses the transaction (a half-read cursor blocks it).
  const items = (await cursor.all()) as T[];
  return { items, fullCount: cursor.extra?.stats?.fullCount };
}

export class DirectRunner implements Runner {
  readonly inTx = false;
  constructor(private readonly ctx: () => Context) {}

  async query<T>(query: AqlQuery, opts: QueryOpts): Promise<Rows<T>> {
    const ctx = this.ctx();
    try {
      return await withRetry(() => collect<T>(ctx.db, (fn) => fn(), query, opts.fullCount ?? false), { idempotent: opts.idempotent, policy: ctx.policy });
    } catch (err) {
      throw toWeftError(err, ctx.url, opts.what);
    }
  }
}

export class TxRunner implements Runner {
  readonly inTx = true;
  private chain: Promise<unknown> = Promise.resolve();
  private active = true;
  constructor(private readonly ctx: Context, private readonly trx: Transaction) {}

  /** Steps of a stream transaction may not overlap: queue them. */
  query<T>(query: AqlQuery, opts: QueryOpts): Promise<Rows<T>> {
    const run = async (): Promise<Rows<T>> => {
      if (!this.active) throw new WeftError('INTERNAL', 'A transaction handle was used after its transaction ended');
      try {
        return await collect<T>(this.ctx.db, (fn) => this.trx.step(fn), query, opts.fullCount ?? false);
      } catch (err) {
        throw toWeftError(err, this.ctx.url, opts.what);
      }
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
  }

  /** Wait for queued steps, then refuse new ones. */
  async end(): Promise<void> {
    await this.chain;
    this.active = false;
  }
}

