// The dashboard page's shell: NETPIE REST calls, polling, DOM. Pure parts are in view.js.
// docs/dashboard.md section 6.
import * as V from "./view.js";

const q = new URLSearchParams(location.search);
const AUTH = q.get("auth") || document.querySelector('meta[name="netpie-auth"]').content;
const API = (q.get("api") || location.origin).replace(/\/$/, "") + "/v2/device";
const POLL_MS = 3000;          // shadow read while the page is visible: 2 shadow ops (~1.1 KB)
const IDLE_POLL_MS = 10000;    // after 5 minutes without a touch
const HIDDEN_POLL_MS = 60000;  // tab in the background
const STATUS_MS = 15000;
const FEED_MS = 60000;
const HOLD_MS = 6000;          // a control the user just moved is not overwritten for this long

let spec = null, alias = "meter", shadow = {}, feed = [], haveFeed = true;
let lastTouch = Date.now(), failures = 0, timer = null, held = {}, meterOnline = null;
const $ = (id) => document.getElementById(id);

async function api(method, path, body) {
  const sep = path.includes("?") ? "&" : "?";
  const r = await fetch(API + path + sep + "alias=" + encodeURIComponent(alias), {
    method, body, cache: "no-store",
    headers: Object.assign({Authorization: "Device " + AUTH},
                           body == null ? {} : {"Content-Type": body[0] === "{" && path.startsWith("/shadow") ? "application/json" : "text/plain"}),
  });
  if (!r.ok) throw new Error(method + " " + path + ": HTTP " + r.status);
  return r.json();
}

// publishMsg("<alias>/<cmd>", value): the meter's @msg/<alias>/<cmd> (docs/netpie.md section 5);
// while the meter is offline a message would be lost, so the command goes into the shadow instead
async function send(cmd, value) {
  lastTouch = Date.now();
  toast("sending " + cmd + " " + value + " …");
  try {
    if (meterOnline === false) {
      await api("PUT", "/shadow/data", JSON.stringify({data: V.shadowForm(cmd, value)}));
      toast("meter offline: " + cmd + " " + value + " kept in the shadow until it is back");
    } else {
      await api("PUT", "/message/" + alias + "/" + cmd, String(value));
      toast("sent " + cmd + " " + value);
    }
  } catch (e) {
    toast("not sent (" + e.message + "): is the cloud reachable?", true);
    return;
  }
  for (const ms of [600, 1500, 3000]) setTimeout(pollShadow, ms);
}

function hold(key) { held[key] = Date.now() + HOLD_MS; }
const isHeld = (key) => (held[key] || 0) > Date.now();

let toastT = null;
function toast(text, bad) {
  const f = $("foot");
  f.textContent = text;
  f.className = "foot show" + (bad ? " bad" : "");
  clearTimeout(toastT);
  toastT = setTimeout(() => { f.className = "foot"; }, 4000);
}

function setLink(ok, text) {
  const l = $("link");
  l.textContent = text;
  l.className = "chip " + (ok ? "ok" : "bad");
  document.body.classList.toggle("stale", !ok);
}

async function pollShadow() {
  try {
    const r = await api("GET", "/shadow/data");
    shadow = r.data || {};
    if (failures) pollStatus();                  // back after an outage: is the meter too?
    failures = 0;
    setLink(true, "live");
    render(r);
    if (!haveFeed) ownSample(r);
  } catch (e) {
    failures += 1;
    setLink(false, "connection lost, retrying…");
    setOnline(null);
  }
}

async function pollStatus() {
  try {
    const r = await api("GET", "/status");
    setOnline(!!r.status);
  } catch (e) {
    setOnline(null);
  }
}

function setOnline(on) {
  meterOnline = on;
  $("online").textContent = on == null ? "meter ?" : on ? "meter online" : "meter offline";
  $("online").className = "chip" + (on == null ? "" : on ? " ok" : " bad");
}

async function pollFeed() {
  if (!haveFeed) return;
  try {
    const since = feed.length ? feed[feed.length - 1][0] + 1 : 0;
    const r = await fetch(API + "/feed?since=" + since + "&alias=" + encodeURIComponent(alias),
                          {headers: {Authorization: "Device " + AUTH}, cache: "no-store"});
    if (r.status === 404) { haveFeed = false; return; }   // real NETPIE: the page samples itself
    if (!r.ok) return;
    const j = await r.json();
    if (j.points.length && feed.length && j.points[0][0] < feed[feed.length - 1][0]) feed = [];
    feed = feed.concat(j.points);
    drawChart();
  } catch (e) { /* the shadow poll reports the link */ }
}

function ownSample(r) {
  const t = r.modified || Date.now();
  if (feed.length && t - feed[feed.length - 1][0] < 60000) return;
  feed.push([t, shadow.power_w, shadow.house_w, shadow.ev_w, shadow.limit_w]);
  drawChart();
}

