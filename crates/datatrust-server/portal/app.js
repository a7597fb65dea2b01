// The member portal. Talks to the trust's JSON transport (/api/<Service>/<Method>), keeps
// the member's private key in this browser only (IndexedDB, non-extractable), signs in by
// signing a challenge, and checks every proof it shows with verify.js.

import * as verify from "./verify.js";

const main = document.getElementById("main");
const banner = document.getElementById("banner");
const nav = document.getElementById("nav");

const session = {
  token: sessionStorage.getItem("datatrust-token"),
  publicKey: null, // Uint8Array
  privateKey: null, // CryptoKey
  info: null, // GetTrustInfo
  vkey: null, // parsed log vkey, once pinned and matching
  keysChanged: false,
};

const CATEGORY_COLOURS = {
  keystrokes: "#0b5394", pointer: "#b45f06", clicks: "#38761d", scrolls: "#741b47",
  focus: "#134f5c", screenshots: "#7f6000",
};
const PURPOSE_WORDS = {
  "computer-use-agent-training": "Training software agents that operate computers, the way people do at work",
  "accessibility-research": "Research to make computers easier to use for people with disabilities",
};
const PROHIBITED_WORDS = {
  "evaluate-discipline-or-dismiss-contributing-workers": "judging, disciplining or firing the workers whose data it is",
  "individual-productivity-monitoring": "watching how productive any one person is",
  "re-identification": "working out who a worker is from their data",
};

// --- small helpers ---------------------------------------------------------------------------

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  for (const child of children.flat()) if (child) node.append(child);
  return node;
}

function show(title, ...content) {
  main.replaceChildren(element("h1", { text: title }), ...content.flat().filter((part) => part !== null && part !== undefined && part !== false));
  document.title = `${title} · Your data trust`;
  main.focus();
}

function say(message, kind = "info") {
  banner.textContent = message;
  banner.className = kind === "error" ? "error" : "";
  banner.hidden = !message;
}

function when(seconds) {
  return new Date(Number(seconds) * 1000).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

function day(unixDay) {
  return new Date(Number(unixDay) * 86400000).toLocaleDateString(undefined, { dateStyle: "medium", timeZone: "UTC" });
}

function money(minor, currency) {
  // Amounts are whole minor units: the currency says how many decimals a unit has (two for
  // EUR, none for JPY, three for BHD).
  try {
    const format = new Intl.NumberFormat(undefined, { style: "currency", currency });
    const decimals = format.resolvedOptions().maximumFractionDigits;
    return format.format(Number(minor) / 10 ** decimals);
  } catch {
    return `${minor} ${currency} (minor units)`;
  }
}

function words(purpose) {
  return PURPOSE_WORDS[purpose] || purpose.replaceAll("-", " ");
}

function keyText(bytes) {
  return verify.base64(bytes || []);
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, body = {}, raw = false) {
  const headers = { "content-type": "application/json" };
  if (session.token) headers.authorization = `Bearer ${session.token}`;
  const response = await fetch(`/api/${method}`, { method: "POST", headers, body: JSON.stringify(body) });
  if (!response.ok) {
    let problem = { code: "Unknown", message: response.statusText };
    try { problem = await response.json(); } catch { /* not JSON */ }
    if (response.status === 401 && session.token) {
      signOut("Your session ended; sign in again.");
    }
    throw new ApiError(response.status, problem.code, problem.message);
  }
  return raw ? response : response.json();
}

function verifiedMark(result) {
  if (result === true) {
    return element("span", { class: "verified", "data-verified": "yes" }, "\u2713 Verified in your browser");
  }
  return element("span", { class: "unverified", "data-verified": "no", role: "status" },
    `\u2717 Could not be verified: ${result}`);
}

async function check(work) {
  if (!session.vkey) return session.keysChanged ? "the trust's keys changed since you first used this page" : "the trust's key is not pinned";
  try {
    await work(session.vkey);
    return true;
  } catch (problem) {
    return problem.message || String(problem);
  }
}

// --- keys in this browser --------------------------------------------------------------------

function database() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open("datatrust", 1);
    request.onupgradeneeded = () => request.result.createObjectStore("keys");
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function storedKey() {
  const db = await database();
  return new Promise((resolve, reject) => {
    const request = db.transaction("keys").objectStore("keys").get("member");
    request.onsuccess = () => resolve(request.result || null);
    request.onerror = () => reject(request.error);
  });
}

async function storeKey(record) {
  const db = await database();
  return new Promise((resolve, reject) => {
    const transaction = db.transaction("keys", "readwrite");
    if (record) transaction.objectStore("keys").put(record, "member");
    else transaction.objectStore("keys").delete("member");
    transaction.oncomplete = () => resolve();
    transaction.onerror = () => reject(transaction.error);
  });
}

// A key file is signed-note private key text: PRIVATE+KEY+<name>+<hex id>+<base64(1 || seed)>.
async function importKeyFile(text) {
  const fields = text.trim().split("+");
  if (fields.length < 5 || fields[0] !== "PRIVATE" || fields[1] !== "KEY") {
    throw new Error("This is not a datatrust key file (it should start with PRIVATE+KEY+).");
  }
  const seed = verify.fromBase64(fields.slice(4).join("+"));
  if (seed.length !== 33 || seed[0] !== 1) throw new Error("This key file does not hold an Ed25519 key.");
  const pkcs8 = verify.concat(verify.fromHex("302e020100300506032b657004220420"), seed.slice(1));
  // Imported once as extractable only to learn the public half, then kept non-extractable.
  const temporary = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, true, ["sign"]);
  const jwk = await crypto.subtle.exportKey("jwk", temporary);
  const privateKey = await crypto.subtle.importKey("jwk", { kty: "OKP", crv: "Ed25519", d: jwk.d, x: jwk.x },
    { name: "Ed25519" }, false, ["sign"]);
  const publicKey = verify.fromBase64(jwk.x.replaceAll("-", "+").replaceAll("_", "/") + "=");
  return { privateKey, publicKey };
}

