// A typed client for Surge's write and query APIs, for Mini Apps and their tests. It needs
// `fetch` and (for live updates) `EventSource`, both in every browser and Telegram WebView;
// nothing else.
//
// - Writes send `Authorization: tma <initData>` and an `Idempotency-Key` of their own, so a write
//   that failed with 503 is retried (Retry-After) without ever counting twice.
// - Every write remembers its consistency token, and reads send the newest one, so a read shows
//   the caller's own writes (read-your-writes); a `504 consistency_timeout` is retried.
// - `live()` follows the caller's changes over Server-Sent Events, reconnecting with a new
//   single-use ticket and the last event's id, so no change is lost or repeated.

import type {
  Accepted,
  BatchAccepted,
  BatchAction,
  Catalog,
  ErrorBody,
  FeedPage,
  FeedUpdate,
  Leaderboard,
  LiveTicket,
  Me,
  Period,
  ProfileUpdate,
  PublicUser,
  PurchaseAccepted,
  Purchases,
  Quests,
  Ranks,
} from "./types.js";

export type * from "./types.js";

/** An answer that was not a success: Surge's error code, and when to retry if it says. */
export class SurgeError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Seconds, from `Retry-After`. */
    readonly retryAfter: number | null,
  ) {
    super(`${status} ${code}: ${message}`);
    this.name = "SurgeError";
  }
}

export interface ClientOptions {
  /** The write API, e.g. `https://api.example.com` or `http://127.0.0.1:8080`. */
  writeUrl: string;
  /** The query API. */
  queryUrl: string;
  /** `Telegram.WebApp.initData` (or a function returning the current one). */
  initData: string | (() => string);
  /** Retries of a 503 or 504 answer that says when to retry (default 2). */
  retries?: number;
  fetch?: typeof fetch;
  EventSource?: typeof EventSource;
}

export interface WriteOptions {
  /** Reuse to make a retry of your own count once (default: a new key per call). */
  idempotencyKey?: string;
}

export type LiveStatus = "connecting" | "open" | "reconnecting" | "closed";

/** What `live()` calls; `id` is the event's consistency token (the rank event has none). */
export interface LiveHandlers {
  me?(me: Me, id: string): void;
  feed?(feed: FeedUpdate, id: string): void;
  quests?(quests: Quests, id: string): void;
  purchases?(purchases: Purchases, id: string): void;
  /** Throttled (a couple of seconds); follows others' scores too; no id of its own. */
  rank?(ranks: Ranks): void;
  status?(status: LiveStatus, error?: unknown): void;
}

export interface LiveStream {
  close(): void;
}

const MAX_RETRY_WAIT_MS = 5_000;
const RECONNECT_MS = [500, 1_000, 2_000, 5_000, 10_000];

export class SurgeClient {
  /** The newest consistency token of this client's writes; reads wait for it. */
  position: string | null = null;
  private readonly options: Required<Omit<ClientOptions, "EventSource">> & {
    EventSource?: typeof EventSource;
  };

  constructor(options: ClientOptions) {
    this.options = {
      retries: 2,
      fetch: globalThis.fetch.bind(globalThis),
      EventSource: globalThis.EventSource,
      ...options,
      writeUrl: options.writeUrl.replace(/\/$/, ""),
      queryUrl: options.queryUrl.replace(/\/$/, ""),
    };
  }

  // ---- writes -------------------------------------------------------------------------------

  /** `POST /v1/sessions`: the user opened the Mini App (profile from initData, start_param). */
  startSession(platform?: string, options?: WriteOptions): Promise<Accepted> {
    return this.write("POST", "/v1/sessions", platform ? { platform } : undefined, options);
  }

  /** `POST /v1/taps`: 1 to 1000 taps; `429 out_of_energy` past the energy bar. */
  tap(count: number, options?: WriteOptions & { occurredAt?: number }): Promise<Accepted> {
    const body = options?.occurredAt ? { count, occurred_at: options.occurredAt } : { count };
    return this.write("POST", "/v1/taps", body, options);
  }

  /** `POST /v1/checkins`: today's check-in (UTC day); keeps the streak. */
  checkIn(options?: WriteOptions): Promise<Accepted> {
    return this.write("POST", "/v1/checkins", undefined, options);
  }

