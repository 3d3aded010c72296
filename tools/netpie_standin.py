"""Local NETPIE 2020 stand-in for host tests and the simulator (CPython).

A real MQTT broker (mosquitto when installed, else amqtt) runs on a private loopback port. In
front of it a small MQTT proxy listens on the public port and adds what NETPIE does and plain
MQTT cannot: it authenticates client id / token / secret from a JSON credentials file, knows
which device sent each packet, and maps NETPIE's per-device topic names onto private broker
topics:

    device topic            broker topic
    @msg/<t>                g/<group>/@msg/<t>      (only devices of one group see each other)
    @shadow/..., @private/..., @push   d/<client_id>/...   (one device's own traffic)
    anything else           x/<client_id>/...

A shadow service (paho client on the broker, privileged user) keeps one shadow per device
(JSON file in the state dir), applies NETPIE's merge rules, answers gets and batch writes,
publishes @shadow/data/updated to the device after each change and counts the shadow
operations per device (stats.json in the state dir).

Dashboard credentials (the "dashboards" list) get NETPIE's dashboard actions as topics:
    publish  writeShadow/<alias>            payload: JSON object merged into the shadow
    publish  publishMsg/<alias>/<topic>     payload: text, device receives @msg/<topic>
    subscribe shadow/<alias>                retained {"deviceid","data","rev","modified"}
    subscribe status/<alias>                retained "1" online / "0" offline
With an HTTP port it also serves NETPIE's REST API under /v2/ (header
"Authorization: Device <ClientID>:<Token>", 401 without a valid one) and the local dashboard page
(dashboard/) at /: see docs/netpie.md section 9 and docs/dashboard.md section 6. CLI:
    python tools/netpie_standin.py --port 18830 --devices FILE --state-dir DIR [--http-port 18880]
"""
import argparse
import asyncio
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import paho.mqtt.client as mqtt

SVC_USER = "standin-service"
BATCH_MAX = 100
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DASH_DIR = os.path.join(ROOT, "dashboard")
DASH_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
              ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml",
              ".png": "image/png", ".ico": "image/x-icon"}
FEED_FIELDS = ("power_w", "house_w", "ev_w", "limit_w")
FEED_STEP_MS = 60000            # one feed point per (simulated) minute at most
FEED_SPAN_MS = 24 * 3600 * 1000


def now_ms():
    """Milliseconds on the shared simulated clock (docs/architecture.md), else wall clock."""
    ep = os.environ.get("SIM_EPOCH")
    if ep:
        t = float(ep) + (time.time() - float(os.environ.get("SIM_ANCHOR", time.time()))) * float(
            os.environ.get("SIM_SPEED", 1))
    else:
        t = time.time()
    return int(t * 1000)


def merge(dst, src):
    """NETPIE shadow merge: nested objects merge, arrays and scalars replace, null deletes."""
    for k, v in src.items():
        if v is None:
            dst.pop(k, None)
        elif isinstance(v, dict):
            cur = dst.get(k)
            dst[k] = merge(cur if isinstance(cur, dict) else {}, v)
        else:
            dst[k] = v
    return dst


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def _varint(n):
    out = bytearray()
    while True:
        d = n & 127
        n >>= 7
        out.append(d | (128 if n else 0))
        if not n:
            return bytes(out)


def _pkt(b0, body):
    return bytes((b0,)) + _varint(len(body)) + body


def _mstr(s):
    b = s.encode() if isinstance(s, str) else s
    return len(b).to_bytes(2, "big") + b


def _rstr(b, i):
    n = b[i] << 8 | b[i + 1]
    return b[i + 2:i + 2 + n], i + 2 + n


async def _read_pkt(r):
    b0 = (await r.readexactly(1))[0]
    n = sh = 0
    while True:
        x = (await r.readexactly(1))[0]
        n |= (x & 127) << sh
        sh += 7
        if x < 128:
            break
        if sh > 21:
            raise ValueError("bad remaining length")
    return b0, (await r.readexactly(n) if n else b"")


EXAMPLE_DEVICES = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                               "netpie_devices.example.json")


def load_devices(path_or_dict=None):
    """(devices, dashboards) from a credentials file or dict (None: the example file)."""
    d = EXAMPLE_DEVICES if path_or_dict is None else path_or_dict
    if not isinstance(d, dict):
        with open(d) as f:
            d = json.load(f)
    devs = d.get("devices", [])
    dash = d.get("dashboards", [])
    for e in devs:
        e.setdefault("group", "default")
        e.setdefault("alias", e["client_id"])
    return devs, dash


