// Pure functions of the dashboard page: shadow values -> text, SVG, models. No DOM, no fetch
// (app.js is the imperative shell). docs/dashboard.md section 6.

export const EV_STATES = {
  A: "No car", B: "Plugged in, not charging", C: "Charging", D: "Charging (ventilation)",
  E: "Charger error", "?": "Charger unknown",
};

export function hhmm(min) {
  if (min == null || min < 0) return "";
  const m = ((Math.round(min) % 1440) + 1440) % 1440;
  return String(Math.floor(m / 60)).padStart(2, "0") + ":" + String(m % 60).padStart(2, "0");
}

export function minOfDay(t) {
  // "HH:MM" -> minute of day, else null
  const m = /^(\d{1,2}):(\d{2})$/.exec(String(t || ""));
  if (!m) return null;
  const h = +m[1], mi = +m[2];
  return h < 24 && mi < 60 ? h * 60 + mi : null;
}

export function watts(w) {
  if (w == null) return "–";
  return Math.abs(w) >= 1000 ? (w / 1000).toFixed(2) + " kW" : Math.round(w) + " W";
}

export function kwh(wh) {
  return wh == null ? "–" : (wh / 1000).toFixed(2) + " kWh";
}

export function money(x) {
  return x == null ? "–" : Number(x).toFixed(2);
}

export function soc(p) {
  return p == null || p < 0 ? "SOC ?" : p + " %";
}

export function list(a, none) {
  return a && a.length ? a.join(", ") : none;
}

export function localTime(ms, tzMin) {
  if (!ms) return "";
  const d = new Date(ms + (tzMin || 0) * 60000);
  return hhmm(d.getUTCHours() * 60 + d.getUTCMinutes());
}

export function dr(s) {
  return s.dr_w ? s.dr_w + " W until " + (s.dr_until || "?") : "none";
}

export function headline(s) {
  if (s.power_w == null) {
    // the meter drops power_w while its supply meter (PZEM) is silent: no stale figure
    return (s.faults || []).includes("pzem") ? "supply not read (PZEM silent)" : "waiting for the meter…";
  }
  const lim = s.limit_w || 0;
  const pct = lim ? Math.round(100 * s.power_w / lim) : 0;
  return watts(s.power_w) + " of " + watts(lim) + " limit (" + pct + " %)";
}

// the plan card: one entry per choice, what it gives by the departure
export function planModel(s) {
  const p = s.plan;
  const chosen = s.choice || "accept";
  if (!p) {
    return {verdict: s.target ? "No plan (no car or no charging needed)" : "Set a departure to get a plan",
            cls: "none", options: null, chosen};
  }
  const t = s.target || "departure";
  const trip = p.trip_ok || {};
  const opt = (key, socPct, fullAt, note) => ({
    key, soc: socPct, full: fullAt ? "full by " + fullAt : "not full by " + t, note,
    trip: s.trip_soc_pct ? (trip[key] ? "covers the trip" : "short of the trip") : "no trip set",
    tripOk: s.trip_soc_pct ? !!trip[key] : null,
  });
  const sh = p.shed || {}, em = p.emergency || {};
  return {
    verdict: p.feasible ? "Full by " + (p.full_at || t) + " — ready for " + t
                        : "Not full by " + t + ": reaches " + p.reachable_soc_pct + " %",
    cls: p.feasible ? "ok" : "bad",
    fullAt: p.full_at || "not by " + t,
    minutes: p.charge_minutes >= 0 ? p.charge_minutes + " min" : "–",
    soc: p.reachable_soc_pct + " %",
    options: [opt("accept", p.reachable_soc_pct, p.full_at, "no extra cost"),
              opt("shed", sh.soc_pct, sh.full_at, "non-critical loads off"),
              opt("emergency", em.soc_pct, em.full_at, "extra " + money(em.extra_cost))],
    chosen,
  };
}

export function loadsModel(s, loads) {
  const st = s.loads || {};
  const adv = new Set(s.advice || []);
  return loads.map((l) => ({
    name: l.name, rated: l.rated_w, critical: l.critical, on: st[l.name] === "on",
    known: l.name in st, advise: adv.has(l.name),
    shed: s.choice === "shed" && !l.critical && st[l.name] === "on",   // relay off while shed
  }));
}

export function advice(s) {
  const why = s.peak ? "Peak time" : s.dr_w ? "Demand response" : "Now";
  if (s.advice && s.advice.length) {
    return why + ": switch off " + s.advice.join(", ") + " to save " + s.advice_w + " W";
  }
  return s.peak || s.dr_w ? why + ": nothing to switch off" : "Off-peak: no advice";
}

// ---- SVG ----
function polar(cx, cy, r, frac) {
  const a = Math.PI * (1 - frac);
  return [cx + r * Math.cos(a), cy - r * Math.sin(a)];
}

function arc(cx, cy, r, f0, f1) {
  const [x0, y0] = polar(cx, cy, r, f0), [x1, y1] = polar(cx, cy, r, f1);
  return `M${x0.toFixed(1)} ${y0.toFixed(1)} A${r} ${r} 0 0 1 ${x1.toFixed(1)} ${y1.toFixed(1)}`;
}

const clamp01 = (x) => Math.max(0, Math.min(1, x));