function schedule() {
  clearTimeout(timer);
  const ms = document.hidden ? HIDDEN_POLL_MS
    : Date.now() - lastTouch > 300000 ? IDLE_POLL_MS : POLL_MS;
  const wait = failures ? Math.min(10000, 2000 * failures) : ms;
  timer = setTimeout(async () => { await pollShadow(); schedule(); }, wait);
}

// ---- render ----
function widget(id) { return spec.widgets.find((w) => w.id === id); }

function render(r) {
  const s = shadow, cfg = spec.config || {};
  $("clock").textContent = r.modified ? "meter time " + V.localTime(r.modified, cfg.tz_offset_min) : "";
  $("peak").textContent = s.peak ? "PEAK tariff" : "off-peak";
  $("peak").className = "chip " + (s.peak ? "warn" : "ok");
  $("headline").textContent = V.headline(s);
  $("headline").className = "headline" + (s.power_w > s.limit_w ? " over" : "");
  $("g-power").innerHTML = V.gaugeSvg(widget("power"), s.power_w, s.limit_w);
  $("g-house").innerHTML = V.gaugeSvg(widget("house"), s.house_w);
  $("g-ev").innerHTML = V.gaugeSvg(widget("ev"), s.ev_w);
  $("limit").textContent = V.watts(s.limit_w) + (s.dr_w ? " (demand response)" : "");

  // car
  $("soc").textContent = V.soc(s.ev_soc_pct);
  const socp = s.ev_soc_pct >= 0 ? s.ev_soc_pct : 0;
  $("soc-fill").style.width = socp + "%";
  $("soc-fill").className = "fill" + (s.ev_soc_pct >= 0 && s.ev_soc_pct < 20 ? " low" : "");
  $("soc-trip").style.left = (s.trip_soc_pct || 0) + "%";
  $("soc-trip").hidden = !s.trip_soc_pct;
  $("soc-note").textContent = s.trip_soc_pct ? "next trip needs " + s.trip_soc_pct + " %" : "";
  $("ev-state").textContent = V.EV_STATES[s.ev_state] || "–";
  $("ev-state").className = "state st-" + (s.ev_state || "x").replace("?", "u");
  $("ev-current").textContent = s.ev_current_a == null ? "–" : s.ev_current_a + " A";
  if (!isHeld("emergency")) $("emergency").checked = !!s.emergency;

  // plan
  if (!isHeld("departure")) {
    const m = V.minOfDay(s.target);
    if (m != null) $("departure").value = m;
    $("dep-value").textContent = s.target || "no departure set";
  }
  const p = V.planModel(s);
  $("plan-ok").textContent = p.verdict;
  $("plan-ok").className = "verdict " + p.cls;
  $("plan-full-at").textContent = p.fullAt || "–";
  $("plan-minutes").textContent = p.minutes || "–";
  $("plan-soc").textContent = p.soc || "–";
  const ids = {accept: "accept", shed: "shed", emergency: "em"};
  for (const key of Object.keys(ids)) {
    const o = p.options && p.options.find((x) => x.key === key);
    const k = ids[key];
    $("opt-" + k + "-soc").textContent = o && o.soc != null ? o.soc + " %" : "–";
    $("opt-" + k + "-full").textContent = o ? o.full : "–";
    const trip = $("trip-" + key);
    trip.textContent = o ? o.trip : "–";
    trip.className = "tripok" + (o && o.tripOk === true ? " ok" : o && o.tripOk === false ? " bad" : "");
    const box = document.querySelector('.opt[data-choice="' + key + '"]');
    box.classList.toggle("chosen", p.chosen === key);
    box.querySelector("button").textContent = p.chosen === key ? "Chosen" : "Choose";
  }
  const em = (s.plan || {}).emergency || {};
  $("opt-em-cost").textContent = s.plan ? "extra " + V.money(em.extra_cost) : "–";
  $("trip-needs").textContent = s.trip_soc_pct ? "needs " + s.trip_soc_pct + " % SOC" : "no trip set";

  // loads
  $("advice").textContent = V.advice(s);
  $("advice").className = "advice" + (s.advice && s.advice.length ? " warn" : "");
  $("advice-w").textContent = s.advice_w ? "switching them off saves " + s.advice_w + " W" : "";
  renderLoads(s);

  // energy
  const rows = [["offpeak", "Off-peak"], ["peak", "Peak"], ["emergency", "Emergency"], ["ev", "of it EV"]];
  const td = s.energy_today_wh || {}, mo = s.energy_month_wh || {};
  $("energy").innerHTML = rows.map(([k, l]) =>
    `<tr class="${k}"><th>${l}</th><td>${V.kwh(td[k])}</td><td>${V.kwh(mo[k])}</td></tr>`).join("");
  $("bill-today").textContent = V.money(s.bill_today);
  $("bill-month").textContent = V.money(s.bill_month);

  // grid and status
  $("dr").textContent = V.dr(s);
  $("dr").className = s.dr_w ? "warn" : "";
  $("faults").textContent = V.list(s.faults, "none");
  $("faults").className = s.faults && s.faults.length ? "bad" : "okc";
  $("error").textContent = s.error || "none";
  $("error-inline").textContent = s.error || "none";
  $("error-inline").className = s.error ? "bad" : "okc";
  $("error-banner").hidden = !s.error;
}

