// Who the player is. Inside Telegram the WebView hands the Mini App its initData (the
// `tgWebAppData` of the URL's fragment, and `Telegram.WebApp.initData` once Telegram's script is
// loaded). In a plain browser, `surge dev` (and nothing else) signs a development initData for a
// user picked in the form or given as `?user=<id>&name=<name>`.

export interface DemoConfig {
  write_url: string;
  query_url: string;
  dev_init_data: boolean;
}

export interface TelegramWebApp {
  initData: string;
  ready(): void;
  expand(): void;
  openInvoice?(url: string, callback?: (status: string) => void): void;
}

declare global {
  interface Window {
    Telegram?: { WebApp: TelegramWebApp };
  }
}

const TELEGRAM_SCRIPT = "https://telegram.org/js/telegram-web-app.js";

export async function loadConfig(): Promise<DemoConfig> {
  const response = await fetch("config.json");
  if (!response.ok) throw new Error(`config.json answered ${response.status}`);
  return (await response.json()) as DemoConfig;
}

/** The Telegram WebApp object when running inside Telegram, after loading its script. */
export async function telegram(): Promise<TelegramWebApp | null> {
  if (!new URLSearchParams(location.hash.slice(1)).has("tgWebAppData")) return null;
  await new Promise<void>((resolve, reject) => {
    const script = document.createElement("script");
    script.src = TELEGRAM_SCRIPT;
    script.onload = () => resolve();
    script.onerror = () => reject(new Error("could not load Telegram's WebApp script"));
    document.head.append(script);
  });
  const webApp = window.Telegram?.WebApp ?? null;
  webApp?.ready();
  webApp?.expand();
  return webApp;
}

/** A development initData from `surge dev`, for the user in the URL or the form. */
export async function devInitData(config: DemoConfig, form: HTMLFormElement): Promise<string> {
  if (!config.dev_init_data) {
    throw new Error("Open this Mini App from Telegram: this server signs no development initData.");
  }
  const params = new URLSearchParams(location.search);
  let user = params.get("user");
  let name = params.get("name");
  if (!user) {
    form.hidden = false;
    await new Promise<void>((resolve) =>
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        resolve();
      }),
    );
    const data = new FormData(form);
    user = String(data.get("user"));
    name = String(data.get("name") || "Dev");
    form.hidden = true;
  }
  const response = await fetch("dev/init-data", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user_id: Number(user), first_name: name ?? "Dev" }),
  });
  if (!response.ok) throw new Error(`surge dev refused to sign: ${await response.text()}`);
  return ((await response.json()) as { init_data: string }).init_data;
}
