"""tools/netpie_standin.py through paho: auth, takeover, groups, shadow merge/get/updated,
batch, dashboard actions, persistence, stats, CLI."""
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
import paho.mqtt.client as mqtt

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "tools"))
import netpie_standin as ns  # noqa: E402

DEVICES = {
    "devices": [
        {"client_id": "meter-1", "token": "tok-1", "secret": "sec-1", "alias": "meter",
         "group": "home"},
        {"client_id": "meter-2", "token": "tok-2", "secret": "sec-2", "alias": "garage",
         "group": "home"},
        {"client_id": "far-1", "token": "tok-f", "secret": "sec-f", "alias": "far",
         "group": "elsewhere"},
    ],
    "dashboards": [{"client_id": "dash-1", "token": "dtok", "secret": "dsec",
                    "devices": ["meter", "garage"]}],
}
CRED = {d["client_id"]: (d["token"], d["secret"]) for d in DEVICES["devices"]}
CRED["dash-1"] = ("dtok", "dsec")


def backends():
    out = []
    if shutil.which("mosquitto") and shutil.which("mosquitto_passwd"):
        out.append("mosquitto")
    out.append("amqtt")
    return out


def start(tmp_path, name="s", **kw):
    last = None
    for b in [kw.pop("backend")] if "backend" in kw else backends():
        try:
            return ns.start_standin(ns.free_port() if "port" not in kw else kw.pop("port"),
                                    DEVICES, str(tmp_path / name), backend=b, **kw)
        except Exception as e:  # try the next backend
            last = e
    pytest.skip("no MQTT broker: mosquitto not installed and amqtt failed (%r)" % last)


@pytest.fixture
def si(tmp_path):
    s = start(tmp_path)
    yield s
    s.stop()


class Cl:
    def __init__(self, port, cid, subs=(), cred=None):
        self.q = queue.Queue()
        self.held = []
        self.rc = None
        self.up = threading.Event()
        self.gone = threading.Event()
        self.subs = list(subs)
        c = self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid)
        tok, sec = cred or CRED[cid]
        c.username_pw_set(tok, sec)
        c.on_connect = self._on_connect
        c.on_subscribe = lambda *a: self.up.set()
        c.on_disconnect = lambda *a: self.gone.set()
        c.on_message = lambda cl, ud, m: self.q.put((m.topic, m.payload))
        c.connect("127.0.0.1", port, 30)
        c.loop_start()

    def _on_connect(self, cl, ud, fl, rc, pr=None):
        self.rc = rc
        if rc.is_failure:
            self.up.set()
            return
        if self.subs:
            cl.subscribe([(s, 0) for s in self.subs])
        else:
            self.up.set()

    def ready(self):
        assert self.up.wait(5), "no SUBACK"
        return self

    def pub(self, topic, payload):
        self.c.publish(topic, payload if isinstance(payload, (str, bytes)) else
                       json.dumps(payload))

    def get(self, topic, timeout=3.0):
        end = time.time() + timeout
        while True:
            for i, (t, p) in enumerate(self.held):
                if t == topic:
                    del self.held[i]
                    try:
                        return json.loads(p)
                    except ValueError:
                        return p
            if time.time() >= end:
                raise AssertionError("nothing on %s" % topic)
            try:
                self.held.append(self.q.get(timeout=max(0.01, end - time.time())))
            except queue.Empty:
                pass

    def none(self, topic, wait=0.5):
        end = time.time() + wait
        while time.time() < end:
            try:
                self.held.append(self.q.get(timeout=0.05))
            except queue.Empty:
                pass
        for t, p in self.held:
            assert t != topic, "unexpected %s %r" % (t, p)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


DEV_SUBS = ("@shadow/data/updated", "@private/#", "@msg/#")