function renderLoads(s) {
  const box = $("loads");
  const model = V.loadsModel(s, spec.loads || []);
  if (box.children.length !== model.length) {
    box.innerHTML = model.map((l) =>
      `<label class="switchrow load" data-load="${l.name}"><span><b>${l.name}</b> <span class="muted">${l.rated} W${l.critical ? ", critical" : ""}</span>
       <span class="tag" hidden>switch off now</span><span class="tag shed" hidden>off: shed plan</span></span>
       <input type="checkbox" class="switch" id="load-${l.name}"></label>`).join("");
    for (const l of model) {
      $("load-" + l.name).addEventListener("change", (ev) => {
        hold("load-" + l.name);
        send("load/" + l.name, ev.target.checked ? "on" : "off");
      });
    }
  }
  for (const l of model) {
    const row = box.querySelector('[data-load="' + l.name + '"]');
    row.querySelector(".tag").hidden = !l.advise;
    row.querySelector(".tag.shed").hidden = !l.shed;
    row.classList.toggle("advised", l.advise);
    if (!isHeld("load-" + l.name)) $("load-" + l.name).checked = l.on;
  }
}

function drawChart() {
  const ch = widget("chart");
  const cols = Object.fromEntries((ch.colors || []).map((c) => [c.field, c.color]));
  const series = [
    {i: 4, color: cols.limit_w || "#d64545", dash: true, name: "limit", width: 1.5},
    {i: 2, color: cols.house_w || "#3b7dd8", name: "house"},
    {i: 3, color: cols.ev_w || "#8e5bd6", name: "EV"},
    {i: 1, color: cols.power_w || "#1f2937", name: "total", width: 2.5},
  ];
  $("chart").innerHTML = V.chartSvg(feed, series, (spec.config || {}).tz_offset_min, 820, 250);
  $("legend").innerHTML = series.slice().reverse().map((s) =>
    `<span><i style="background:${s.color}"></i>${s.name}</span>`).join("");
}

// ---- controls ----
function wire() {
  const dep = $("departure");
  dep.addEventListener("input", () => { hold("departure"); $("dep-value").textContent = V.hhmm(+dep.value); });
  dep.addEventListener("change", () => { hold("departure"); send("target", dep.value); });
  $("departure-set").addEventListener("click", () => {
    // sent as typed: the meter checks it and reports a bad value in "Last command error"
    send("target", $("departure-text").value.trim());
  });
  $("departure-text").addEventListener("keydown", (ev) => { if (ev.key === "Enter") $("departure-set").click(); });
  $("no-departure").addEventListener("click", () => send("target", "off"));
  $("emergency").addEventListener("change", (ev) => {
    hold("emergency");
    send("emergency", ev.target.checked ? "on" : "off");
  });
  for (const b of document.querySelectorAll("button.choose")) {
    b.addEventListener("click", () => send("choice", b.dataset.value));
  }
  const trip = $("trip");
  trip.addEventListener("input", () => { $("trip-out").textContent = trip.value + " km"; });
  $("trip-set").addEventListener("click", () => send("trip", trip.value));
  const sn = $("soc-now");
  sn.addEventListener("input", () => { $("soc-now-out").textContent = sn.value + " %"; });
  $("soc-now-set").addEventListener("click", () => send("reset_ev_soc", sn.value));
  $("dr-on").addEventListener("click", () => send("dr", '{"limit_w":3000,"minutes":30}'));
  $("dr-off").addEventListener("click", () => send("dr", '{"limit_w":0,"minutes":0}'));
  document.addEventListener("visibilitychange", () => { if (!document.hidden) { pollShadow(); schedule(); } });
  for (const ev of ["pointerdown", "keydown"]) document.addEventListener(ev, () => { lastTouch = Date.now(); });
}

async function main() {
  try {
    spec = await (await fetch("widgets.json", {cache: "no-store"})).json();
  } catch (e) {
    spec = {widgets: [], loads: [], config: {}};
  }
  alias = q.get("alias") || spec.alias || "meter";
  wire();
  drawChart();
  await pollShadow();
  schedule();
  (async function statusLoop() {
    await pollStatus();
    setTimeout(statusLoop, meterOnline ? STATUS_MS : 3000);   // offline: watch for its return
  })();
  pollFeed();
  setInterval(pollFeed, FEED_MS);
}

main();
