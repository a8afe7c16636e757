// The JSON bodies of Surge's write and query APIs (README "Write API", "Query API"). Times are
// RFC 3339 strings in UTC; days are `YYYY-MM-DD`; user ids are Telegram's 64-bit ids, which fit
// a JavaScript number exactly up to 2^53.

/** Every error: `{"error": {"code", "message"}}`. */
export interface ErrorBody {
  error: { code: string; message: string };
}

/** `202 Accepted` from a write. `position` is the consistency token for read-your-writes. */
export interface Accepted {
  event_id: string;
  position: string;
  /** Present when the request had taps: the energy bar after it. */
  energy?: Energy;
}

export interface BatchAccepted {
  event_ids: string[];
  position: string;
  energy?: Energy;
}

export interface Energy {
  left: number;
  capacity: number;
  refill_per_sec: number;
}

export interface PurchaseAccepted extends Accepted {
  purchase_id: string;
  invoice_link: string;
}

export type BatchAction =
  | { type: "session"; platform?: string }
  | { type: "taps"; count: number; occurred_at?: number }
  | { type: "checkin"; occurred_at?: number }
  | { type: "profile"; display_name?: string; language_code?: string; photo_url?: string }
  | { type: "quest_claim"; quest_id: string };

export interface ProfileUpdate {
  display_name?: string;
  language_code?: string;
  photo_url?: string;
}

export interface Profile {
  first_name: string;
  last_name: string | null;
  username: string | null;
  display_name: string | null;
  language_code: string | null;
  photo_url: string | null;
  is_premium: boolean;
  first_seen_at: string;
  last_seen_at: string;
  sessions_count: number;
  referred_by: number | null;
}

export interface LedgerEntry {
  event_id: string;
  seq: number;
  kind: string;
  amount: number;
  balance_after: number;
  occurred_at: string;
}

/** `GET /v1/me`, and the `me` event of `GET /v1/me/live`. */
export interface Me {
  user_id: number;
  /** `null` until the user's first session is applied. */
  profile: Profile | null;
  wallet: { balance: number; entries: number; latest: LedgerEntry[] };
  streak: { current: number; best: number; last_check_in_day: string | null };
}

/** A feed item: `type` says which other fields it has. */
export interface FeedItem {
  event_id: string;
  occurred_at: string;
  type: string;
  [field: string]: unknown;
}

export interface FeedPage {
  items: FeedItem[];
  next_cursor: string | null;
}

/** The `feed` event of `GET /v1/me/live`: items newer than the last event's, newest first. */
export interface FeedUpdate {
  items: FeedItem[];
  /** `false` when more arrived than the event holds: read `GET /v1/me/feed`. */
  complete: boolean;
}

export type Period = "all" | "daily" | "weekly";

export interface Ranked {
  user_id: number;
  name: string | null;
  rank: number;
  score: number;
}

/** `GET /v1/leaderboard/{period}`, and the `top` event of its live stream. */
export interface Leaderboard {
  period: string;
  entries: Ranked[];
  /** With initData only: the caller's rank, `null` if unranked. */
  me?: Ranked | null;
}

export interface Quest {
  id: string;
  title: string;
  reward: number;
  goal: { kind: string; target: number };
  progress: number;
  status: "in_progress" | "claimable" | "completed";
  completed_at: string | null;
  /** Whether the Mini App claims it (`POST /v1/quests/{id}/claim`) once claimable. */
  claim: boolean;
}

export interface Quests {
  quests: Quest[];
}

export interface CatalogItem {
  id: string;
  title: string;
  description: string;
  stars: number;
  once: boolean;
  grants: unknown;
}

export interface Catalog {
  currency: string;
  items: CatalogItem[];
}

export interface Purchase {
  purchase_id: string;
  item_id: string;
  stars: number;
  started_at: string | null;
  status: "started" | "paid" | "refunded";
}

export interface Payment {
  telegram_payment_charge_id: string;
  purchase_id: string;
  item_id: string;
  stars: number;
  coins: number;
  subscription: string | null;
  expires_at: string | null;
  recurring: boolean;
  paid_at: string | null;
  refunded_at: string | null;
}

/** `GET /v1/me/purchases`, and the `purchases` event of `GET /v1/me/live`. */
export interface Purchases {
  purchases: Purchase[];
  payments: Payment[];
  subscriptions: Array<{ plan: string; expires_at: string | null; active: boolean }>;
}

/** `GET /v1/users/{id}`: a public card. */
export interface PublicUser {
  user_id: number;
  name: string | null;
  username: string | null;
  photo_url: string | null;
  is_premium: boolean;
  member_since: string;
  streak: { current: number; best: number };
}

/** A place on one leaderboard. */
export interface Place {
  rank: number;
  score: number;
}

/** The `rank` event of `GET /v1/me/live`: the caller's places, `null` where unranked. */
export interface Ranks {
  all: Place | null;
  daily: Place | null;
  weekly: Place | null;
}

export interface LiveTicket {
  ticket: string;
  expires_in: number;
}
