// Surge's demo Mini App: every number on screen comes from the query API's live stream (the
// balance, streak, quests and feed from `GET /v1/me/live`, the leaderboard from its public live
// stream); taps and check-ins only write. So what the player sees is what Surge applied.

import {
  type CatalogItem,
  type FeedItem,
  type Leaderboard,
  type Me,
  type Quests,
  SurgeClient,
  SurgeError,
} from "../../clients/ts/src/index.js";
import { devInitData, loadConfig, telegram, type TelegramWebApp } from "./identity.js";

/** Taps clicked within this window go out as one write. */
const TAP_FLUSH_MS = 150;
const FEED_SHOWN = 20;

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

async function main() {
  const config = await loadConfig();
  const webApp = await telegram();
  const initData = webApp ? webApp.initData : await devInitData(config, $("login") as HTMLFormElement);
  const client = new SurgeClient({ writeUrl: config.write_url, queryUrl: config.query_url, initData });
  $("app").hidden = false;
  // The session records the visit (profile, referral); the game works without it.
  client.startSession().catch((error) => {
    $("notice").textContent = describe(error);
  });

  let userId: number | null = null;
  const status = $("status");
  client.live({
    status(state) {
      status.dataset.state = state;
      status.textContent = state === "open" ? "live" : state;
    },
    me(me) {
      userId = me.user_id;
      showMe(me);
    },
    feed(update) {
      prependFeed(update.items);
    },
    quests(quests) {
      showQuests(client, quests);
    },
    rank({ daily, all }) {
      $("rank").textContent = daily
        ? `#${daily.rank} today, #${all?.rank ?? "–"} all time`
        : "not ranked yet today";
    },
  });
  client.leaderboardLive("daily", (top) => showLeaderboard(top, userId), 10);
  setUpTaps(client);
  setUpCheckIn(client);
  void showShop(client, webApp);
}

function showMe(me: Me) {
  $("name").textContent = me.profile?.display_name ?? me.profile?.first_name ?? `#${me.user_id}`;
  $("balance").textContent = String(me.wallet.balance);
  $("streak").textContent = String(me.streak.current);
  $("streak-best").textContent = String(me.streak.best);
  const today = new Date().toISOString().slice(0, 10);
  ($("checkin") as HTMLButtonElement).disabled = me.streak.last_check_in_day === today;
}

/** Clicks add up locally and leave every TAP_FLUSH_MS as one write with an idempotency key. */
function setUpTaps(client: SurgeClient) {
  let pending = 0;
  let sending = false;
  let energy: { left: number; capacity: number; refill: number; at: number } | null = null;
  const pendingText = $("pending");
  const notice = $("notice");
  const drawEnergy = () => {
    if (!energy) return;
    const elapsed = (performance.now() - energy.at) / 1000;
    const left = Math.min(energy.capacity, Math.floor(energy.left + elapsed * energy.refill)) - pending;
    $("energy").textContent = `energy ${Math.max(0, left)} / ${energy.capacity}`;
    $("energy-fill").style.width = `${(100 * Math.max(0, left)) / energy.capacity}%`;
  };
  setInterval(drawEnergy, 500);
  const flush = async () => {
    if (sending || pending === 0) return;
    sending = true;
    const count = pending;
    pending = 0;
    pendingText.textContent = `+${count} sending…`;
    try {
      const accepted = await client.tap(count);
      if (accepted.energy) {
        const { left, capacity, refill_per_sec } = accepted.energy;
        energy = { left, capacity, refill: refill_per_sec, at: performance.now() };
      }
      notice.textContent = "";
    } catch (error) {
      notice.textContent = describe(error);
    } finally {
      sending = false;
      pendingText.textContent = pending > 0 ? `+${pending}` : "";
      drawEnergy();
      if (pending > 0) setTimeout(flush, TAP_FLUSH_MS);
    }
  };
  $("tap").addEventListener("click", () => {
    pending += 1;
    pendingText.textContent = `+${pending}`;
    drawEnergy();
    setTimeout(flush, TAP_FLUSH_MS);
  });
}

function setUpCheckIn(client: SurgeClient) {
  const button = $("checkin") as HTMLButtonElement;
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await client.checkIn();
    } catch (error) {
      $("notice").textContent = describe(error);
      button.disabled = false;
    }
  });
}

