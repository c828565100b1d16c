/**
 * Paging for the engine's list views: one page of an ordered result, plus the total, so the
 * server can answer a batch whose `skip` really skips (Torc 0.6.4 ignored it in several views).
 */
import type { Doc } from '../store/port.js';

/** One page of a list view. */
export interface Page<T = Doc> {
  items: T[];
  /** Items skipped before this page. */
  skip: number;
  /** Items in the whole result (before skip/limit). */
  total: number;
}

/** Paging options: skip (default 0) and limit (default: all). */
export interface PageOptions {
  skip?: number;
  limit?: number;
}

/** The page of `all` selected by skip/limit. */
export function pageOf<T>(all: readonly T[], opts: PageOptions = {}): Page<T> {
  const skip = opts.skip ?? 0;
  const end = opts.limit === undefined ? undefined : skip + opts.limit;
  return { items: all.slice(skip, end), skip, total: all.length };
}

/** The distinct values of `values`, first occurrence first. */
export function distinct<T>(values: Iterable<T>): T[] {
  return [...new Set(values)];
}