  /** `PATCH /v1/profile`. */
  updateProfile(update: ProfileUpdate, options?: WriteOptions): Promise<Accepted> {
    return this.write("PATCH", "/v1/profile", update, options);
  }

  /** `POST /v1/quests/{id}/claim`: a quest the book marks `claim: true`. */
  claimQuest(questId: string, options?: WriteOptions): Promise<Accepted> {
    return this.write(
      "POST",
      `/v1/quests/${encodeURIComponent(questId)}/claim`,
      undefined,
      options,
    );
  }

  /** `POST /v1/purchases`: opens a Stars invoice; pass `invoice_link` to `Telegram.WebApp.openInvoice`. */
  purchase(itemId: string, options?: WriteOptions): Promise<PurchaseAccepted> {
    return this.write("POST", "/v1/purchases", { item_id: itemId }, options);
  }

  /** `POST /v1/batch`: 1 to 100 actions, one event each, in order. */
  batch(actions: BatchAction[], options?: WriteOptions): Promise<BatchAccepted> {
    return this.write("POST", "/v1/batch", { actions }, options);
  }

  /** `GET /v1/catalog`: what can be bought with Stars. */
  catalog(): Promise<Catalog> {
    return this.request(this.options.writeUrl, "GET", "/v1/catalog", { auth: false });
  }

  // ---- reads ---------------------------------------------------------------------------------

  /** `GET /v1/me`: profile, balance with the latest ledger entries, streak. */
  me(): Promise<Me> {
    return this.read("/v1/me");
  }

  /** `GET /v1/me/feed`, newest first; pass `next_cursor` back for the next page. */
  feed(page: { limit?: number; cursor?: string } = {}): Promise<FeedPage> {
    return this.read(`/v1/me/feed${query({ limit: page.limit, cursor: page.cursor })}`);
  }

  /** `GET /v1/me/quests`. */
  quests(): Promise<Quests> {
    return this.read("/v1/me/quests");
  }

  /** `GET /v1/me/purchases`. */
  purchases(limit?: number): Promise<Purchases> {
    return this.read(`/v1/me/purchases${query({ limit })}`);
  }

  /** `GET /v1/leaderboard/{period}`, with the caller's own rank as `me`. */
  leaderboard(period: Period, limit?: number): Promise<Leaderboard> {
    return this.read(`/v1/leaderboard/${period}${query({ limit })}`);
  }

  /** `GET /v1/users/{id}`: a public card. */
  user(userId: number): Promise<PublicUser> {
    return this.read(`/v1/users/${userId}`);
  }

  // ---- live updates --------------------------------------------------------------------------

  /** `POST /v1/live/tickets`: a single-use ticket for `GET /v1/me/live`, valid 60 s. */
  liveTicket(): Promise<LiveTicket> {
    return this.request(this.options.queryUrl, "POST", "/v1/live/tickets", {});
  }

  /**
   * `GET /v1/me/live`: calls `handlers` with the caller's state at once and after each change.
   * A dropped stream reconnects with a new ticket from where it stopped.
   */
  live(handlers: LiveHandlers): LiveStream {
    const EventSourceImpl = this.requireEventSource();
    let source: EventSource | null = null;
    let lastId: string | null = null;
    let closed = false;
    let failures = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const status = (value: LiveStatus, error?: unknown) => handlers.status?.(value, error);
    const retry = (error: unknown) => {
      source?.close();
      source = null;
      if (closed) return;
      status("reconnecting", error);
      const wait = RECONNECT_MS[Math.min(failures, RECONNECT_MS.length - 1)];
      failures += 1;
      timer = setTimeout(connect, wait);
    };
    const listen = <T>(es: EventSource, name: string, handler?: (body: T, id: string) => void) => {
      es.addEventListener(name, (event) => {
        const message = event as MessageEvent<string>;
        if (message.lastEventId) lastId = message.lastEventId;
        handler?.(JSON.parse(message.data) as T, message.lastEventId);
      });
    };
    const connect = async () => {
      if (closed) return;
      status(failures === 0 && lastId === null ? "connecting" : "reconnecting");
      let ticket: LiveTicket;
      try {
        ticket = await this.liveTicket();
      } catch (error) {
        retry(error);
        return;
      }
      if (closed) return;
      const resume = lastId ? `&last_event_id=${encodeURIComponent(lastId)}` : "";
      const es = new EventSourceImpl(
        `${this.options.queryUrl}/v1/me/live?ticket=${encodeURIComponent(ticket.ticket)}${resume}`,
      );
      source = es;
      es.onopen = () => {
        failures = 0;
        status("open");
      };
      // The ticket is spent: EventSource's own reconnect would be refused, so reconnect here.
      es.onerror = (error) => retry(error);
      listen(es, "me", handlers.me);
      listen(es, "feed", handlers.feed);
      listen(es, "quests", handlers.quests);
      listen(es, "purchases", handlers.purchases);
      listen(es, "rank", handlers.rank);
    };
    void connect();
    return {
      close() {
        closed = true;
        clearTimeout(timer);
        source?.close();
        status("closed");
      },
    };
  }

