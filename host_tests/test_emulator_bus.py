"""The running emulator over its pty: MicroPython drivers (host_tests/mp_bus_check.py under the unix
port), a pymodbus client cross-check, paced timing, world.json at exit. Every emulator process is
stopped by its pid in the fixture teardown."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import FIRMWARE, ROOT, micropython_bin

HERE = os.path.dirname(os.path.abspath(__file__))
CFG = os.path.join(ROOT, "firmware", "config.json.example")
SPEED = 20
SCEN = {"start": "2025-01-15 06:00", "house": [{"at": "06:00", "w": 800}],
        "ev": [{"at": "06:00", "plug": True, "soc": 50}], "pzem": {"energy_wh": 123456}}


def start_emulator(tmp, scen, speed=SPEED, extra=()):
    tmp.mkdir(parents=True, exist_ok=True)
    sp = tmp / "scen.json"
    sp.write_text(json.dumps(scen))
    run = tmp / "run"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIM_")}
    env["SIM_SPEED"] = str(speed)
    proc = subprocess.Popen([sys.executable, "-m", "sim.emulator", "--config", CFG, "--scenario",
                             str(sp), "--sim-dir", str(run), *extra], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 15
    while not (run / "bus").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail("emulator did not start: %s %s" % (out, err))
        time.sleep(0.05)
    return proc, run, (run / "bus").read_text().strip()


def stop_emulator(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    proc.communicate()


@pytest.fixture
def emu(tmp_path):
    procs = []

    def _start(scen=SCEN, **kw):
        p = start_emulator(tmp_path / str(len(procs)), scen, **kw)
        procs.append(p[0])
        return p

    yield _start
    for p in procs:
        stop_emulator(p)


def run_mp(bus, run, mode, pa=1, ca=2, speed=SPEED):
    hostboard = os.path.join(ROOT, "sim", "hostboard")
    env = dict(os.environ, MICROPYPATH=hostboard + ":" + FIRMWARE + ":" + HERE + ":.frozen")
    r = subprocess.run([micropython_bin(), os.path.join(HERE, "mp_bus_check.py"), bus,
                        str(run / "faults"), str(speed), mode, str(pa), str(ca)],
                       env=env, capture_output=True, text=True, timeout=90)
    assert r.returncode == 0 and "ALL OK" in r.stdout, r.stdout + r.stderr
    return r.stdout


def test_micropython_drivers_against_emulator(emu):
    proc, run, bus = emu()
    out = run_mp(bus, run, "full")
    assert "ok fallback to safe current after timeout" in out
    stop_emulator(proc)
    w = json.loads((run / "world.json").read_text())
    assert w["link"]["corrupted"] >= 1 and w["link"]["dropped"] >= 1 and w["link"]["late"] >= 1
    assert w["counts"]["pzem_resets"] == 1 and w["counts"]["fallbacks"] == 1
    assert w["soc_start"] == 50 and w["soc_end"] > 50 and w["ev_energy_wh"] > 0


def test_micropython_charger_without_extension(emu):
    proc, run, bus = emu(dict(SCEN, charger={"no_ext": True}))
    run_mp(bus, run, "noext")


def test_pymodbus_client_cross_check(emu):
    from pymodbus import FramerType
    from pymodbus.client import ModbusSerialClient

    proc, run, bus = emu()
    c = ModbusSerialClient(bus, framer=FramerType.RTU, baudrate=9600, timeout=0.3, retries=0)
    assert c.connect()
    try:
        r = c.read_input_registers(0, count=10, device_id=1)
        assert not r.isError()
        v, p = r.registers[0] / 10, (r.registers[3] | r.registers[4] << 16) / 10
        assert 225 < v < 235 and p == 800
        assert (r.registers[5] | r.registers[6] << 16) >= 123456
        r = c.read_holding_registers(1000, count=7, device_id=2)
        assert r.registers[2] == 2 and r.registers[5] == 18        # B, firmware version
        r = c.read_holding_registers(3000, count=7, device_id=2)
        assert r.registers[0] == 0x4556 and r.registers[1] == 50
        assert not c.write_registers(1000, [10], device_id=2).isError()
        assert not c.write_register(1004, 0, device_id=2).isError()       # FC06 accepted too
        assert c.read_holding_registers(1000, count=1, device_id=2).registers == [10]
        r = c.read_holding_registers(1010, count=1, device_id=2)
        assert r.isError() and r.exception_code == 2
        r = c.read_input_registers(0, count=1, device_id=2)
        assert r.isError() and r.exception_code == 1
        r = c.read_holding_registers(2, count=1, device_id=0xF8)          # general address
        assert r.registers == [1]
        with pytest.raises(Exception):                                    # absent id: silence
            c.read_holding_registers(1000, count=1, device_id=9)
    finally:
        c.close()


def test_paced_wire_time(emu):
    """--pace: a PZEM poll (8 + 25 bytes at 9600 8N1) cannot finish in under ~34 ms real."""
    from pymodbus import FramerType
    from pymodbus.client import ModbusSerialClient

    proc, run, bus = emu(speed=1, extra=("--pace",))
    c = ModbusSerialClient(bus, framer=FramerType.RTU, baudrate=9600, timeout=1, retries=0)
    assert c.connect()
    try:
        t = time.monotonic()
        r = c.read_input_registers(0, count=10, device_id=1)
        dt = time.monotonic() - t
        assert not r.isError() and dt >= 0.030
    finally:
        c.close()


def _wait_world(run, cond, timeout=10):
    deadline = time.monotonic() + timeout
    w = {}
    while time.monotonic() < deadline:
        try:
            w = json.loads((run / "world.json").read_text())
        except (OSError, ValueError):
            w = {}
        if w and cond(w):
            return w
        time.sleep(0.02)
    pytest.fail("world.json never satisfied the condition: %r" % {k: w.get(k) for k in (
        "hours", "house_w")})


def test_relays_and_world_json(emu):
    scen = dict(SCEN, loads=[{"at": "06:00", "name": "ac", "use": True}])
    proc, run, bus = emu(scen, speed=600)
    _wait_world(run, lambda w: w["hours"] > 0.02 and w["house_w"] == 800 + 1500)  # no file: on
    (run / "relays").write_text("12 0\n14 1\n")
    _wait_world(run, lambda w: w["house_w"] == 800)                              # AC shed
    (run / "relays").write_text("12 1\n")
    _wait_world(run, lambda w: w["house_w"] == 2300)
    stop_emulator(proc)
    w = json.loads((run / "world.json").read_text())
    assert w["house_w"] == 2300 and w["series"] and w["series_fields"][:5] == [
        "t", "house_w", "ev_w", "limit_w", "soc"]
    for k in ("hours", "sanctioned_w", "max_total_w", "over_limit_s", "ev_energy_wh",
              "ev_energy_peak_wh", "soc_start", "soc_end"):
        assert k in w
    assert w["sanctioned_w"] == 5000 and w["hours"] > 0.02
