"""Host dashboard for the NETPIE stand-in: what the NETPIE dashboard widgets show and send.

    python tools/dashboard.py --port 18830 show              # the widgets, once
    python tools/dashboard.py --port 18830 watch             # shadow changes as they come
    python tools/dashboard.py --port 18830 get               # the raw shadow JSON
    python tools/dashboard.py --port 18830 send target 07:30         # publishMsg("meter/target")
    python tools/dashboard.py --port 18830 send emergency on
    python tools/dashboard.py --port 18830 send load/ac off
    python tools/dashboard.py --port 18830 send choice shed
    python tools/dashboard.py --port 18830 send trip 120             # km, or 80%
    python tools/dashboard.py --port 18830 send dr '{"limit_w":3000,"minutes":30}'
    python tools/dashboard.py --port 18830 send reset_ev_soc 40
    python tools/dashboard.py --port 18830 send --shadow target 07:30  # writeShadow instead
    python tools/dashboard.py --port 18830 profile           # the household load it learned

It logs in with a dashboard credential from the stand-in's credentials file (--devices,
default tools/netpie_devices.example.json) and uses the stand-in's dashboard topics
(docs/netpie.md "Stand-in"). A real NETPIE dashboard is configured in the portal instead
(docs/dashboard.md).
"""
import argparse
import json
import os
import sys
import threading
import time

import paho.mqtt.client as mqtt

HERE = os.path.dirname(os.path.abspath(__file__))


def connect(a, subs=()):
    with open(a.devices) as f:
        creds = json.load(f)
    dash = [d for d in creds.get("dashboards", []) if not a.dashboard or
            d["client_id"] == a.dashboard]
    if not dash:
        sys.exit("no dashboard credential in %s" % a.devices)
    d = dash[0]
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="%s" % d["client_id"])
    c.username_pw_set(d["token"], d["secret"])
    ready = threading.Event()
    box = {}

    def on_connect(cl, ud, fl, rc, pr=None):
        box["rc"] = rc
        if rc.is_failure or not subs:
            ready.set()
        else:
            cl.subscribe([(s, 0) for s in subs])

    c.on_connect = on_connect
    c.on_subscribe = lambda *x: ready.set()
    c.connect(a.host, a.port, 30)
    c.loop_start()
    if not ready.wait(5) or box["rc"].is_failure:
        sys.exit("dashboard login failed: %s" % box.get("rc", "timeout"))
    return c


def _hm(v):
    return v if v else "--:--"


def render(sh, online=None):
    """The shadow as the widgets of docs/dashboard.md show it."""
    d = sh.get("data", sh)
    g = d.get
    out = []
    if online is not None:
        out.append("status      %s" % ("ONLINE" if online else "offline"))
    out.append("power       %6s W   house %s W   EV %s W   limit %s W   %s" % (
        g("power_w", "?"), g("house_w", "?"), g("ev_w", "?"), g("limit_w", "?"),
        "PEAK" if g("peak") else "off-peak"))
    for k, lbl in (("energy_today_wh", "today"), ("energy_month_wh", "month")):
        e = g(k) or {}
        bill = g("bill_today" if lbl == "today" else "bill_month")
        out.append("%-11s off-peak %.2f kWh  peak %.2f  emergency %.2f  EV %.2f   bill %s" % (
            lbl, e.get("offpeak", 0) / 1000, e.get("peak", 0) / 1000,
            e.get("emergency", 0) / 1000, e.get("ev", 0) / 1000, bill))
    out.append("EV          state %s  SOC %s %%  current %s A" % (
        g("ev_state", "?"), g("ev_soc_pct", "?"), g("ev_current_a", "?")))
    out.append("settings    target %s  emergency %s  choice %s  trip needs %s %%  DR %s W "
               "until %s" % (_hm(g("target")), "ON" if g("emergency") else "off",
                             g("choice", "?"), g("trip_soc_pct", 0), g("dr_w", 0),
                             _hm(g("dr_until"))))
    p = g("plan")
    if p:
        t = p.get("trip_ok", {})
        out.append("plan        %s  full at %s  %s min  SOC at target %s %%" % (
            "feasible" if p.get("feasible") else "NOT feasible", _hm(p.get("full_at")),
            p.get("charge_minutes"), p.get("reachable_soc_pct")))
        out.append("            shed: SOC %s %% full %s | emergency: SOC %s %% full %s extra %s"
                   % (p.get("shed", {}).get("soc_pct"), _hm(p.get("shed", {}).get("full_at")),
                      p.get("emergency", {}).get("soc_pct"),
                      _hm(p.get("emergency", {}).get("full_at")),
                      p.get("emergency", {}).get("extra_cost")))
        out.append("            trip covered: accept %s  shed %s  emergency %s" % (
            t.get("accept"), t.get("shed"), t.get("emergency")))
    else:
        out.append("plan        (none)")
    out.append("loads       %s" % "  ".join("%s:%s" % kv for kv in (g("loads") or {}).items()))
    out.append("advice      switch off %s (%s W)" % (", ".join(g("advice") or []) or "nothing",
                                                    g("advice_w", 0)))
    out.append("faults      %s" % (", ".join(g("faults") or []) or "none"))
    out.append("error       %s" % (g("error") or ""))
    return "\n".join(out)