def test_merge_rules():
    d = {"a": 1, "b": {"x": 1, "y": [1, 2]}, "c": [1], "gone": 5}
    ns.merge(d, {"b": {"y": [3], "z": {"q": None, "r": 1}}, "c": [2, 3], "gone": None,
                 "n": {"k": None}})
    assert d == {"a": 1, "b": {"x": 1, "y": [3], "z": {"r": 1}}, "c": [2, 3], "n": {}}
    ns.merge(d, {"b": 7})
    assert d["b"] == 7
    ns.merge(d, {"b": {"new": 1}})
    assert d["b"] == {"new": 1}


def test_shadow_update_updated_get(si):
    c = Cl(si.port, "meter-1", DEV_SUBS).ready()
    c.pub("@shadow/data/update", {"data": {"p": 1, "o": {"x": 1, "y": 2}, "arr": [1, 2]}})
    u = c.get("@shadow/data/updated")
    assert u["deviceid"] == "meter-1" and u["data"]["p"] == 1 and u["rev"] == 1
    assert isinstance(u["modified"], int)
    c.pub("@shadow/data/update", {"data": {"o": {"x": None, "z": 3}, "arr": [9]}})
    u = c.get("@shadow/data/updated")
    assert u["data"] == {"o": {"x": None, "z": 3}, "arr": [9]} and u["rev"] == 2   # the delta
    c.pub("@shadow/data/get", "")
    g = c.get("@private/shadow/data/get/response")
    assert g["data"] == {"p": 1, "o": {"y": 2, "z": 3}, "arr": [9]}
    assert g["deviceid"] == "meter-1" and g["rev"] == 2
    c.pub("@shadow/data/update", {"data": {"only": True}, "merged": False})
    c.get("@shadow/data/updated")
    assert si.shadow("meter") == {"only": True}
    # an older timestamp does not change the shadow
    c.pub("@shadow/data/update", {"data": {"t": 1}, "timestamp": 2_000_000_000_000})
    c.get("@shadow/data/updated")
    c.pub("@shadow/data/update", {"data": {"t": 0}, "timestamp": 1_000_000_000_000})
    c.none("@shadow/data/updated")
    assert si.shadow("meter")["t"] == 1
    # other devices never see this device's shadow traffic
    c2 = Cl(si.port, "meter-2", DEV_SUBS).ready()
    c.pub("@shadow/data/update", {"data": {"q": 1}})
    c.get("@shadow/data/updated")
    c2.none("@shadow/data/updated")
    assert si.shadow("garage") == {}
    c.close()
    c2.close()


def test_full_mode(tmp_path):
    s = start(tmp_path, updated="full")
    try:
        c = Cl(s.port, "meter-1", DEV_SUBS).ready()
        c.pub("@shadow/data/update", {"data": {"a": 1}})
        c.get("@shadow/data/updated")
        c.pub("@shadow/data/update", {"data": {"b": 2}})
        assert c.get("@shadow/data/updated")["data"] == {"a": 1, "b": 2}
        c.close()
    finally:
        s.stop()


def test_batch(si):
    c = Cl(si.port, "meter-1", DEV_SUBS).ready()
    recs = [{"data": {"v": i, "k%d" % i: 1}, "ts": -1000 * (3 - i)} for i in range(3)]
    c.pub("@shadow/batch/update", {"ackid": 77, "batch": recs, "merged": True})
    a = c.get("@private/shadow/batch/update/response")
    assert a["ackid"] == 77 and a["total"] == 3 and a["maxts"] - a["mints"] == 2000
    u = c.get("@shadow/data/updated")
    assert u["data"]["v"] == 2
    c.none("@shadow/data/updated")                  # the notice fires once, for the newest
    assert si.shadow("meter") == {"v": 2, "k0": 1, "k1": 1, "k2": 1}
    st = si.stats()["meter-1"]
    assert st["batches"] == 1 and st["shadow_write_ops"] == 1 and st["batch_records"] == 3
    big = [{"data": {"x": i}, "ts": -i} for i in range(101)]
    c.pub("@shadow/batch/update", {"ackid": 78, "batch": big})
    a = c.get("@private/shadow/batch/update/response")
    assert a == {"ackid": 78, "errcode": 429, "message": "batch size exceeds 100",
                 "inputsize": 101}
    assert "x" not in si.shadow("meter")
    c.close()