// A new key, kept non-extractable; its key file text is returned once, for the member to
// save a copy (the only way back in, besides a recovery by trustees, if this browser's data
// is lost). The file also works with the datatrust command.
async function createKey() {
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]);
  const publicKey = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
  const typed = verify.concat(new Uint8Array([1]), pkcs8.slice(pkcs8.length - 32));
  const name = "datatrust";
  const id = verify.hex((await verify.sha256(name, "\n", verify.concat(new Uint8Array([1]), publicKey))).slice(0, 4));
  const keyFile = `PRIVATE+KEY+${name}+${id}+${verify.base64(typed)}\n`;
  const { privateKey } = await importKeyFile(keyFile);
  return { privateKey, publicKey, keyFile };
}

async function sign(text) {
  return Array.from(new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, session.privateKey, new TextEncoder().encode(text))));
}

function normaliseCode(text) {
  let out = "";
  for (const character of text.toUpperCase()) {
    if (character === "-" || character === " ") continue;
    out += character === "O" ? "0" : character === "I" || character === "L" ? "1" : character;
  }
  return out.match(/.{1,5}/g)?.join("-") || "";
}

// --- the trust's keys, pinned on first use ---------------------------------------------------

async function pinTrust() {
  session.info = await api("TrustService/GetTrustInfo");
  const pinned = JSON.parse(localStorage.getItem("datatrust-pinned") || "null");
  if (!pinned) {
    localStorage.setItem("datatrust-pinned", JSON.stringify({
      origin: session.info.origin, log_vkey: session.info.log_vkey, license_vkey: session.info.license_vkey,
      at: Date.now(),
    }));
    say("This browser now remembers the trust's keys. Every proof on these pages is checked against them.");
  } else if (pinned.log_vkey !== session.info.log_vkey || pinned.license_vkey !== session.info.license_vkey) {
    session.keysChanged = true;
    say("Warning: the trust's keys are not the ones this browser remembers. Nothing will be shown as verified. Ask your union before going on.", "error");
  }
  if (!session.keysChanged) session.vkey = await verify.parseVkey(session.info.log_vkey);
  const footer = document.getElementById("trust-keys");
  footer.replaceChildren(
    element("span", {}, `Trust ${session.info.origin}. `),
    element("details", {},
      element("summary", {}, "The keys this browser checks proofs against"),
      element("pre", { "data-testid": "pinned-log-vkey" }, `log: ${session.info.log_vkey}\nlicenses: ${session.info.license_vkey}`)));
}

// --- sign in ---------------------------------------------------------------------------------

async function signIn() {
  const challenge = await api("AuthService/CreateChallenge", { public_key: Array.from(session.publicKey) });
  const challengeBase64 = verify.base64(challenge.challenge);
  const message = `datatrust login v1\n${session.info.origin}\n${keyText(session.publicKey)}\n${challengeBase64}\n`;
  const login = await api("AuthService/Login", {
    public_key: Array.from(session.publicKey), challenge: challenge.challenge, signature: await sign(message),
  });
  session.token = login.token;
  sessionStorage.setItem("datatrust-token", login.token);
  return login.principal;
}

function signOut(message = "") {
  session.token = null;
  sessionStorage.removeItem("datatrust-token");
  nav.hidden = true;
  say(message);
  location.hash = "";
  route();
}