class Standin:
    def __init__(self, port, devices=None, state_dir=None, updated="delta", backend="auto",
                 host="127.0.0.1", log=None, http_port=None, dash_cfg=None, clock=None):
        self.port = port
        self.clock = clock              # seconds (the simulator's clock), None: now_ms()
        self.http_port = http_port      # None: no HTTP; 0: a free port (actual one after start)
        self.dash_cfg = dash_cfg        # meter config for /widgets.json (None: the example)
        self.http = None
        self.host = host
        self.own_state = state_dir is None
        self.state_dir = state_dir or tempfile.mkdtemp(prefix="netpie-state-")
        os.makedirs(self.state_dir, exist_ok=True)
        self.devs, self.dashs = load_devices(devices)
        self.meter = self.devs[0] if self.devs else None      # the first device's credentials
        self.dashboard = self.dashs[0] if self.dashs else None
        self.by_cid = {e["client_id"]: e for e in self.devs}
        self.by_alias = {e["alias"]: e for e in self.devs}
        self.updated_mode = updated
        self.backend = backend
        self.log = log
        self.lock = threading.Lock()
        self.shadows = {}
        self.stats_d = {}
        self.stats_dirty = True
        self.online = {}
        self.feeds = {}
        for e in self.devs:
            self.shadows[e["client_id"]] = self._load_shadow(e["client_id"])
            self._st(e["client_id"])
            self.feeds[e["client_id"]] = self._load_feed(e["client_id"])
        self.tmp = None
        self.broker = None
        self.loop = None
        self.thread = None
        self.svc = None
        self.conns = set()

    # ---- bookkeeping ----
    def _st(self, cid):
        return self.stats_d.setdefault(cid, {
            "shadow_ops": 0, "shadow_write_ops": 0, "shadow_read_ops": 0, "shadow_writes": 0,
            "shadow_reads": 0, "batches": 0, "batch_records": 0, "msgs_in": 0, "msgs_out": 0,
            "connects": 0, "auth_fail": 0, "subscribes": 0, "bytes_in": 0, "api_calls": 0,
            "api_auth_fail": 0})

    def _count(self, cid, **kw):
        with self.lock:
            s = self._st(cid)
            for k, v in kw.items():
                s[k] += v
            self.stats_dirty = True

    def carry_stats(self, old):
        """Add the counts of an earlier stand-in on the same state dir (a broker that went away
        and came back within one run), so stats.json covers the whole run."""
        with self.lock:
            for cid, counts in old.items():
                s = self._st(cid)
                for k, v in counts.items():
                    s[k] = s.get(k, 0) + v
            self.stats_dirty = True

    def stats(self):
        with self.lock:
            return json.loads(json.dumps(self.stats_d))

    def _write_stats(self):
        with self.lock:
            if not self.stats_dirty:
                return
            self.stats_dirty = False
            txt = json.dumps(self.stats_d, indent=1, sort_keys=True)
        p = os.path.join(self.state_dir, "stats.json")
        with open(p + ".tmp", "w") as f:
            f.write(txt)
        os.replace(p + ".tmp", p)

    def _shadow_path(self, cid):
        return os.path.join(self.state_dir, "shadow-%s.json" % cid)

    def _load_shadow(self, cid):
        try:
            with open(self._shadow_path(cid)) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {"data": {}, "rev": 0, "modified": 0, "ts": 0}

    def _save_shadow(self, cid):
        p = self._shadow_path(cid)
        with open(p + ".tmp", "w") as f:
            json.dump(self.shadows[cid], f)
        os.replace(p + ".tmp", p)

    def _feed_path(self, cid):
        return os.path.join(self.state_dir, "feed-%s.json" % cid)

    def _load_feed(self, cid):
        try:
            with open(self._feed_path(cid)) as f:
                return [p for p in json.load(f) if isinstance(p, list)]
        except (OSError, ValueError, TypeError):
            return []

    def _save_feeds(self):
        with self.lock:
            items = [(c, list(f)) for c, f in self.feeds.items()]
        for cid, pts in items:
            p = self._feed_path(cid)
            with open(p + ".tmp", "w") as f:
                json.dump(pts, f)
            os.replace(p + ".tmp", p)

    def _feed_add(self, cid, sh):
        # like a NETPIE datatag: a point of the power fields on a device's shadow write
        d = sh["data"]
        if not any(k in d for k in FEED_FIELDS):
            return
        fd = self.feeds.setdefault(cid, [])
        t = sh["modified"]
        if fd and t < fd[-1][0]:        # the clock went back (a new simulated day): keep the past
            fd[:] = [p for p in fd if p[0] <= t]
        if fd and t - fd[-1][0] < FEED_STEP_MS:
            return
        fd.append([t] + [d.get(k) for k in FEED_FIELDS])
        while fd and fd[0][0] < t - FEED_SPAN_MS:
            fd.pop(0)

    def now_ms(self):
        return int(self.clock() * 1000) if self.clock else now_ms()

    def shadow(self, cid_or_alias):
        e = self.by_cid.get(cid_or_alias) or self.by_alias[cid_or_alias]
        with self.lock:
            return json.loads(json.dumps(self.shadows[e["client_id"]]["data"]))

    # ---- broker ----
    def _start_broker(self):
        self.tmp = tempfile.mkdtemp(prefix="netpie-standin-")
        self.bport = free_port()
        kind = self.backend
        if kind == "auto":
            kind = "mosquitto" if shutil.which("mosquitto") and shutil.which(
                "mosquitto_passwd") else "amqtt"
        self.kind = kind
        self.svc_pass = os.urandom(8).hex()
        if kind == "mosquitto":
            pw = os.path.join(self.tmp, "passwd")
            users = [(SVC_USER, self.svc_pass)] + [(e["token"], e["secret"]) for e in
                                                   self.devs + self.dashs]
            open(pw, "w").close()
            for u, p in users:
                subprocess.run(["mosquitto_passwd", "-b", pw, u, p], check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            os.chmod(pw, 0o600)
            acl = ["user %s" % SVC_USER, "topic readwrite #", ""]
            for e in self.devs:
                acl += ["user %s" % e["token"], "topic readwrite d/%s/#" % e["client_id"],
                        "topic readwrite x/%s/#" % e["client_id"],
                        "topic readwrite g/%s/@msg/#" % e["group"], ""]
            for e in self.dashs:
                acl += ["user %s" % e["token"], "topic readwrite dash/#"]
                acl += ["topic readwrite g/%s/@msg/#" % g for g in sorted(
                    {self.by_alias[a]["group"] for a in e.get("devices", [])
                     if a in self.by_alias})] + [""]
            ap = os.path.join(self.tmp, "acl")
            with open(ap, "w") as f:
                f.write("\n".join(acl) + "\n")
            os.chmod(ap, 0o600)
            conf = os.path.join(self.tmp, "mosquitto.conf")
            lines = ["listener %d 127.0.0.1" % self.bport, "allow_anonymous false",
                     "password_file " + pw, "acl_file " + ap, "persistence false",
                     "log_dest file " + os.path.join(self.tmp, "mosquitto.log")]
            if os.geteuid() == 0:
                lines.append("user root")
            with open(conf, "w") as f:
                f.write("\n".join(lines) + "\n")
            cmd = ["mosquitto", "-c", conf]
        else:
            conf = os.path.join(self.tmp, "amqtt.yaml")
            with open(conf, "w") as f:
                f.write("listeners:\n  default:\n    type: tcp\n    bind: 127.0.0.1:%d\n"
                        "plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n"
                        "    allow_anonymous: true\n" % self.bport)
            exe = os.path.join(os.path.dirname(sys.executable), "amqtt")
            cmd = [exe if os.path.exists(exe) else "amqtt", "-c", conf]
        self.broker = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                       start_new_session=True)
        t0 = time.time()
        while time.time() - t0 < 10:
            if self.broker.poll() is not None:
                raise RuntimeError("%s exited with %s" % (kind, self.broker.returncode))
            try:
                socket.create_connection(("127.0.0.1", self.bport), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("%s did not listen" % kind)

    # ---- shadow service ----
    def _start_service(self):
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="standin-service-%d" %
                        os.getpid())
        c.username_pw_set(SVC_USER, self.svc_pass)
        ready = threading.Event()

        def on_connect(cl, ud, fl, rc, pr=None):
            cl.subscribe([("d/+/@shadow/data/update", 0), ("d/+/@shadow/data/get", 0),
                          ("d/+/@shadow/batch/update", 0), ("dash/writeShadow/+", 0),
                          ("dash/publishMsg/#", 0)])
            for e in self.devs:
                self._publish_dash(e["client_id"])
                cl.publish("dash/status/%s" % e["alias"], "0", retain=True)

        def on_subscribe(cl, ud, mid, rcs, pr=None):
            ready.set()

        c.on_connect = on_connect
        c.on_subscribe = on_subscribe
        c.on_message = self._on_message
        self.svc = c
        c.connect("127.0.0.1", self.bport, 30)
        c.loop_start()
        if not ready.wait(10):
            raise RuntimeError("shadow service did not subscribe")

    def _publish_dash(self, cid):
        e = self.by_cid[cid]
        with self.lock:
            sh = self.shadows[cid]
            txt = json.dumps({"deviceid": cid, "data": sh["data"], "rev": sh["rev"],
                              "modified": sh["modified"]})
        self.svc.publish("dash/shadow/%s" % e["alias"], txt, retain=True)

    def _write(self, cid, data, merged=True, ts=None, notify=True):
        with self.lock:
            sh = self.shadows[cid]
            if ts is not None and ts < sh.get("ts", 0):
                return False      # older than the shadow: feed only, shadow unchanged
            if ts is not None:
                sh["ts"] = ts
            if merged:
                merge(sh["data"], data)
            else:
                sh["data"] = merge({}, data)
            sh["rev"] += 1
            sh["modified"] = self.now_ms()
            self._save_shadow(cid)
            self._feed_add(cid, sh)
            out = {"deviceid": cid, "data": data if self.updated_mode == "delta" else sh["data"],
                   "rev": sh["rev"], "modified": sh["modified"]}
            txt = json.dumps(out)
        if notify:
            self.svc.publish("d/%s/@shadow/data/updated" % cid, txt)
        self._publish_dash(cid)
        return True

    def _on_message(self, cl, ud, m):
        try:
            self._handle(m.topic, m.payload)
        except Exception as ex:  # keep the service alive on any input
            if self.log:
                self.log("service error on %s: %r" % (m.topic, ex))

    def _handle(self, topic, payload):
        parts = topic.split("/", 2)
        if parts[0] == "d":
            cid, rest = parts[1], parts[2]
            if cid not in self.by_cid:
                return
            ops = max(1, math.ceil(len(payload) / 1024))
            if rest == "@shadow/data/update":
                self._count(cid, shadow_ops=ops, shadow_write_ops=ops, shadow_writes=1)
                try:
                    msg = json.loads(payload)
                except ValueError:
                    return
                if not isinstance(msg, dict) or not isinstance(msg.get("data"), dict):
                    return
                ts = msg.get("timestamp")
                self._write(cid, msg["data"], msg.get("merged", True) is not False,
                            ts if isinstance(ts, int) else None)
            elif rest == "@shadow/data/get":
                with self.lock:
                    sh = self.shadows[cid]
                    txt = json.dumps({"deviceid": cid, "data": sh["data"], "rev": sh["rev"],
                                      "modified": sh["modified"]})
                ops = max(1, math.ceil(len(txt) / 1024))
                self._count(cid, shadow_ops=ops, shadow_read_ops=ops, shadow_reads=1)
                self.svc.publish("d/%s/@private/shadow/data/get/response" % cid, txt)
            elif rest == "@shadow/batch/update":
                self._batch(cid, payload)
        elif topic.startswith("dash/writeShadow/"):
            e = self.by_alias.get(topic[len("dash/writeShadow/"):])
            if not e:
                return
            data = json.loads(payload)
            if isinstance(data, dict):
                ops = max(1, math.ceil(len(payload) / 1024))
                self._count(e["client_id"], shadow_ops=ops, shadow_write_ops=ops,
                            shadow_writes=1)
                self._write(e["client_id"], data)
        elif topic.startswith("dash/publishMsg/"):
            alias, _, t = topic[len("dash/publishMsg/"):].partition("/")
            e = self.by_alias.get(alias)
            if e and t:
                self.svc.publish("g/%s/@msg/%s" % (e["group"], t), payload)

    def _batch(self, cid, payload):
        self._count(cid, shadow_ops=1, shadow_write_ops=1, batches=1)
        try:
            msg = json.loads(payload)
        except ValueError:
            return
        if not isinstance(msg, dict) or not isinstance(msg.get("batch"), list):
            return
        ack = msg.get("ackid")
        recs = msg["batch"]
        resp = None
        if len(recs) > BATCH_MAX:
            resp = {"ackid": ack, "errcode": 429, "message": "batch size exceeds 100",
                    "inputsize": len(recs)}
        else:
            now = self.now_ms()
            good = []
            for r in recs:
                if not isinstance(r, dict) or not isinstance(r.get("data"), dict):
                    continue
                ts = r.get("ts", r.get("timestamp", 0))
                if not isinstance(ts, (int, float)):
                    ts = 0
                good.append((int(now + ts if ts < 8388608000 else ts), r["data"]))
            good.sort(key=lambda x: x[0])
            self._count(cid, batch_records=len(good))
            merged = msg.get("merged", True) is not False
            for i, (ts, data) in enumerate(good):
                # the updated notice (trigger) fires only for the newest record
                self._write(cid, data, merged or i > 0, ts, notify=i == len(good) - 1)
            if good:
                resp = {"ackid": ack, "total": len(good), "mints": good[0][0],
                        "maxts": good[-1][0]}
            else:
                resp = {"ackid": ack, "total": 0}
        if ack is not None and resp:
            self.svc.publish("d/%s/@private/shadow/batch/update/response" % cid,
                             json.dumps(resp))


    # ---- REST API (NETPIE's /v2/device/...) and the dashboard page ----
    def rest_auth(self, header, alias=None):
        """(device entry, None) for a valid "Device <ClientID>:<Token>" header, else
        (None, http status). A device credential reaches its own shadow; a dashboard
        credential the devices it lists (?alias=, default its first)."""
        if not header or not header.startswith("Device "):
            return None, 401
        cid, _, tok = header[7:].strip().partition(":")
        for e in self.devs:
            if e["client_id"] == cid and e["token"] == tok:
                if alias and alias != e["alias"]:
                    return None, 403
                return e, None
        for d in self.dashs:
            if d["client_id"] == cid and d["token"] == tok:
                allowed = [a for a in d.get("devices", []) if a in self.by_alias]
                a = alias or (allowed[0] if allowed else None)
                if a not in allowed:
                    return None, 403
                return self.by_alias[a], None
        return None, 401

    def page_credential(self):
        """The credential the served page uses: the first dashboard's (else the first
        device's), as "<ClientID>:<Token>"."""
        d = self.dashboard or self.meter
        return "%s:%s" % (d["client_id"], d["token"]) if d else ""

    def widgets(self):
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import widgets as W
        return W.resolve(W.load_spec(), self.dash_cfg or W.load_config())

    def feed(self, cid, since=0):
        with self.lock:
            pts = [p for p in self.feeds.get(cid, []) if p[0] >= since]
        return {"deviceid": cid, "fields": ["t"] + list(FEED_FIELDS), "points": pts}

    def _start_http(self):
        standin = self

        class H(_Handler):
            si = standin

        self.http = _HttpServer((self.host, self.http_port or 0), H)
        self.http_port = self.http.server_address[1]
        threading.Thread(target=self.http.serve_forever, kwargs={"poll_interval": 0.2},
                         daemon=True).start()

    # ---- proxy ----
    def _auth(self, cid, user, pw):
        for e in self.devs:
            if e["client_id"] == cid:
                kind = "device"
                break
        else:
            for e in self.dashs:
                if e["client_id"] == cid:
                    kind = "dashboard"
                    break
            else:
                return None, None
        if user is None or user.decode("utf-8", "replace") != e["token"]:
            return None, None
        if pw and pw.decode("utf-8", "replace") != e["secret"]:
            return None, None
        return kind, e

    def _map(self, kind, e, t):
        """device/dashboard topic -> broker topic (None = not allowed)."""
        if kind == "device":
            if t.startswith("@msg/"):
                return "g/%s/%s" % (e["group"], t)
            if t.startswith("@"):
                return "d/%s/%s" % (e["client_id"], t)
            return "x/%s/%s" % (e["client_id"], t)
        if t.startswith("@msg/"):
            # a dashboard's publishMsg: into the group of its (first) device
            for a in e.get("devices", []):
                if a in self.by_alias:
                    return "g/%s/%s" % (self.by_alias[a]["group"], t)
            return None
        verb, _, rest = t.partition("/")
        alias = rest.split("/", 1)[0]
        if verb not in ("writeShadow", "publishMsg", "shadow", "status"):
            return None
        if alias not in e.get("devices", []) and alias not in ("+", "#"):
            return None
        return "dash/" + t

    def _unmap(self, kind, e, t):
        if kind == "device":
            for p in ("g/%s/" % e["group"], "d/%s/" % e["client_id"], "x/%s/" % e["client_id"]):
                if t.startswith(p):
                    return t[len(p):]
            return t
        if t.startswith("g/"):
            return t.split("/", 2)[2]
        return t[5:] if t.startswith("dash/") else t

    def dashboard_client(self, index=0):
        """A connected paho client with dashboard credential `index` (loop running): publish
        "@msg/<topic>" (NETPIE publishMsg), "writeShadow/<alias>", "publishMsg/<alias>/<t>"."""
        d = self.dashs[index]
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=d["client_id"])
        c.username_pw_set(d["token"], d["secret"])
        ok = threading.Event()
        c.on_connect = lambda *a: ok.set()
        c.connect("127.0.0.1", self.port, 30)
        c.loop_start()
        if not ok.wait(5):
            c.loop_stop()
            raise RuntimeError("dashboard client did not connect")
        return c

    async def _client(self, r, w):
        self.conns.add(w)
        bw = None
        try:
            b0, body = await asyncio.wait_for(_read_pkt(r), 10)
            if b0 >> 4 != 1:
                return
            name, i = _rstr(body, 0)
            level, flags = body[i], body[i + 1]
            i += 4
            cid, i = _rstr(body, i)
            will = None
            if flags & 4:
                wt, i = _rstr(body, i)
                wm, i = _rstr(body, i)
                will = (wt, wm)
            user = pw = None
            if flags & 0x80:
                user, i = _rstr(body, i)
            if flags & 0x40:
                pw, i = _rstr(body, i)
            cid_s = cid.decode("utf-8", "replace")
            kind, e = self._auth(cid_s, user, pw)
            if not kind:
                if cid_s in self.by_cid:
                    self._count(cid_s, auth_fail=1)
                w.write(b"\x20\x02\x00\x05")   # CONNACK: not authorized
                await w.drain()
                return
            if kind == "device":
                self._count(cid_s, connects=1)
            # forward CONNECT (will topic mapped) to the broker
            # the secret is optional on NETPIE: the broker always gets the stored one
            nb = bytearray()
            nb += _mstr(name) + bytes((level, flags | 0xC0)) + body[len(name) + 4:len(name) + 6]
            nb += _mstr(cid)
            if will:
                nb += _mstr(self._map(kind, e, will[0].decode()) or "x/void") + _mstr(will[1])
            nb += _mstr(user) + _mstr(e["secret"])
            br, bw = await asyncio.open_connection("127.0.0.1", self.bport)
            self.conns.add(bw)
            bw.write(_pkt(b0, bytes(nb)))
            await bw.drain()
            if kind == "device":
                self.online[cid_s] = self.online.get(cid_s, 0) + 1
                self.svc.publish("dash/status/%s" % e["alias"], "1", retain=True)
            up = asyncio.ensure_future(self._pump(r, bw, kind, e, True))
            down = asyncio.ensure_future(self._pump(br, w, kind, e, False))
            try:
                await asyncio.wait([up, down], return_when=asyncio.FIRST_COMPLETED)
            finally:
                up.cancel()
                down.cancel()
                await asyncio.gather(up, down, return_exceptions=True)
            if kind == "device":
                self.online[cid_s] -= 1
                if not self.online[cid_s]:
                    self.svc.publish("dash/status/%s" % e["alias"], "0", retain=True)
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, OSError, ValueError,
                IndexError):
            pass
        finally:
            self.conns.discard(w)
            self.conns.discard(bw)
            for x in (w, bw):
                if x:
                    try:
                        x.close()
                    except Exception:
                        pass

    async def _pump(self, r, w, kind, e, up):
        cid = e["client_id"]
        while True:
            b0, body = await _read_pkt(r)
            t = b0 >> 4
            if t == 3:      # PUBLISH: map the topic
                tb, i = _rstr(body, 0)
                topic = tb.decode("utf-8", "replace")
                nt = self._map(kind, e, topic) if up else self._unmap(kind, e, topic)
                if nt is None:
                    continue
                body = _mstr(nt) + body[i:]
                if kind == "device":
                    blocks = max(1, math.ceil((len(body) - i) / 4096))
                    if up:
                        self._count(cid, msgs_in=blocks, bytes_in=len(body))
                    else:
                        self._count(cid, msgs_out=blocks)
            elif up and t in (8, 10):   # SUBSCRIBE / UNSUBSCRIBE: map the filters
                out = bytearray(body[:2])
                i = 2
                n = 0
                while i < len(body):
                    f, i = _rstr(body, i)
                    nf = self._map(kind, e, f.decode("utf-8", "replace")) or "x/void/%s" % cid
                    out += _mstr(nf)
                    if t == 8:
                        out.append(body[i])
                        i += 1
                    n += 1
                if kind == "device" and t == 8:
                    self._count(cid, subscribes=1)
                body = bytes(out)
            w.write(_pkt(b0, body))
            await w.drain()

    async def _serve(self, started):
        self.server = await asyncio.start_server(self._client, self.host, self.port,
                                                 reuse_address=True)
        started.set()

    def _stats_loop(self):
        while not self._stop.wait(1.0):
            try:
                self._write_stats()
            except OSError:
                pass

    # ---- life cycle ----
    def start(self):
        self._start_broker()
        try:
            self._start_service()
            self.loop = asyncio.new_event_loop()
            started = threading.Event()
            self.thread = threading.Thread(target=self._run_loop, args=(started,), daemon=True)
            self.thread.start()
            if not started.wait(10):
                raise RuntimeError("proxy did not start")
            if self._err:
                raise self._err
            if self.http_port is not None:
                self._start_http()
        except BaseException:
            self.stop()
            raise
        self._stop = threading.Event()
        self._stats_t = threading.Thread(target=self._stats_loop, daemon=True)
        self._stats_t.start()
        return self

    _err = None

    def _run_loop(self, started):
        asyncio.set_event_loop(self.loop)
        ev = asyncio.Event()

        async def main():
            try:
                await self._serve(started)
            except Exception as ex:
                self._err = ex
                started.set()
                return
            await ev.wait()

        self._ev = ev
        self._main = self.loop.create_task(main())
        self.loop.run_until_complete(self._main)
        self.loop.close()

    def stop(self):
        if getattr(self, "_stop", None):
            self._stop.set()
        if self.http:
            self.http.close_all()
            self.http = None
        try:
            self._save_feeds()
        except OSError:
            pass
        if self.loop and self.thread and self.thread.is_alive():
            async def close():
                self.server.close()
                for w in list(self.conns):
                    w.close()
                me = asyncio.current_task()
                tasks = [t for t in asyncio.all_tasks() if t is not me and t is not self._main]
                if tasks:   # connections end by themselves once their sockets are closed
                    await asyncio.wait(tasks, timeout=2)
                self._ev.set()
            try:
                asyncio.run_coroutine_threadsafe(close(), self.loop).result(5)
            except Exception:
                pass
            self.thread.join(5)
        if self.svc:
            try:
                self.svc.disconnect()
                self.svc.loop_stop()
            except Exception:
                pass
            self.svc = None
        if self.broker and self.broker.poll() is None:
            self.broker.terminate()
            try:
                self.broker.wait(5)
            except subprocess.TimeoutExpired:
                self.broker.kill()
                self.broker.wait()
        self.broker = None
        try:
            self.stats_dirty = True
            self._write_stats()
        except OSError:
            pass
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
        if self.own_state:
            shutil.rmtree(self.state_dir, ignore_errors=True)
            self.own_state = False

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *a):
        self.open_socks = set()
        self.socks_lock = threading.Lock()
        super().__init__(*a)

    def get_request(self):
        sock, addr = super().get_request()
        with self.socks_lock:
            self.open_socks.add(sock)
        return sock, addr

    def shutdown_request(self, request):
        with self.socks_lock:
            self.open_socks.discard(request)
        super().shutdown_request(request)

    def close_all(self):
        """Stop serving, and end the kept-alive connections too (a browser holds one open)."""
        self.shutdown()
        self.server_close()
        with self.socks_lock:
            socks = list(self.open_socks)
        for sk in socks:
            try:
                sk.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    """NETPIE REST API subset + the dashboard's static files (docs/netpie.md section 9)."""
    si = None
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _send(self, code, body, ctype="application/json", extra=()):
        if not isinstance(body, bytes):
            body = (json.dumps(body) if ctype == "application/json" else body).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Access-Control-Allow-Origin", "*")
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        return len(body)

    def do_OPTIONS(self):
        self._send(204, b"", "text/plain", (
            ("Access-Control-Allow-Methods", "GET, PUT, POST, OPTIONS"),
            ("Access-Control-Allow-Headers", "Authorization, Content-Type")))

    def do_GET(self):
        self._route("GET")

    def do_PUT(self):
        self._route("PUT")

    def do_POST(self):
        self._route("POST")

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _route(self, method):
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        path = u.path
        si = self.si
        try:
            if not path.startswith("/v2/"):
                self._body()
                return self._static(method, path)
            body = self._body()
            e, err = si.rest_auth(self.headers.get("Authorization"), q.get("alias"))
            if err:
                c = self._cid_of_header()
                if c:
                    si._count(c, api_auth_fail=1)
                return self._send(err, {"message": "unauthorized" if err == 401 else
                                        "forbidden: device not in this credential"},
                                  extra=(("WWW-Authenticate", "Device"),) if err == 401 else ())
            cid = e["client_id"]
            try:
                n = self._api(method, path, body, e, q)
            except (BrokenPipeError, ConnectionResetError):
                raise
            except Exception as ex:  # noqa: BLE001 - e.g. the broker is stopping
                n = self._send(503, {"message": "service unavailable: %r" % ex})
            # NETPIE: 1 API op per 4 KB of request and of response
            si._count(cid, api_calls=max(1, math.ceil(len(body) / 4096)) + max(
                1, math.ceil((n or 0) / 4096)))
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _cid_of_header(self):
        h = self.headers.get("Authorization") or ""
        cid = h[7:].strip().partition(":")[0] if h.startswith("Device ") else ""
        if cid in self.si.by_cid:
            return cid
        for d in self.si.dashs:     # a dashboard's failures count on its first device
            if d["client_id"] == cid:
                for a in d.get("devices", []):
                    if a in self.si.by_alias:
                        return self.si.by_alias[a]["client_id"]
        return None

    def _api(self, method, path, body, e, q):
        si = self.si
        cid = e["client_id"]
        if path == "/v2/device/shadow/data":
            if method == "GET":
                with si.lock:
                    sh = si.shadows[cid]
                    out = {"deviceid": cid, "data": sh["data"], "rev": sh["rev"],
                           "modified": sh["modified"]}
                    txt = json.dumps(out)
                ops = max(1, math.ceil(len(txt) / 1024))
                si._count(cid, shadow_ops=ops, shadow_read_ops=ops, shadow_reads=1)
                return self._send(200, txt.encode())
            try:
                msg = json.loads(body or b"null")
            except ValueError:
                msg = None
            if not isinstance(msg, dict) or not isinstance(msg.get("data"), dict):
                return self._send(400, {"message": 'want {"data":{...}}'})
            ops = max(1, math.ceil(len(body) / 1024))
            si._count(cid, shadow_ops=ops, shadow_write_ops=ops, shadow_writes=1)
            si._write(cid, msg["data"], merged=method == "PUT")
            with si.lock:
                sh = si.shadows[cid]
                out = {"deviceid": cid, "data": msg["data"], "rev": sh["rev"],
                       "modified": sh["modified"]}
            return self._send(200, out)
        if path.startswith("/v2/device/message/") and method in ("PUT", "POST"):
            topic = urllib.parse.unquote(path[len("/v2/device/message/"):])
            if not topic or "#" in topic or "+" in topic:
                return self._send(400, {"message": "bad topic"})
            si.svc.publish("g/%s/@msg/%s" % (e["group"], topic), body)
            return self._send(200, {"message": "published", "topic": "@msg/" + topic})
        if path == "/v2/device/status" and method == "GET":
            return self._send(200, {"deviceid": cid, "status": 1 if si.online.get(cid) else 0})
        if path == "/v2/device/feed" and method == "GET":
            try:
                since = int(q.get("since", 0))
            except ValueError:
                since = 0
            return self._send(200, si.feed(cid, since))
        return self._send(404, {"message": "not found"})

    def _static(self, method, path):
        si = self.si
        if method != "GET":
            return self._send(405, {"message": "method not allowed"})
        if path == "/widgets.json":
            return self._send(200, si.widgets())
        name = "index.html" if path in ("/", "") else path.lstrip("/")
        ctype = DASH_TYPES.get(os.path.splitext(name)[1])
        if not ctype or "/" in name or name.startswith("."):
            return self._send(404, "not found", "text/plain")
        try:
            with open(os.path.join(DASH_DIR, name), "rb") as fh:
                data = fh.read()
        except OSError:
            return self._send(404, "not found", "text/plain")
        if name == "index.html":
            # the served page uses the stand-in's dashboard credential (docs/dashboard.md)
            data = data.replace(b'name="netpie-auth" content=""',
                                ('name="netpie-auth" content="%s"' % si.page_credential()
                                 ).encode())
        return self._send(200, data, ctype)