def test_auth(si):
    ok = Cl(si.port, "meter-1", cred=("tok-1", "")).ready()     # secret is optional
    assert not ok.rc.is_failure
    ok.close()
    for cid, cred in (("meter-1", ("tok-1", "wrong")), ("meter-1", ("tok-2", "sec-2")),
                      ("nobody", ("tok-1", "sec-1"))):
        c = Cl(si.port, cid, cred=cred)
        assert c.up.wait(5)
        assert c.rc.is_failure, cred
        c.close()
    time.sleep(0.2)
    assert si.stats()["meter-1"]["auth_fail"] == 2


def test_takeover(si):
    a = Cl(si.port, "meter-1", DEV_SUBS).ready()
    b = Cl(si.port, "meter-1", DEV_SUBS).ready()
    assert a.gone.wait(5), "the older connection must be dropped"
    a.c.loop_stop()
    b.pub("@shadow/data/get", "")
    b.get("@private/shadow/data/get/response")
    b.close()


def test_msg_group_and_dashboard(si):
    m1 = Cl(si.port, "meter-1", DEV_SUBS).ready()
    m2 = Cl(si.port, "meter-2", DEV_SUBS).ready()
    far = Cl(si.port, "far-1", DEV_SUBS).ready()
    m1.pub("@msg/garage/door", "open")
    assert m2.get("@msg/garage/door") == b"open"
    assert m1.get("@msg/garage/door") == b"open"     # own messages come back if subscribed
    far.none("@msg/garage/door")
    d = Cl(si.port, "dash-1", ("shadow/meter", "status/meter")).ready()
    assert d.get("status/meter") == 1
    d.pub("publishMsg/meter/meter/target", "07:30")
    assert m1.get("@msg/meter/target") == b"07:30"
    d.pub("writeShadow/meter", {"emergency": True, "load": {"ac": "off"}})
    u = m1.get("@shadow/data/updated")
    assert u["data"] == {"emergency": True, "load": {"ac": "off"}}
    sh = d.get("shadow/meter")
    while sh["rev"] < 1:
        sh = d.get("shadow/meter")
    assert sh["data"]["load"] == {"ac": "off"}
    d.pub("writeShadow/far", {"x": 1})                 # not this dashboard's device
    far.none("@shadow/data/updated")
    assert si.shadow("far") == {}
    m1.close()
    assert d.get("status/meter") == 0
    for c in (m2, far, d):
        c.close()


def test_stats_file_and_persistence(tmp_path):
    s = start(tmp_path, name="p")
    port = s.port
    try:
        c = Cl(port, "meter-1", DEV_SUBS).ready()
        c.pub("@shadow/data/update", {"data": {"blob": "x" * 1500}})   # 2 KB blocks
        c.get("@shadow/data/updated")
        c.pub("@shadow/data/get", "")
        c.get("@private/shadow/data/get/response")
        c.close()
        time.sleep(1.3)
        with open(tmp_path / "p" / "stats.json") as f:
            st = json.load(f)["meter-1"]
        assert st["shadow_write_ops"] == 2 and st["shadow_read_ops"] == 2
        assert st["shadow_ops"] == 4 and st["connects"] == 1 and st["subscribes"] == 1
    finally:
        s.stop()
    s = start(tmp_path, name="p", port=port, backend=s.kind)
    try:
        assert len(s.shadow("meter")["blob"]) == 1500
    finally:
        s.stop()