async function viewSignIn() {
  nav.hidden = true;
  const stored = await storedKey();
  const status = element("p", { role: "status", id: "signin-status" });
  const useStored = async () => {
    session.privateKey = stored.privateKey;
    session.publicKey = stored.publicKey;
    await attempt();
  };
  const attempt = async () => {
    status.textContent = "Signing in\u2026";
    try {
      const principal = await signIn();
      if (principal.role !== "ROLE_MEMBER" && principal.role !== 2) {
        status.textContent = "This key belongs to someone who is not a member. The portal is for members.";
        session.token = null;
        sessionStorage.removeItem("datatrust-token");
        return;
      }
      status.textContent = "";
      location.hash = "#data";
      route();
    } catch (problem) {
      if (problem.status === 401 && /not an active principal/.test(problem.message)) {
        status.textContent = "The trust does not know this key yet. If your union gave you an invitation code, enter it below.";
        redeemForm.hidden = false;
        redeemForm.querySelector("input").focus();
      } else {
        status.textContent = `Could not sign in: ${problem.message}`;
      }
    }
  };
  const fileInput = element("input", { type: "file", id: "key-file", accept: ".key,.txt,text/plain" });
  fileInput.addEventListener("change", async () => {
    const file = fileInput.files[0];
    if (!file) return;
    try {
      const imported = await importKeyFile(await file.text());
      await storeKey(imported);
      Object.assign(session, imported);
      await attempt();
    } catch (problem) {
      status.textContent = problem.message;
    }
  });
  const redeemForm = element("form", { id: "redeem", hidden: true, onsubmit: async (event) => {
    event.preventDefault();
    const code = normaliseCode(redeemForm.querySelector("input").value);
    status.textContent = "Redeeming the invitation\u2026";
    try {
      const message = `datatrust redeem invitation v1\n${session.info.origin}\n${keyText(session.publicKey)}\n${code}\n`;
      await api("AuthService/RedeemInvitation", {
        invitation_code: code, public_key: Array.from(session.publicKey), signature: await sign(message),
      });
      await attempt();
    } catch (problem) {
      status.textContent = `The invitation was not accepted: ${problem.message}`;
    }
  } },
    element("label", { for: "invitation-code" }, "Invitation code"),
    element("input", { type: "text", id: "invitation-code", autocomplete: "off", placeholder: "XXXXX-XXXXX-XXXXX-XXXXX" }),
    element("p", {}, element("button", { type: "submit" }, "Join the trust")));
  const createButton = element("button", { type: "button", class: "secondary", onclick: async () => {
    const { keyFile, ...created } = await createKey();
    await storeKey(created);
    Object.assign(session, created);
    status.textContent = "A new key was made. It lives only in this browser: if this browser's data is cleared or this device is lost, so is your key, and only your union's trustees can give you access again. Save a copy of it now and keep it somewhere safe (a USB stick, a password manager). Then enter the invitation code your union gave you.";
    const link = element("a", {
      id: "save-key",
      class: "button",
      href: URL.createObjectURL(new Blob([keyFile], { type: "text/plain" })),
      download: "my-datatrust.key",
    }, "Save a copy of my key");
    status.after(element("p", {}, link));
    redeemForm.hidden = false;
    redeemForm.querySelector("input").focus();
  } }, "Make a new key on this device");
  show("Sign in",
    element("p", {}, "You sign in with your own key, not a password. Your key never leaves this device."),
    stored ? element("div", { class: "card" },
      element("p", {}, "This browser holds your key."),
      element("div", { class: "row" },
        element("button", { type: "button", id: "sign-in", onclick: useStored }, "Sign in"),
        element("button", { type: "button", class: "secondary", onclick: async () => { await storeKey(null); route(); } }, "Forget the key on this device"))) : null,
    element("div", { class: "card" },
      element("label", { for: "key-file" }, "I have a key file"),
      fileInput,
      element("p", { class: "muted" }, "The file your union or the datatrust program gave you (it starts with PRIVATE+KEY+).")),
    element("div", { class: "card" },
      element("p", {}, "New here, with an invitation code?"),
      createButton),
    redeemForm,
    status,
    element("p", {}, element("a", { href: "#public" }, "See the public report without signing in")));
}

// --- my data ---------------------------------------------------------------------------------

