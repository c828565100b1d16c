/**
 * The unit parsers the views use (memory strings, ISO-8601 durations), re-exported from one
 * place so the views follow the engine's strict rules.
 *
 * Rules (the engine's graph/units.ts has the same ones): memory is `^\d+\s*[kmgt]?$`
 * (case-insensitive; k = 1024, m = 1024², g = 1024³, t = 1024⁴; digits alone are bytes);
 * durations are ISO 8601 `P[nD][T[nH][nM][nS]]` with whole numbers, no years, months or weeks.
 * Anything else is VALIDATION_FAILED.
 */
import { WeftError } from '../errors.js';

const MEMORY_RE = /^(\d+)\s*([kmgt]?)$/i;
const UNIT: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };
const DURATION_RE = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$/;

/** Bytes of a memory string (`"10g"`, `"512 m"`, `"1024"`). */
export function memoryToBytes(text: string): number {
  const m = MEMORY_RE.exec(text.trim());
  if (!m) throw new WeftError('VALIDATION_FAILED', `invalid memory "${text}": expected digits with an optional k, m, g or t (e.g. 10g)`);
  return Number(m[1]) * UNIT[m[2]!.toLowerCase()]!;
}

/** Seconds of an ISO-8601 duration (`"P0DT1H"`, `"PT30M"`). */
export function durationToSeconds(text: string): number {
  const m = DURATION_RE.exec(text.trim());
  if (!m || text.trim() === 'P' || /T$/.test(text.trim())) {
    throw new WeftError('VALIDATION_FAILED', `invalid duration "${text}": expected ISO 8601 days/hours/minutes/seconds (e.g. P0DT1H, PT30M)`);
  }
  const [, d, h, min, s] = m;
  return Number(d ?? 0) * 86400 + Number(h ?? 0) * 3600 + Number(min ?? 0) * 60 + Number(s ?? 0);
}
