// Reconnect timing of §20.5: before attempt n (from 0), wait a random time in
// [0, min(max, base × 2^n)] ("full jitter"), so that clients that dropped together spread out.

export interface Backoff {
  baseDelayMs: number;
  maxDelayMs: number;
}

/** The upper bound of the wait before attempt `attempt`. */
export function backoffBound(attempt: number, backoff: Backoff): number {
  return Math.min(backoff.maxDelayMs, backoff.baseDelayMs * 2 ** attempt);
}

/** The wait before attempt `attempt`, with `random()` in [0, 1). */
export function backoffDelay(attempt: number, backoff: Backoff, random: () => number): number {
  return random() * backoffBound(attempt, backoff);
}