function stackedChart(rows, keys, colours, label, format = String) {
  // rows: [{label, values: {key: number}}]
  const width = 640, height = 220, left = 76, bottom = 30, top = 10;
  const max = Math.max(1, ...rows.map((row) => keys.reduce((sum, key) => sum + (row.values[key] || 0), 0)));
  const band = (width - left - 10) / Math.max(rows.length, 1);
  const bars = [];
  rows.forEach((row, index) => {
    let y = height - bottom;
    for (const key of keys) {
      const value = row.values[key] || 0;
      if (!value) continue;
      const h = (value / max) * (height - bottom - top);
      y -= h;
      bars.push(svg("rect", { x: left + index * band + band * 0.15, y, width: band * 0.7, height: h, fill: colours[key] || "#555" },
        svg("title", {}, document.createTextNode(`${row.label}: ${format(value)} ${key}`))));
    }
    bars.push(svg("text", { x: left + index * band + band / 2, y: height - 10, "text-anchor": "middle", "font-size": 11 },
      document.createTextNode(row.label)));
  });
  const axis = svg("text", { x: 4, y: top + 10, "font-size": 11 }, document.createTextNode(format(max)));
  return svg("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label },
    svg("line", { x1: left, y1: height - bottom, x2: width - 5, y2: height - bottom, stroke: "#888" }), axis, ...bars);
}

// A colour key (an SVG square: the page's policy allows no inline styles).
function swatch(colour) {
  return svg("svg", { width: 14, height: 14, viewBox: "0 0 14 14", "aria-hidden": "true", class: "swatch" },
    svg("rect", { width: 14, height: 14, rx: 2, fill: colour }));
}

async function viewData() {
  const summary = await api("MemberDataService/GetMyDataSummary");
  const counts = summary.counts || [];
  const categories = [...new Set(counts.map((count) => count.category))].sort();
  const days = [...new Set(counts.map((count) => count.day))].sort((a, b) => a - b);
  const rows = days.map((unixDay) => ({
    label: day(unixDay),
    values: Object.fromEntries(counts.filter((count) => count.day === unixDay).map((count) => [count.category, count.count])),
  }));
  const total = counts.reduce((sum, count) => sum + count.count, 0);
  const erase = element("form", { class: "card", onsubmit: async (event) => {
    event.preventDefault();
    const typed = erase.querySelector("input").value.trim();
    if (typed !== "erase all my data") {
      erase.querySelector("[role=status]").textContent = "Type the words exactly: erase all my data";
      return;
    }
    const done = await api("MemberDataService/EraseMyData", { confirm: typed });
    say(`Everything the trust held about you is erased (${done.chunks_erased} pieces). The erasure is in the public log at entry ${done.log_index}.`);
    route();
  } },
    element("h2", {}, "Erase everything"),
    element("p", {}, "This deletes all your data held by the trust and destroys the key it was locked with. It cannot be undone. Nothing of yours will ever be released again. Companies that already trained on released data are not affected."),
    element("label", { for: "erase-confirm" }, "To confirm, type: erase all my data"),
    element("input", { type: "text", id: "erase-confirm", autocomplete: "off" }),
    element("p", {}, element("button", { type: "submit", class: "danger" }, "Erase all my data")),
    element("p", { role: "status" }));
  show("My data",
    element("p", {}, `The trust holds ${total} records about your work, counted by day and kind.`),
    summary.retention_days ? element("p", {}, `Under the agreement each day's records are kept for ${summary.retention_days} days after that day, then deleted (the table says until when).`) : null,
    counts.length ? element("figure", {},
      stackedChart(rows, categories, CATEGORY_COLOURS, "Records held about you per day, by kind"),
      element("ul", { class: "legend" }, categories.map((category) =>
        element("li", {}, swatch(CATEGORY_COLOURS[category] || "#555"), category)))) :
      element("p", { class: "muted" }, "Nothing yet."),
    element("details", {}, element("summary", {}, "The same as a table"),
      element("div", { class: "table-wrap" }, element("table", { id: "data-table" },
        element("thead", {}, element("tr", {}, element("th", {}, "Day"), element("th", {}, "Kind"), element("th", { class: "number" }, "Records"), element("th", {}, "Kept until"))),
        element("tbody", {}, counts.map((count) => element("tr", {},
          element("td", {}, day(count.day)), element("td", {}, count.category), element("td", { class: "number" }, count.count),
          element("td", {}, day(Math.floor(Number(count.kept_until) / 86400))))))))),
    element("div", { class: "card" },
      element("h2", {}, "Take a copy"),
      element("p", {}, "Download everything the trust holds about you, in an open format (JSON Lines)."),
      element("button", { type: "button", id: "export", onclick: async () => {
        const response = await api("MemberDataService/ExportMyData", {}, true);
        const blob = await response.blob();
        const link = element("a", { href: URL.createObjectURL(blob), download: "my-datatrust-data.jsonl" });
        document.body.append(link);
        link.click();
        link.remove();
      } }, "Download my data")),
    erase);
}

// --- consent ---------------------------------------------------------------------------------