def test_cli_runs_until_sigterm(tmp_path):
    dev = tmp_path / "dev.json"
    dev.write_text(json.dumps(DEVICES))
    port = ns.free_port()
    p = subprocess.Popen([sys.executable, os.path.join(ROOT, "tools", "netpie_standin.py"),
                          "--port", str(port), "--devices", str(dev), "--state-dir",
                          str(tmp_path / "cli")], stdout=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        line = p.stdout.readline()
        if "ready" not in line:
            pytest.skip("stand-in CLI did not start: %r" % line)
        c = Cl(port, "meter-1", DEV_SUBS).ready()
        c.pub("@shadow/data/update", {"data": {"cli": 1}})
        c.get("@shadow/data/updated")
        c.close()
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == 0
        # the broker child went with it (its own session only: other stand-ins may be running)
        out = subprocess.run(["pgrep", "-s", str(p.pid)], capture_output=True, text=True)
        assert out.stdout.strip() == ""
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def test_example_credentials_file_loads():
    devs, dash = ns.load_devices(os.path.join(ROOT, "tools", "netpie_devices.example.json"))
    assert devs[0]["alias"] == "meter" and dash[0]["devices"] == ["meter"]


def test_dashboard_cli(si, tmp_path):
    dev = tmp_path / "dev.json"
    dev.write_text(json.dumps(DEVICES))
    m = Cl(si.port, "meter-1", DEV_SUBS).ready()
    m.pub("@shadow/data/update", {"data": {"power_w": 5200, "house_w": 1200, "target": "07:30",
                                           "faults": ["clock"], "plan": None}})
    m.get("@shadow/data/updated")
    cli = [sys.executable, os.path.join(ROOT, "tools", "dashboard.py"), "--port", str(si.port),
           "--devices", str(dev)]

    def run(*a):
        r = subprocess.run(cli + list(a), capture_output=True, text=True, timeout=20)
        assert r.returncode == 0, r.stderr
        return r.stdout

    out = run("show")
    assert "5200 W" in out and "target 07:30" in out and "faults      clock" in out
    assert json.loads(run("get"))["data"]["power_w"] == 5200
    run("send", "target", "06:30")
    assert m.get("@msg/meter/target") == b"06:30"
    run("send", "dr", '{"limit_w":3000,"minutes":30}')
    assert m.get("@msg/meter/dr") == {"limit_w": 3000, "minutes": 30}
    run("send", "--shadow", "load/ac", "off")
    assert m.get("@shadow/data/updated")["data"] == {"load": {"ac": "off"}}
    run("send", "--shadow", "reset_ev_soc", "40")
    assert m.get("@shadow/data/updated")["data"] == {"reset_ev_soc": 40}
    w = subprocess.Popen(cli + ["watch", "--seconds", "2.5"], stdout=subprocess.PIPE, text=True)
    time.sleep(1.0)
    m.pub("@shadow/data/update", {"data": {"power_w": 4100}})
    out, _ = w.communicate(timeout=10)
    assert '"power_w": 4100' in out
    m.close()


def test_defaults_and_dashboard_client():
    """start_standin(port) alone: the example credentials, a temporary state dir, .meter and a
    dashboard client whose "@msg/<topic>" publishes reach the meter (sim/run.py uses this)."""
    last = None
    for b in backends():
        try:
            s = ns.start_standin(ns.free_port(), backend=b)
            break
        except Exception as e:
            last = e
    else:
        pytest.skip("no MQTT broker (%r)" % last)
    try:
        dev = s.meter
        m = Cl(s.port, dev["client_id"], DEV_SUBS, cred=(dev["token"], dev["secret"])).ready()
        d = s.dashboard_client()
        d.publish("@msg/meter/target", "07:30")
        assert m.get("@msg/meter/target") == b"07:30"
        d.publish("writeShadow/meter", json.dumps({"target": "06:00"}))
        assert m.get("@shadow/data/updated")["data"] == {"target": "06:00"}
        d.disconnect()
        d.loop_stop()
        m.close()
        state_dir = s.state_dir
    finally:
        s.stop()
    assert not os.path.exists(state_dir)


def _http(port, method, path, body=None, auth=None, ctype="text/plain"):
    import urllib.error
    import urllib.request
    data = body if body is None or isinstance(body, bytes) else (
        body.encode() if isinstance(body, str) else json.dumps(body).encode())
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=data,
                                 method=method)
    if auth:
        req.add_header("Authorization", "Device " + auth)
    if data is not None:
        req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            raw, code, ct = r.read(), r.status, r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        raw, code, ct = e.read(), e.code, e.headers.get("Content-Type", "")
    return code, (json.loads(raw) if ct.startswith("application/json") else raw)