def shadow_value(name, value):
    """writeShadow object for a command (same names as publishMsg; docs/netpie.md)."""
    try:
        v = json.loads(value)
    except ValueError:
        v = value
    if name.startswith("load/"):
        return {"load": {name[5:]: v}}
    return {name: v}


def profile(a, prefix):
    """Ask for the learned household load (publishMsg "<alias>/house_profile") and print the
    meter's answer (@msg/<alias>/house_profile/data, docs/netpie.md section 5)."""
    box = {}
    got = threading.Event()
    reply = "@msg/%s/house_profile/data" % prefix

    def on_message(cl, ud, m):
        if m.topic == reply:
            box["v"] = m.payload
            got.set()

    c = connect(a, (reply,))
    c.on_message = on_message
    c.publish("@msg/%s/house_profile" % prefix, "get")
    ok = got.wait(10)
    c.disconnect()
    c.loop_stop()
    if not ok:
        print("no answer from the meter in 10 s (offline?)", file=sys.stderr)
        return 1
    d = json.loads(box["v"])
    print("learned household load, W per half-hour from 00:00 (- = not learned yet)")
    for kind in ("weekday", "weekend"):
        v = d.get(kind) or []
        for h in range(0, len(v), 12):
            print("%-8s %02d:00  %s" % (kind if h == 0 else "", h // 2, " ".join(
                "%5s" % ("-" if x is None else x) for x in v[h:h + 12])))
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=18830)
    ap.add_argument("--devices", default=os.path.join(HERE, "netpie_devices.example.json"))
    ap.add_argument("--dashboard", help="dashboard client id (default: the first one)")
    ap.add_argument("--alias", default="meter", help="device alias (default meter)")
    ap.add_argument("--topic", default=None,
                    help="publishMsg topic prefix (default: the alias, i.e. meter/<name>)")
    sp = ap.add_subparsers(dest="cmd", required=True)
    sp.add_parser("show")
    sp.add_parser("get")
    w = sp.add_parser("watch")
    w.add_argument("--seconds", type=float, default=0, help="stop after this long (0 = never)")
    sp.add_parser("profile")
    s = sp.add_parser("send")
    s.add_argument("--shadow", action="store_true", help="writeShadow instead of publishMsg")
    s.add_argument("name")
    s.add_argument("value")
    a = ap.parse_args(argv)
    prefix = a.topic or a.alias
    if a.cmd == "send":
        c = connect(a)
        if a.shadow:
            info = c.publish("writeShadow/%s" % a.alias, json.dumps(shadow_value(a.name,
                                                                                a.value)))
            what = "writeShadow %s" % json.dumps(shadow_value(a.name, a.value))
        else:
            info = c.publish("publishMsg/%s/%s/%s" % (a.alias, prefix, a.name), a.value)
            what = "publishMsg(%r, %r)" % ("%s/%s" % (prefix, a.name), a.value)
        info.wait_for_publish(5)
        c.disconnect()
        c.loop_stop()
        print("sent " + what)
        return 0
    if a.cmd == "profile":
        return profile(a, prefix)
    latest = {}
    online = {}
    got = threading.Event()

    def on_message(cl, ud, m):
        if m.topic.startswith("status/"):
            online["v"] = m.payload == b"1"
            return
        try:
            latest["new"] = json.loads(m.payload)
        except ValueError:
            return
        got.set()

    c = connect(a, ("shadow/%s" % a.alias, "status/%s" % a.alias))
    c.on_message = on_message
    # the retained shadow was delivered right after SUBACK; wait for it
    if not got.wait(3):
        c.disconnect()
        c.loop_stop()
        sys.exit("no shadow for alias %r" % a.alias)
    time.sleep(0.1)
    if a.cmd == "get":
        print(json.dumps(latest["new"], indent=1, sort_keys=True))
    elif a.cmd == "show":
        print(render(latest["new"], online.get("v")))
    else:
        end = time.time() + a.seconds if a.seconds else None
        prev = {}
        try:
            while end is None or time.time() < end:
                if not got.wait(0.2):
                    continue
                got.clear()
                data = latest["new"].get("data", {})
                ch = {k: v for k, v in data.items() if prev.get(k) != v}
                gone = [k for k in prev if k not in data]
                prev = data
                if ch or gone:
                    stamp = time.strftime("%H:%M:%S")
                    print("%s rev %s %s%s" % (stamp, latest["new"].get("rev"),
                                               json.dumps(ch, sort_keys=True),
                                               (" removed " + ",".join(gone)) if gone else ""),
                          flush=True)
        except KeyboardInterrupt:
            pass
    c.disconnect()
    c.loop_stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
