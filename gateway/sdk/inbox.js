// <crossgate-inbox>: a notification bell with an unread badge and the
// customer's feed, live; an in-app message shows as a banner until it is
// dismissed or opened. No dependencies; served by the gateway at
// /sdk/inbox.js.
//
//   <script src="https://gateway.example/sdk/inbox.js" defer></script>
//   <crossgate-inbox gateway="https://gateway.example" token="FEED_TOKEN"></crossgate-inbox>
//
// `token` is a feed token the platform's backend made for the signed-in
// customer (docs/api.md). Themed with CSS variables on the element:
// --crossgate-accent, --crossgate-badge, --crossgate-background,
// --crossgate-text, --crossgate-muted, --crossgate-radius, --crossgate-width.
// Events: `crossgate-counts` ({unseen, unread}) and `crossgate-item` (an item).
(() => {
  "use strict";
  if (customElements.get("crossgate-inbox")) return;

  const STYLE = `
    :host { position: relative; display: inline-block; font: inherit;
      --_accent: var(--crossgate-accent, #2c5fd4); --_badge: var(--crossgate-badge, #d4372c);
      --_bg: var(--crossgate-background, #fff); --_text: var(--crossgate-text, #1c1c1e);
      --_muted: var(--crossgate-muted, #6b6b70); --_radius: var(--crossgate-radius, 8px); }
    button { font: inherit; cursor: pointer; }
    .bell { position: relative; background: none; border: 0; padding: 6px; color: var(--_text); border-radius: var(--_radius); }
    .bell:focus-visible, .panel button:focus-visible, .panel a:focus-visible { outline: 2px solid var(--_accent); outline-offset: 2px; }
    .badge { position: absolute; top: 0; right: 0; min-width: 1.2em; padding: 0 .3em; border-radius: 1em;
      background: var(--_badge); color: #fff; font-size: .7em; line-height: 1.2em; text-align: center; }
    .badge[hidden] { display: none; }
    .panel { position: absolute; right: 0; z-index: 1000; width: var(--crossgate-width, 22rem); max-height: 28rem; overflow: auto;
      background: var(--_bg); color: var(--_text); border-radius: var(--_radius); box-shadow: 0 6px 24px rgba(0,0,0,.18); }
    .panel[hidden] { display: none; }
    header { display: flex; justify-content: space-between; align-items: center; padding: .6rem .8rem; border-bottom: 1px solid #e5e5ea; }
    header button, .actions button { background: none; border: 0; color: var(--_accent); padding: .2rem .3rem; }
    ul { list-style: none; margin: 0; padding: 0; }
    li { padding: .6rem .8rem; border-bottom: 1px solid #f0f0f3; }
    li.unread { border-left: 3px solid var(--_accent); }
    .title { font-weight: 600; display: block; }
    .body { display: block; margin: .2rem 0; }
    .open { all: unset; cursor: pointer; display: block; width: 100%; }
    time, .empty { color: var(--_muted); font-size: .8em; }
    .empty { padding: 1rem .8rem; }
    .actions { display: flex; gap: .4rem; justify-content: flex-end; }
    img { max-width: 100%; border-radius: calc(var(--_radius) / 2); }
    .banner { position: fixed; left: 50%; top: 1rem; transform: translateX(-50%); z-index: 1001;
      max-width: 32rem; display: flex; gap: .8rem; align-items: start; padding: .8rem 1rem;
      background: var(--_bg); color: var(--_text); border-radius: var(--_radius); box-shadow: 0 6px 24px rgba(0,0,0,.22); }
    .banner[hidden] { display: none; }
    .banner button { background: none; border: 0; color: var(--_accent); }`;

  class CrossgateInbox extends HTMLElement {
    static get observedAttributes() { return ["gateway", "token"]; }

    constructor() {
      super();
      this.items = [];
      this.counts = { unseen: 0, unread: 0 };
      const root = this.attachShadow({ mode: "open" });
      root.innerHTML = `<style>${STYLE}</style>
        <button class="bell" part="bell" aria-haspopup="true" aria-expanded="false">
          <svg width="22" height="22" viewBox="0 0 24 24" aria-hidden="true" fill="currentColor">
            <path d="M12 22a2 2 0 0 0 2-2h-4a2 2 0 0 0 2 2zm6-6V11a6 6 0 0 0-5-5.9V4a1 1 0 0 0-2 0v1.1A6 6 0 0 0 6 11v5l-2 2v1h16v-1z"/></svg>
          <span class="badge" part="badge" hidden></span>
        </button>
        <div class="banner" part="banner" role="status" hidden></div>
        <div class="panel" part="panel" role="dialog" aria-label="Notifications" hidden>
          <header><strong>Notifications</strong><button class="read-all" type="button">Mark all read</button></header>
          <ul role="list"></ul>
        </div>`;
      this.bell = root.querySelector(".bell");
      this.badge = root.querySelector(".badge");
      this.panel = root.querySelector(".panel");
      this.list = root.querySelector("ul");
      this.banner = root.querySelector(".banner");
      this.bell.addEventListener("click", () => this.toggle());
      root.querySelector(".read-all").addEventListener("click", () => this.post("/v1/inbox/read-all"));
      this.addEventListener("keydown", (e) => {
        if (e.key === "Escape" && !this.panel.hidden) { this.toggle(false); this.bell.focus(); }
      });
    }

    connectedCallback() { this.start(); }
    disconnectedCallback() { this.stop(); }
    attributeChangedCallback() { if (this.isConnected) this.start(); }

    get base() { return (this.getAttribute("gateway") || "").replace(/\/$/, ""); }
    get token() { return this.getAttribute("token") || ""; }

    start() {
      this.stop();
      if (!this.token) return;
      this.load();
      // EventSource cannot send headers: the token rides in the query.
      const url = `${this.base}/v1/inbox/stream?token=${encodeURIComponent(this.token)}`;
      this.source = new EventSource(url);
      this.source.addEventListener("counts", (e) => this.setCounts(JSON.parse(e.data)));
      this.source.addEventListener("item", (e) => {
        const item = JSON.parse(e.data);
        this.items = [item, ...this.items.filter((i) => i.id !== item.id)];
        this.render();
        this.dispatchEvent(new CustomEvent("crossgate-item", { detail: item }));
      });
    }

    stop() { if (this.source) { this.source.close(); this.source = null; } }

    async request(method, path) {
      const response = await fetch(this.base + path, {
        method,
        headers: { Authorization: `Bearer ${this.token}`, "Content-Type": "application/json" },
      });
      if (!response.ok) throw new Error(`${method} ${path}: ${response.status}`);
      return response.json();
    }

    async load() {
      try {
        const page = await this.request("GET", "/v1/inbox/items?limit=50");
        this.items = page.items;
        this.render();
      } catch (e) { console.warn("crossgate-inbox:", e); }
    }

    async post(path) {
      try {
        const changed = await this.request("POST", path);
        if (changed && changed.id) {
          this.items = this.items.map((i) => (i.id === changed.id ? changed : i));
        } else {
          await this.load();
        }
        this.render();
      } catch (e) { console.warn("crossgate-inbox:", e); }
    }

    setCounts(counts) {
      this.counts = counts;
      const n = counts.unread;
      this.badge.hidden = n === 0;
      this.badge.textContent = n > 99 ? "99+" : String(n);
      this.bell.setAttribute("aria-label", `Notifications, ${n} unread`);
      this.dispatchEvent(new CustomEvent("crossgate-counts", { detail: counts }));
    }

    toggle(open = this.panel.hidden) {
      this.panel.hidden = !open;
      this.bell.setAttribute("aria-expanded", String(open));
      if (!open) return;
      // What the customer now has in front of them is seen.
      for (const item of this.items.filter((i) => i.status === "unseen")) {
        this.post(`/v1/inbox/items/${encodeURIComponent(item.id)}/seen`);
      }
      const first = this.panel.querySelector("button, a");
      if (first) first.focus();
    }

    render() {
      this.showBanner();
      const live = this.items.filter((i) => i.status !== "archived" && i.channel !== "in_app");
      this.list.replaceChildren();
      if (live.length === 0) {
        const empty = document.createElement("li");
        empty.className = "empty";
        empty.textContent = "Nothing new";
        this.list.append(empty);
        return;
      }
      for (const item of live) this.list.append(this.row(item));
    }

    // The newest in-app message nobody has seen: shown until opened or
    // dismissed (either marks it seen; opening it also reads it).
    showBanner() {
      const now = Date.now();
      const banner = this.items.find((i) => i.channel === "in_app" && i.status === "unseen"
        && (!i.expires_at || Date.parse(i.expires_at) > now));
      this.banner.replaceChildren();
      this.banner.hidden = !banner;
      if (!banner) return;
      const open = this.row(banner).querySelector(".open");
      const dismiss = document.createElement("button");
      dismiss.type = "button";
      dismiss.className = "dismiss";
      dismiss.textContent = "Dismiss";
      dismiss.addEventListener("click", () => this.post(`/v1/inbox/items/${encodeURIComponent(banner.id)}/seen`));
      this.banner.append(open, dismiss);
    }

    // Built with textContent and checked links only: an item never adds markup.
    row(item) {
      const li = document.createElement("li");
      li.dataset.id = item.id;
      if (item.status !== "read") li.classList.add("unread");
      const open = document.createElement(item.action_url ? "a" : "button");
      open.className = "open";
      if (item.action_url && /^https?:\/\//i.test(item.action_url)) {
        open.href = item.action_url;
        open.rel = "noopener";
      } else {
        open.type = "button";
      }
      if (item.title) {
        const title = document.createElement("span");
        title.className = "title";
        title.textContent = item.title;
        open.append(title);
      }
      const body = document.createElement("span");
      body.className = "body";
      body.textContent = item.body;
      open.append(body);
      if (item.image_url && /^https?:\/\//i.test(item.image_url)) {
        const img = document.createElement("img");
        img.src = item.image_url;
        img.alt = "";
        open.append(img);
      }
      open.addEventListener("click", () => this.post(`/v1/inbox/items/${encodeURIComponent(item.id)}/read`));
      const when = document.createElement("time");
      when.dateTime = item.created_at;
      when.textContent = new Date(item.created_at).toLocaleString();
      const actions = document.createElement("div");
      actions.className = "actions";
      if (item.status !== "read") {
        actions.append(this.action("Mark read", item, "read"));
      }
      actions.append(this.action("Archive", item, "archive"));
      li.append(open, when, actions);
      return li;
    }

    action(label, item, verb) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = verb;
      button.textContent = label;
      button.setAttribute("aria-label", `${label}: ${item.title || item.body}`);
      button.addEventListener("click", () => this.post(`/v1/inbox/items/${encodeURIComponent(item.id)}/${verb}`));
      return button;
    }
  }

  customElements.define("crossgate-inbox", CrossgateInbox);
})();