def test_rest_api_and_page(tmp_path):
    """NETPIE's REST API under /v2/ (Authorization: Device <ClientID>:<Token>) and the page."""
    si = start(tmp_path, http_port=0)
    try:
        p = si.http_port
        m1 = Cl(si.port, "meter-1", DEV_SUBS).ready()
        far = Cl(si.port, "far-1", DEV_SUBS).ready()
        m1.pub("@shadow/data/update", {"data": {"power_w": 1200, "target": "07:30"}})
        m1.get("@shadow/data/updated")
        # no credential, a wrong token, a secret instead of the token: 401, nothing read
        for auth in (None, "dash-1:nope", "dash-1:dsec", "nobody:dtok"):
            code, body = _http(p, "GET", "/v2/device/shadow/data", auth=auth)
            assert code == 401, auth
            assert "power_w" not in json.dumps(body)
        code, _ = _http(p, "PUT", "/v2/device/message/meter/target", "08:00")
        assert code == 401
        m1.none("@msg/meter/target", 0.3)
        # a dashboard credential reads its first device, or another of its own by ?alias=
        code, sh = _http(p, "GET", "/v2/device/shadow/data", auth="dash-1:dtok")
        assert code == 200 and sh["deviceid"] == "meter-1"
        assert sh["data"] == {"power_w": 1200, "target": "07:30"} and sh["rev"] >= 1
        assert _http(p, "GET", "/v2/device/shadow/data?alias=garage", auth="dash-1:dtok")[0] \
            == 200
        assert _http(p, "GET", "/v2/device/shadow/data?alias=far", auth="dash-1:dtok")[0] == 403
        # a device credential reads its own shadow
        assert _http(p, "GET", "/v2/device/shadow/data", auth="meter-1:tok-1")[1]["data"][
            "power_w"] == 1200
        # PUT /v2/device/message/<topic> = publishMsg: the device group gets @msg/<topic>
        code, r = _http(p, "PUT", "/v2/device/message/meter/target", "25:99", auth="dash-1:dtok")
        assert code == 200 and r["topic"] == "@msg/meter/target"
        assert m1.get("@msg/meter/target") == b"25:99"
        far.none("@msg/meter/target", 0.3)
        # PUT /v2/device/shadow/data = writeShadow (merge); the device gets updated
        code, r = _http(p, "PUT", "/v2/device/shadow/data",
                        {"data": {"emergency": True, "load": {"ac": "off"}}},
                        auth="dash-1:dtok", ctype="application/json")
        assert code == 200
        assert m1.get("@shadow/data/updated")["data"] == {"emergency": True,
                                                          "load": {"ac": "off"}}
        assert si.shadow("meter")["emergency"] is True and si.shadow("meter")["power_w"] == 1200
        assert _http(p, "PUT", "/v2/device/shadow/data", "nope", auth="dash-1:dtok")[0] == 400
        assert _http(p, "GET", "/v2/device/status", auth="dash-1:dtok")[1]["status"] == 1
        feed = _http(p, "GET", "/v2/device/feed", auth="dash-1:dtok")[1]
        assert feed["fields"][:2] == ["t", "power_w"] and feed["points"][0][1] == 1200
        st = si.stats()["meter-1"]
        assert st["api_calls"] >= 8 and st["api_auth_fail"] >= 2
        # the page, with the first dashboard's credential, and the resolved widget spec
        code, html = _http(p, "GET", "/")
        assert code == 200 and b'content="dash-1:dtok"' in html
        code, spec = _http(p, "GET", "/widgets.json")
        assert code == 200 and spec["config"]["breaker_w"] and spec["loads"]
        assert _http(p, "GET", "/../tools/netpie_standin.py")[0] == 404
        assert _http(p, "GET", "/nothing.js")[0] == 404
        m1.close()
        far.close()
    finally:
        si.stop()