// a half-circle gauge: coloured ranges, the value arc, an optional marker (the limit)
export function gaugeSvg(w, value, marker) {
  const cx = 100, cy = 96, r = 78, span = (w.max - w.min) || 1;
  const f = (v) => clamp01((v - w.min) / span);
  let lo = w.min, bands = "";
  for (const c of w.colors || []) {
    bands += `<path d="${arc(cx, cy, r, f(lo), f(c.to))}" stroke="${c.color}" stroke-opacity="0.22" stroke-width="18" fill="none"/>`;
    lo = c.to;
  }
  let col = (w.colors && w.colors[0] && w.colors[0].color) || "#444";
  for (const c of w.colors || []) { if (value != null && value > c.to) continue; col = c.color; break; }
  if (w.colors && value != null && value > w.colors[w.colors.length - 1].to) col = w.colors[w.colors.length - 1].color;
  const val = value == null ? "" :
    `<path d="${arc(cx, cy, r, 0, Math.max(0.004, f(value)))}" stroke="${col}" stroke-width="18" stroke-linecap="butt" fill="none"/>`;
  let mk = "";
  if (marker != null) {
    const [x0, y0] = polar(cx, cy, r - 14, f(marker)), [x1, y1] = polar(cx, cy, r + 14, f(marker));
    mk = `<line x1="${x0.toFixed(1)}" y1="${y0.toFixed(1)}" x2="${x1.toFixed(1)}" y2="${y1.toFixed(1)}" stroke="#111827" stroke-width="3"/>`;
  }
  const txt = value == null ? "–" : (w.units === "W" ? watts(value) : value + " " + (w.units || ""));
  return `<svg viewBox="0 0 200 120" role="img" aria-label="${w.title} ${txt}">` +
    `<path d="${arc(cx, cy, r, 0, 1)}" stroke="#e5e7eb" stroke-width="18" fill="none"/>${bands}${val}${mk}` +
    `<text x="100" y="88" text-anchor="middle" class="gv">${txt}</text>` +
    `<text x="100" y="112" text-anchor="middle" class="gt">${w.title}</text>` +
    `<text x="${cx - r}" y="112" text-anchor="middle" class="gs">${w.min}</text>` +
    `<text x="${cx + r}" y="112" text-anchor="middle" class="gs">${w.units === "W" ? (w.max / 1000) + "k" : w.max}</text></svg>`;
}

// the 24 h chart: points [t_ms, power_w, house_w, ev_w, limit_w]; series [{i, color, name}]
export function chartSvg(points, series, tzMin, width, height) {
  const W = width || 900, H = height || 220, L = 46, R = 10, T = 10, B = 24;
  const last = points.length ? points[points.length - 1][0] : Date.now();
  const t0 = last - 24 * 3600e3;
  const pts = points.filter((p) => p[0] >= t0);
  let ymax = 1000;
  for (const p of pts) for (const s of series) if (p[s.i] != null) ymax = Math.max(ymax, p[s.i]);
  ymax = Math.ceil(ymax / 1000) * 1000;
  const x = (t) => L + (W - L - R) * (t - t0) / (24 * 3600e3);
  const y = (v) => T + (H - T - B) * (1 - v / ymax);
  let g = "";
  for (let v = 0; v <= ymax; v += ymax > 6000 ? 2000 : 1000) {
    g += `<line x1="${L}" x2="${W - R}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" class="grid"/>` +
         `<text x="${L - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" class="ax">${v / 1000}k</text>`;
  }
  const hour = 3600e3, tz = (tzMin || 0) * 60e3;
  for (let t = Math.ceil((t0 + tz) / (3 * hour)) * 3 * hour - tz; t <= last; t += 3 * hour) {
    g += `<line x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="${T}" y2="${H - B}" class="grid"/>` +
         `<text x="${x(t).toFixed(1)}" y="${H - 6}" text-anchor="middle" class="ax">${localTime(t, tzMin)}</text>`;
  }
  let lines = "";
  for (const s of series) {
    const d = pts.filter((p) => p[s.i] != null)
      .map((p, k) => (k ? "L" : "M") + x(p[0]).toFixed(1) + " " + y(p[s.i]).toFixed(1)).join("");
    if (d) lines += `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="${s.width || 2}"${s.dash ? ' stroke-dasharray="6 4"' : ""}/>`;
  }
  const empty = pts.length < 2 ? `<text x="${W / 2}" y="${H / 2}" text-anchor="middle" class="ax">collecting the first points…</text>` : "";
  return `<svg viewBox="0 0 ${W} ${H}" preserveAspectRatio="none" role="img" aria-label="power, last 24 hours">${g}${lines}${empty}</svg>`;
}

// a command as a writeShadow (PUT /v2/device/shadow/data), for a meter that is offline: it
// waits in the shadow and the meter applies it after it reconnects (docs/netpie.md sections 5, 7)
export function shadowForm(cmd, value) {
  const v = String(value);
  if (cmd.startsWith("load/")) return {load: {[cmd.slice(5)]: v}};
  if (cmd === "dr") { try { return {dr: JSON.parse(v)}; } catch (e) { return {dr: v}; } }
  if (cmd === "emergency" && (v === "on" || v === "off")) return {emergency: v === "on"};
  if (/^-?\d+$/.test(v) && cmd !== "target") return {[cmd]: +v};
  return {[cmd]: v};
}
