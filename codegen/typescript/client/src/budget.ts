// What one connection may push per second, kept below the server's per-connection limits
// (SYNCFORGE_WS_*_PER_S: moves 60, presence 20, broadcasts 30, document updates 200, awareness 60;
// 2 s of burst) so that normal use is never refused: one shared bucket per kind for every room.

/** The kinds of operation the server rate-limits per connection. */
export type BudgetKind = "moves" | "presence" | "broadcasts" | "documentUpdates" | "awareness";

const RATES: Record<BudgetKind, number> = {
  moves: 48,
  presence: 16,
  broadcasts: 24,
  documentUpdates: 160,
  awareness: 48,
};
const BURST_S = 1;

/** Token buckets, one per kind. */
export class Budget {
  private readonly buckets = new Map<BudgetKind, { tokens: number; at: number }>();

  /** Take one token of `kind`: 0 when taken, else the milliseconds until one is available. */
  take(kind: BudgetKind): number {
    const rate = RATES[kind];
    const now = Date.now();
    const bucket = this.buckets.get(kind) ?? { tokens: rate * BURST_S, at: now };
    bucket.tokens = Math.min(rate * BURST_S, bucket.tokens + ((now - bucket.at) / 1000) * rate);
    bucket.at = now;
    this.buckets.set(kind, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - bucket.tokens) / rate) * 1000);
  }

  /** Wait until a token of `kind` is taken. */
  async spend(kind: BudgetKind): Promise<void> {
    for (let wait = this.take(kind); wait > 0; wait = this.take(kind)) {
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}