async function viewConsent() {
  const [active, mine] = await Promise.all([api("TermsService/GetActiveTerms"), api("ConsentService/ListMyConsents")]);
  const terms = active.terms;
  if (!terms) {
    show("My consent", element("p", {}, "No agreement is in force yet, so nothing can be used."));
    return;
  }
  const granted = Object.fromEntries((mine.consents || []).map((consent) => [consent.purpose, consent]));
  const status = element("p", { role: "status", id: "consent-status" });
  show("My consent",
    element("p", {}, "Your data is used only for what you switch on here. Nothing is on unless you say so. You can switch off at any time: your data is then left out of every later release."),
    ...terms.purposes.map((purpose) => {
      const id = `consent-${purpose}`;
      const input = element("input", { type: "checkbox", id, role: "switch", checked: granted[purpose]?.granted ? true : undefined });
      input.addEventListener("change", async () => {
        input.disabled = true;
        try {
          const result = await api("ConsentService/SetConsent", { purpose, granted: input.checked });
          status.textContent = `${input.checked ? "Switched on" : "Switched off"}: ${words(purpose)}. Recorded in the public log${result.log_index !== undefined && result.log_index !== null ? ` at entry ${result.log_index}` : ""}.`;
        } catch (problem) {
          input.checked = !input.checked;
          status.textContent = `Not changed: ${problem.message}`;
        } finally {
          input.disabled = false;
        }
      });
      return element("div", { class: "card switch" }, input,
        element("label", { for: id }, words(purpose), element("span", { class: "muted" }, ` (${purpose})`)));
    }),
    status,
    element("p", { class: "muted" }, "Never allowed, whatever you choose: ",
      (terms.prohibited_uses || []).map((use) => PROHIBITED_WORDS[use] || use.replaceAll("-", " ")).join("; "), "."));
}

// --- where my data went ----------------------------------------------------------------------

async function publicNames() {
  try {
    const report = await api("TrustService/GetTransparencyReport");
    return Object.fromEntries((report.licenses || []).map((license) => [license.id, license.licensee_name]));
  } catch {
    return {};
  }
}

async function viewUses() {
  const [first, names] = await Promise.all([api("MemberDataService/GetMyAudit"), publicNames()]);
  const salt = verify.bytes(first.commitment_salt || []);
  const entries = first.entries || [];
  for (let token = first.next_page_token || ""; token;) {
    const page = await api("MemberDataService/GetMyAudit", { page_token: token });
    entries.push(...(page.entries || []));
    token = page.next_page_token || "";
  }
  const items = [];
  for (const entry of entries) {
    const result = await check((vkey) => verify.verifyAuditEntry(entry, session.publicKey, salt, vkey));
    const company = names[entry.license_id] || keyText(entry.licensee);
    items.push({ at: entry.released_at, node: element("li", { "data-testid": "release", "data-release": entry.release_id },
      element("p", {}, element("strong", {}, when(entry.released_at)), ` \u2014 ${entry.my_records} of your records were released to `,
        element("strong", {}, company), ` for ${words(entry.purpose)} (${entry.model_family} models).`),
      element("p", {}, verifiedMark(result)),
      entry.uses.length ? element("ul", {}, entry.uses.map((use) =>
        element("li", { "data-testid": "use" }, `${when(use.reported_at)}: used to train ${use.model} version ${use.model_version} (run ${use.run_id}).`))) :
        element("p", { class: "muted" }, "Not used for training yet."),
      element("details", {}, element("summary", {}, "Details and proofs"),
        element("pre", {}, `license ${entry.license_id}\nrelease ${entry.release_id}, logged root ${entry.release_root}\nyour contribution ${entry.commitment} (leaf ${entry.part_index} of ${entry.parts})\ncategories ${(entry.categories || []).join(", ")}`))) });
  }
  items.sort((a, b) => b.at - a.at);
  show("Where my data went",
    element("p", {}, "Every release that included your records, and every training run that used it. Each line is checked in your browser against the trust's public log."),
    items.length ? element("ul", { class: "timeline", id: "timeline" }, items.map((item) => item.node)) :
      element("p", { class: "muted" }, "No release has included your data."));
}

// --- earnings --------------------------------------------------------------------------------