function showQuests(client: SurgeClient, { quests }: Quests) {
  const list = $("quests");
  list.replaceChildren(
    ...quests.map((quest) => {
      const item = element("li", "quest");
      item.dataset.quest = quest.id;
      item.dataset.status = quest.status;
      const done = quest.status === "completed" ? " ✓" : "";
      item.append(`${quest.title}: ${quest.progress}/${quest.goal.target} (+${quest.reward})${done}`);
      const bar = element("progress");
      (bar as HTMLProgressElement).max = quest.goal.target;
      (bar as HTMLProgressElement).value = quest.progress;
      item.append(bar);
      if (quest.claim && quest.status === "claimable") {
        const claim = element("button");
        claim.textContent = "Claim";
        claim.addEventListener("click", async () => {
          (claim as HTMLButtonElement).disabled = true;
          try {
            await client.claimQuest(quest.id);
          } catch (error) {
            $("notice").textContent = describe(error);
          }
        });
        item.append(claim);
      }
      return item;
    }),
  );
}

async function showShop(client: SurgeClient, webApp: TelegramWebApp | null) {
  let items: CatalogItem[];
  try {
    items = (await client.catalog()).items;
  } catch (error) {
    $("shop").textContent = describe(error);
    return;
  }
  $("shop").replaceChildren(
    ...items.map((catalogItem) => {
      const item = element("li");
      const buy = element("button");
      buy.textContent = `★ ${catalogItem.stars}`;
      buy.addEventListener("click", async () => {
        try {
          const { invoice_link } = await client.purchase(catalogItem.id);
          if (webApp?.openInvoice) webApp.openInvoice(invoice_link);
          else $("notice").textContent = `Pay in Telegram: ${invoice_link}`;
        } catch (error) {
          $("notice").textContent = describe(error);
        }
      });
      item.append(`${catalogItem.title} `, buy);
      return item;
    }),
  );
}

function showLeaderboard(top: Leaderboard, userId: number | null) {
  $("leaderboard").replaceChildren(
    ...top.entries.map((entry) => {
      const item = element("li", entry.user_id === userId ? "me" : "") as HTMLLIElement;
      item.value = entry.rank;
      item.dataset.user = String(entry.user_id);
      item.textContent = `${entry.name ?? `#${entry.user_id}`}: ${entry.score}`;
      return item;
    }),
  );
}

function prependFeed(items: FeedItem[]) {
  const list = $("feed");
  const shown = new Set([...list.children].map((child) => (child as HTMLElement).dataset.event));
  const fresh = items.filter((item) => !shown.has(item.event_id));
  list.prepend(
    ...fresh.map((item) => {
      const entry = element("li");
      entry.dataset.event = item.event_id;
      entry.textContent = `${item.occurred_at.slice(11, 19)} ${feedText(item)}`;
      return entry;
    }),
  );
  while (list.children.length > FEED_SHOWN) list.lastElementChild?.remove();
}

function feedText(item: FeedItem): string {
  switch (item.type) {
    case "session":
      return "Opened the app";
    case "taps":
      return item.count === 1 ? "Tapped once" : `Tapped ${item.count} times`;
    case "checkin":
      return "Checked in";
    case "referral":
      return `A friend joined (#${item.referred_user_id})`;
    case "quest":
      return `Quest ${item.quest_id} done: +${item.reward}`;
    case "quest_claim":
      return `Claimed quest ${item.quest_id}`;
    case "purchase_started":
      return `Opened an invoice for ${item.item_id}`;
    case "purchase":
      return `Bought ${item.item_id} for ★ ${item.stars}`;
    case "refund":
      return `Refunded ${item.item_id}`;
    case "profile":
      return "Updated the profile";
    default:
      return item.type;
  }
}

function describe(error: unknown): string {
  if (error instanceof SurgeError) {
    const retry = error.retryAfter ? ` (retry in ${error.retryAfter} s)` : "";
    return `${error.message}${retry}`;
  }
  return String(error);
}

function element(tag: string, className = ""): HTMLElement {
  const created = document.createElement(tag);
  if (className) created.className = className;
  return created;
}

main().catch((error) => {
  $("notice").textContent = describe(error);
  const status = $("status");
  status.dataset.state = "failed";
  status.textContent = "failed";
  $("app").hidden = false;
});