  /** `GET /v1/leaderboard/{period}/live`: the public top at once, then at most once a second. */
  leaderboardLive(
    period: Period,
    onTop: (top: Leaderboard) => void,
    limit?: number,
  ): LiveStream {
    const EventSourceImpl = this.requireEventSource();
    // No ticket: EventSource's own reconnect works here.
    const es = new EventSourceImpl(
      `${this.options.queryUrl}/v1/leaderboard/${period}/live${query({ limit })}`,
    );
    es.addEventListener("top", (event) => {
      onTop(JSON.parse((event as MessageEvent<string>).data) as Leaderboard);
    });
    return { close: () => es.close() };
  }

  // ---- plumbing ------------------------------------------------------------------------------

  private async write<T extends { position: string }>(
    method: string,
    path: string,
    body: unknown,
    options?: WriteOptions,
  ): Promise<T> {
    const key = options?.idempotencyKey ?? crypto.randomUUID();
    const accepted = await this.request<T>(this.options.writeUrl, method, path, {
      body,
      headers: { "Idempotency-Key": key },
    });
    this.position = accepted.position;
    return accepted;
  }

  private read<T>(path: string): Promise<T> {
    const headers: Record<string, string> = {};
    if (this.position) headers["X-Consistency-Token"] = this.position;
    return this.request(this.options.queryUrl, "GET", path, { headers });
  }

  private async request<T>(
    base: string,
    method: string,
    path: string,
    init: { body?: unknown; headers?: Record<string, string>; auth?: boolean },
  ): Promise<T> {
    const headers: Record<string, string> = { ...init.headers };
    if (init.auth !== false) headers.Authorization = `tma ${this.initData()}`;
    if (init.body !== undefined) headers["Content-Type"] = "application/json";
    for (let attempt = 0; ; attempt++) {
      const response = await this.options.fetch(`${base}${path}`, {
        method,
        headers,
        body: init.body === undefined ? undefined : JSON.stringify(init.body),
      });
      if (response.ok) return (await response.json()) as T;
      const error = await surgeError(response);
      const retriable = response.status === 503 || response.status === 504;
      if (!retriable || error.retryAfter === null || attempt >= this.options.retries) throw error;
      await sleep(Math.min(error.retryAfter * 1_000, MAX_RETRY_WAIT_MS));
    }
  }

  private initData(): string {
    const { initData } = this.options;
    return typeof initData === "function" ? initData() : initData;
  }

  private requireEventSource(): typeof EventSource {
    if (!this.options.EventSource) throw new Error("EventSource is not available here");
    return this.options.EventSource;
  }
}

async function surgeError(response: Response): Promise<SurgeError> {
  const retryAfter = Number.parseInt(response.headers.get("Retry-After") ?? "", 10);
  let code = "http_error";
  let message = response.statusText;
  try {
    const body = (await response.json()) as ErrorBody;
    code = body.error.code;
    message = body.error.message;
  } catch {
    // Not Surge's error shape (a proxy's page): keep the status.
  }
  return new SurgeError(response.status, code, message, Number.isNaN(retryAfter) ? null : retryAfter);
}

function query(params: Record<string, string | number | undefined>): string {
  const pairs = Object.entries(params).filter(([, value]) => value !== undefined);
  if (pairs.length === 0) return "";
  return `?${new URLSearchParams(pairs.map(([key, value]) => [key, String(value)])).toString()}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