async function viewEarnings() {
  const statement = await api("LedgerService/GetMyStatement");
  statement.lines = statement.lines || [];
  for (let token = statement.next_page_token || ""; token;) {
    const page = await api("LedgerService/GetMyStatement", { page_token: token });
    statement.lines.push(...(page.lines || []));
    token = page.next_page_token || "";
  }
  const salt = verify.bytes(statement.commitment_salt || []);
  const rows = [];
  for (const line of statement.lines || []) {
    const result = await check((vkey) => verify.verifyShare(line, session.publicKey, salt, vkey));
    rows.push({ line, result });
  }
  rows.sort((a, b) => a.line.charge.created_at - b.line.charge.created_at);
  const totals = statement.totals || [];
  const chartRows = rows.map(({ line }) => ({
    label: new Date(line.charge.created_at * 1000).toLocaleDateString(),
    values: { [line.charge.kind]: line.my_amount },
  }));
  show("My earnings",
    element("p", {}, "What companies paid for using your data, your share of each payment, and what the union has paid out to you."),
    element("div", { class: "row" }, totals.map((total) => element("div", { class: "card", "data-testid": "totals", "data-currency": total.currency },
      element("p", { class: "muted" }, `Earned (${total.currency})`), element("p", { class: "figure", "data-testid": "earned" }, money(total.earned, total.currency)),
      element("p", {}, `Paid out: ${money(total.paid_out, total.currency)}`),
      element("p", {}, "Balance: ", element("strong", { "data-testid": "balance" }, money(total.balance, total.currency)))))),
    rows.length ? stackedChart(chartRows, ["license-fee", "training-run"], { "license-fee": "#0b5394", "training-run": "#38761d" },
      "Your share of each charge", (value) => money(value, rows[0].line.charge.currency)) : null,
    rows.length ? element("div", { class: "table-wrap" }, element("table", { id: "earnings-table", class: "cards" },
      element("thead", {}, element("tr", {}, element("th", {}, "When"), element("th", {}, "For"), element("th", { class: "number" }, "Your records"),
        element("th", { class: "number" }, "Your share"), element("th", { class: "number" }, "Whole charge"), element("th", {}, "Checked"))),
      element("tbody", {}, rows.map(({ line, result }) => element("tr", { "data-testid": "share", "data-amount": line.my_amount },
        element("td", { "data-label": "When" }, when(line.charge.created_at)),
        element("td", { "data-label": "For" }, line.charge.kind === "license-fee" ? `License fee (${line.charge.license_id.slice(0, 8)}\u2026)` : `Training run ${line.charge.run_id}`),
        element("td", { class: "number", "data-label": "Your records" }, line.my_records),
        element("td", { class: "number", "data-label": "Your share" }, money(line.my_amount, line.charge.currency)),
        element("td", { class: "number", "data-label": "Whole charge" }, money(line.charge.amount, line.charge.currency)),
        element("td", { "data-label": "Checked" }, verifiedMark(result))))))) :
      element("p", { class: "muted" }, "Nothing earned yet: no company has paid for your data."),
    (statement.payouts || []).length ? element("div", {}, element("h2", {}, "Paid out to you"),
      element("ul", {}, statement.payouts.map((payout) => element("li", {}, `${when(payout.paid_at)}: ${money(payout.amount, payout.currency)} (${payout.reference})`)))) : null);
}

// --- the agreement ---------------------------------------------------------------------------

function lineDiff(before, after) {
  const a = before.split("\n"), b = after.split("\n");
  const table = Array.from({ length: a.length + 1 }, () => new Array(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      table[i][j] = a[i] === b[j] ? table[i + 1][j + 1] + 1 : Math.max(table[i + 1][j], table[i][j + 1]);
    }
  }
  const out = [];
  let i = 0, j = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) { out.push(["same", a[i]]); i++; j++; }
    else if (table[i + 1][j] >= table[i][j + 1]) out.push(["removed", a[i++]]);
    else out.push(["added", b[j++]]);
  }
  while (i < a.length) out.push(["removed", a[i++]]);
  while (j < b.length) out.push(["added", b[j++]]);
  return out;
}

const SETTING_WORDS = {
  retention_days: "How long your data may be kept (days)",
  max_license_days: "Longest a license may run (days)",
  license_fee: "Fee for each license (cents)",
  per_training_run: "Fee for each training run (cents)",
  minimum_per_license: "Least a license must pay (cents)",
  union_fund_basis_points: "Union fund's share (hundredths of a percent)",
  distribution: "How members' shares are worked out",
  invoice_grace_days: "Days a company has to pay",
  usage_report_days: "Days between a company's usage reports",
  member_vote_threshold_percent: "Yes votes needed (percent)",
  member_quorum_percent: "Members who must vote (percent)",
  trustee_quorum: "Trustees who must sign",
  consent_model: "How consent works",
  purposes: "What the data may be used for",
  on_consent_withdrawal: "What withdrawing consent does",
};

