/**
 * ISO-8601 durations as the engine reads them: `P[nD][T[nH][nM][nS]]`, whole numbers only (the
 * server refuses decimals), so the time left that a worker sends is always rounded down.
 */

const DURATION_RE = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;

/** Seconds of an ISO-8601 duration (`P0DT1H`, `PT30M`, `PT5S`); throws naming the text when malformed. */
export function parseDurationSeconds(text: string): number {
  const t = text.trim();
  const m = DURATION_RE.exec(t);
  if (!m || t === 'P' || t.endsWith('T')) {
    throw new Error(`invalid duration ${JSON.stringify(text)}: expected ISO 8601 days/hours/minutes/seconds, e.g. P0DT1H or PT30M`);
  }
  const [, d, h, min, s] = m;
  return Number(d ?? 0) * 86_400 + Number(h ?? 0) * 3_600 + Number(min ?? 0) * 60 + Number(s ?? 0);
}

/** The duration `P{d}DT{h}H{m}M{s}S` of a number of seconds, rounded down (never negative). */
export function formatDuration(seconds: number): string {
  let rest = Math.max(0, Math.floor(seconds));
  const d = Math.floor(rest / 86_400);
  rest -= d * 86_400;
  const h = Math.floor(rest / 3_600);
  rest -= h * 3_600;
  const m = Math.floor(rest / 60);
  const s = rest - m * 60;
  return `P${d}DT${h}H${m}M${s}S`;
}