def start_standin(port, devices=None, state_dir=None, updated="delta", backend="auto",
                  log=None, http_port=None, dash_cfg=None, clock=None):
    """Start a stand-in on 127.0.0.1:port; devices = credentials file path or dict (None: the
    example file), state_dir None = a temporary dir removed by stop(). Returns the running
    Standin (.stop(), .shadow(alias), .stats(), .meter, .dashboard_client(); a context
    manager)."""
    return Standin(port, devices, state_dir, updated, backend, log=log, http_port=http_port,
                   dash_cfg=dash_cfg, clock=clock).start()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=18830)
    ap.add_argument("--devices", required=True, help="credentials JSON (see "
                    "tools/netpie_devices.example.json)")
    ap.add_argument("--state-dir", required=True, help="shadows and stats.json live here")
    ap.add_argument("--updated", choices=("delta", "full"), default="delta",
                    help="@shadow/data/updated carries the written fields (delta) or the whole "
                    "shadow (full); NETPIE does not document which")
    ap.add_argument("--backend", choices=("auto", "mosquitto", "amqtt"), default="auto")
    ap.add_argument("--http-port", type=int, default=None,
                    help="also serve NETPIE's REST API (/v2/) and the dashboard page (/) here "
                    "(0 = a free port)")
    ap.add_argument("--config", default=None, help="meter config.json for the page's ranges "
                    "(default firmware/config.json.example)")
    a = ap.parse_args(argv)
    dcfg = None
    if a.config:
        with open(a.config) as f:
            dcfg = json.load(f)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *x: done.set())
    signal.signal(signal.SIGINT, lambda *x: done.set())
    s = start_standin(a.port, a.devices, a.state_dir, a.updated, a.backend,
                      log=lambda m: print(m, file=sys.stderr, flush=True),
                      http_port=a.http_port, dash_cfg=dcfg)
    print("netpie-standin ready port=%d broker=%s" % (a.port, s.kind), flush=True)
    if s.http:
        print("dashboard: http://127.0.0.1:%d/" % s.http_port, flush=True)
    try:
        while not done.wait(0.5):
            pass
    finally:
        s.stop()


if __name__ == "__main__":
    main()