// Settings changed between two agreements, in words: [[what, before, after]].
function changedSettings(before, after) {
  const settings = (text) => {
    const found = {};
    for (const line of text.split("\n")) {
      const match = /^([a-z_]+) = (.*?)\s*(#.*)?$/.exec(line.trim());
      if (match && SETTING_WORDS[match[1]]) found[match[1]] = match[2];
    }
    return found;
  };
  const a = settings(before), b = settings(after);
  return Object.keys(SETTING_WORDS)
    .filter((key) => a[key] !== b[key])
    .map((key) => [SETTING_WORDS[key], a[key] ?? "(not set)", b[key] ?? "(not set)"]);
}

// Every item of a paged list method, page after page.
async function allPages(method, field, body = {}) {
  const items = [];
  let pageToken = "";
  do {
    const page = await api(method, { ...body, page_token: pageToken });
    items.push(...(page[field] || []));
    pageToken = page.next_page_token || "";
  } while (pageToken);
  return items;
}

async function viewAgreement() {
  const all = (await allPages("TermsService/ListTerms", "terms"))
    .sort((a, b) => Number(a.version) - Number(b.version));
  const statusName = (status) => ({ 1: "open for your vote", 2: "waiting for trustees to sign", 3: "in force", 4: "replaced", 5: "rejected" })[status] ||
    String(status).replace("TERMS_STATUS_", "").toLowerCase().replaceAll("_", " ");
  const inForce = all.find((terms) => terms.status === 3 || terms.status === "TERMS_STATUS_RATIFIED");
  const voting = all.find((terms) => terms.status === 1 || terms.status === "TERMS_STATUS_VOTING");
  const sections = [];
  if (voting) {
    const ballot = await api("TermsService/GetMyBallot", { terms_sha256: voting.sha256 });
    const status = element("p", { role: "status", id: "ballot-status" },
      ballot.approve === undefined || ballot.approve === null ? "You have not voted yet." : `Your vote: ${ballot.approve ? "yes" : "no"}. You can change it until the vote closes.`);
    const vote = async (approve) => {
      const message = `datatrust ballot v1\n${session.info.origin}\n${voting.sha256}\n${approve ? "yes" : "no"}\n`;
      try {
        await api("TermsService/CastBallot", { terms_sha256: voting.sha256, approve, signature: await sign(message) });
        status.textContent = `Your vote: ${approve ? "yes" : "no"}. It is secret; you can change it until the vote closes.`;
      } catch (problem) {
        status.textContent = `Your vote was not counted: ${problem.message}`;
      }
    };
    const previous = inForce ? inForce.document : "";
    sections.push(element("div", { class: "card", id: "vote" },
      element("h2", {}, `A new agreement is open for your vote: ${voting.title}`),
      voting.voting_closes_at ? element("p", { "data-testid": "vote-deadline" },
        `The vote closes on ${when(voting.voting_closes_at)}; then it is counted by itself. Choose yes or no; you can change your choice until then.`) : null,
      element("div", { class: "row" },
        element("button", { type: "button", onclick: () => vote(true) }, "Vote yes"),
        element("button", { type: "button", class: "secondary", onclick: () => vote(false) }, "Vote no")),
      status,
      inForce ? element("div", { id: "changes" }, element("h3", {}, "What would change"),
        changedSettings(inForce.document, voting.document).length ?
          element("ul", {}, changedSettings(inForce.document, voting.document).map(([what, from, to]) =>
            element("li", {}, `${what}: ${from} \u2192 ${to}`))) :
          element("p", {}, inForce.text === voting.text ? "No rule changes." : "The wording changes; see below.")) : null,
      element("details", { open: !inForce }, element("summary", {}, inForce ? "Every line that changes" : "The proposed agreement"),
        element("pre", { class: "diff" }, lineDiff(previous, voting.document).filter(([kind]) => !inForce || kind !== "same").map(([kind, text]) =>
          element("div", { class: kind === "same" ? "" : `diff-${kind}` }, `${kind === "added" ? "+ " : kind === "removed" ? "- " : "  "}${text}`))))));
  }
  if (inForce) {
    const older = all.filter((terms) => terms.version < inForce.version).sort((a, b) => b.version - a.version)[0];
    sections.push(element("div", { class: "card" },
      element("h2", {}, `In force: ${inForce.title}`),
      element("p", { class: "muted" }, `Version ${inForce.version}, ${statusName(inForce.status)} since ${when(inForce.ratified_at)}. ` +
        `${inForce.votes_yes ?? "?"} members voted yes, ${inForce.votes_no ?? "?"} no.`),
      element("div", { class: "agreement-text" }, inForce.text),
      older ? element("details", {}, element("summary", {}, `What changed from version ${older.version}`),
        element("pre", { class: "diff" }, lineDiff(older.document, inForce.document).filter(([kind]) => kind !== "same").map(([kind, text]) =>
          element("div", { class: `diff-${kind}` }, `${kind === "added" ? "+ " : "- "}${text}`)))) : null,
      element("details", {}, element("summary", {}, "The exact rules the trust enforces"), element("pre", {}, inForce.document))));
  }
  show("The agreement", ...(sections.length ? sections : [element("p", {}, "No agreement has been proposed yet.")]));
}

// --- public report ---------------------------------------------------------------------------

async function viewPublic() {
  const report = await api("TrustService/GetTransparencyReport");
  let checkpoint = "not checked";
  if (session.vkey) {
    try {
      const opened = await verify.openCheckpoint(report.checkpoint, session.vkey);
      checkpoint = opened.size === report.log_size ? true : "the size does not match";
    } catch (problem) {
      checkpoint = problem.message;
    }
  }
  const months = report.training_uses_per_month || [];
  show("Public report",
    element("p", {}, "What anyone may know about this trust: no sign-in, and nothing about any worker."),
    element("div", { class: "card" }, element("h2", {}, "The agreement in force"),
      report.terms_title ? element("p", {}, `${report.terms_title} (version ${report.terms_version}, in force since ${when(report.terms_ratified_at)})`) :
        element("p", {}, "None yet.")),
    element("div", { class: "card" }, element("h2", {}, "Licenses granted"),
      (report.licenses || []).length ? element("div", { class: "table-wrap" }, element("table", { id: "licenses-table" },
        element("thead", {}, element("tr", {}, ["Company", "Purpose", "Data", "From", "Until", "Status"].map((heading) => element("th", {}, heading)))),
        element("tbody", {}, report.licenses.map((license) => element("tr", {},
          element("td", {}, license.licensee_name || keyText(license.licensee)), element("td", {}, words(license.purpose)),
          element("td", {}, license.categories.join(", ")), element("td", {}, when(license.not_before)),
          element("td", {}, when(license.expires)), element("td", {}, license.status))))))
        : element("p", {}, "None yet.")),
    element("div", { class: "card" }, element("h2", {}, "Training runs reported, per month"),
      months.length ? stackedChart(months.map((month) => ({ label: month.month, values: { runs: month.count } })), ["runs"], { runs: "#38761d" }, "Training runs per month") : null,
      element("ul", { id: "uses-per-month" }, months.map((month) => element("li", {}, `${month.month}: ${month.count}`)))),
    element("div", { class: "card" }, element("h2", {}, "Money for members"),
      (report.money || []).length ? element("ul", {}, report.money.map((line) => element("li", { "data-testid": "public-money" },
        `Charged to companies ${money(line.charged, line.currency)}; members' share ${money(line.members_earned, line.currency)}; paid out to members ${money(line.paid_to_members, line.currency)}.`)))
        : element("p", {}, "Nothing charged yet.")),
    element("div", { class: "card" }, element("h2", {}, "The public log"),
      element("p", {}, `${report.log_size} entries. `, verifiedMark(checkpoint)),
      element("details", {}, element("summary", {}, "Latest signed checkpoint"), element("pre", {}, report.checkpoint))));
}

// --- routing ---------------------------------------------------------------------------------

const VIEWS = { data: viewData, consent: viewConsent, uses: viewUses, earnings: viewEarnings, agreement: viewAgreement };

// Routes render one after another, so a slow view never overwrites a later one.
let routing = Promise.resolve();
function route() {
  routing = routing.then(render, render);
  return routing;
}

async function render() {
  const name = location.hash.replace(/^#/, "") || (location.pathname === "/transparency" ? "public" : "");
  try {
    if (name === "public") {
      nav.hidden = !session.token;
      await viewPublic();
    } else if (!session.token || !session.publicKey) {
      await viewSignIn();
    } else {
      nav.hidden = false;
      await (VIEWS[name] || viewData)();
    }
    for (const link of nav.querySelectorAll("a")) {
      if (link.getAttribute("href") === `#${name || "data"}`) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
  } catch (problem) {
    if (problem instanceof ApiError && problem.status === 401) return;
    show("Something went wrong", element("p", {}, problem.message || String(problem)),
      element("p", {}, element("button", { type: "button", onclick: route }, "Try again")));
  }
}

async function start() {
  document.getElementById("sign-out").addEventListener("click", () => signOut("You are signed out."));
  document.querySelector("a.skip").addEventListener("click", (event) => {
    event.preventDefault();
    main.focus();
  });
  window.addEventListener("hashchange", route);
  try {
    await pinTrust();
  } catch (problem) {
    say(`The trust cannot be reached: ${problem.message}`, "error");
  }
  const stored = await storedKey().catch(() => null);
  if (stored) {
    session.privateKey = stored.privateKey;
    session.publicKey = stored.publicKey;
  }
  if (session.token && !session.publicKey) session.token = null;
  await route();
}

start();
