"""Device emulator: PZEM-004T + EV charger on ONE Modbus RTU bus (a pseudo-terminal), pymodbus 3.16.1.

    python -m sim.emulator --config CFG.json --scenario SCEN.json --sim-dir DIR [--pace]

Writes the firmware-side pty path to DIR/bus, reads DIR/relays (host board) and DIR/faults
(fault injection), writes DIR/world.json every simulated minute and at exit (SIGTERM/SIGINT).
Clock: sim_now = SIM_EPOCH + (time.time() - SIM_ANCHOR) * SIM_SPEED (docs/architecture.md); when
SIM_EPOCH is unset the scenario start is used, when SIM_ANCHOR is unset the emulator's start time.

Bus topology: firmware <-> [pty A] <-> link thread <-> [pty B] <-> pymodbus ModbusSerialServer.
The link (our code) frames requests/replies, applies fault injection (silent / corrupt CRC / late)
per device and, with --pace, 9600-baud wire timing. pymodbus serves the registers; the devices'
action callbacks read and write the World model (sim/world.py).
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import json
import logging
import math
import os
import select
import signal
import sys
import threading
import time
import tty
from functools import partial

from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.pdu import ExceptionResponse, ModbusPDU
from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import DataType, SimData, SimDevice, simcore

from sim.world import FAULT_DEVS, FAULT_KINDS, World, scenario_epoch

GENERAL_ADDR = 0xF8          # every PZEM answers it
CHAR_S = 10 / 9600           # 8N1 character time at 9600 baud
T35_S = 3.5 * CHAR_S
TURNAROUND_S = 0.005         # paced mode: slave think time before the reply
FRAME_GAP_S = 0.003          # link: silence that ends a frame of unknown length


# ------------------------------------------------------------------ pymodbus 3.16.1 patch
def _get_device(self, device_id):
    """3.16.1 answers every unhosted id with exception 4 (KeyError inside the server). On a shared
    bus an absent id must be silent: raise NoSuchIdException, which ignore_missing_devices=True
    turns into silence. (Same fix as docs in /work/shared/research/modbus.md section 5.1.)"""
    if device_id in self.devices:
        return self.devices[device_id]
    if 0 in self.devices:
        return self.devices[0]
    raise NoSuchIdException("device_id %d not hosted" % device_id)


simcore.SimCore._SimCore__get_device = _get_device


# ------------------------------------------------------------------ clock
class Clock:
    def __init__(self, default_epoch: float):
        env = os.environ
        self.epoch = float(env.get("SIM_EPOCH") or default_epoch)
        self.anchor = float(env.get("SIM_ANCHOR") or time.time())
        self.speed = float(env.get("SIM_SPEED") or 1)
        # when the meter's clock becomes valid (sim/hostboard/board.py utc()): SIM_CLOCK unset or
        # "ok" = always, "none" = never, <s> = s simulated seconds after SIM_EPOCH
        c = env.get("SIM_CLOCK") or "ok"
        self.valid_from = -math.inf if c == "ok" else math.inf if c == "none" else (
            self.epoch + float(c))

    def now(self) -> float:
        return self.epoch + (time.time() - self.anchor) * self.speed


# ------------------------------------------------------------------ frame helpers
def crc16(data: bytes) -> int:
    c = 0xFFFF
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ 0xA001 if c & 1 else c >> 1
    return c


def request_len(b: bytes) -> int:
    """Length of a request frame from its first bytes, 0 = not known yet / unknown FC."""
    if len(b) < 2:
        return 0
    fc = b[1]
    if fc in (1, 2, 3, 4, 5, 6):
        return 8
    if fc in (15, 16):
        return 9 + b[6] if len(b) > 6 else 0
    if fc == 0x42:
        return 4
    if fc == 0x41:
        return 6
    return 0


def reply_len(b: bytes) -> int:
    if len(b) < 3:
        return 0
    fc = b[1]
    if fc & 0x80:
        return 5
    if fc < 5:
        return 5 + b[2]
    return 4 if fc == 0x42 else 8


def raw_pty():
    m, s = os.openpty()
    tty.setraw(s)
    return m, s, os.ttyname(s)


# ------------------------------------------------------------------ the link (faults, pacing)
class BusLink:
    """Joins the firmware pty (A) and the pymodbus pty (B) frame by frame.

    Requests A->B: dropped while the addressed device is 'silent'. Replies B->A: last CRC byte
    flipped while 'crc', delayed by late_s (real seconds) while 'late'. With pace=True requests
    reach the server after their 9600-baud wire time and replies trickle out byte by byte."""

    def __init__(self, emu: "Emulator", pace: bool, late_s: float):
        self.emu = emu
        self.pace = pace
        self.late_s = late_s
        self.ma, self.sa, self.path_a = raw_pty()      # firmware side
        self.mb, self.sb, self.path_b = raw_pty()      # pymodbus side
        self._r, self._w = os.pipe()
        self.stats = {"requests": 0, "replies": 0, "dropped": 0, "corrupted": 0, "late": 0}
        self._out: list = []        # heap (due_monotonic, seq, fd, bytes)
        self._seq = 0
        self._t = threading.Thread(target=self._run, name="buslink", daemon=True)
        self._t.start()

    def _schedule(self, due: float, fd: int, data: bytes) -> None:
        self._seq += 1
        heapq.heappush(self._out, (due, self._seq, fd, data))

    def _device(self, addr: int):
        w = self.emu.world
        if addr == w.pzem_addr or addr == GENERAL_ADDR or (w.pzem_ev_addr and
                                                           addr == w.pzem_ev_addr):
            return "pzem"
        if addr == w.charger_addr:
            return "charger"
        return None

    def _on_request(self, frame: bytes, t_first: float) -> None:
        self.stats["requests"] += 1
        dev = self._device(frame[0])
        if dev and self.emu.fault(dev, "silent"):
            self.stats["dropped"] += 1
            return
        due = t_first + len(frame) * CHAR_S + T35_S if self.pace else 0.0
        self._schedule(due, self.mb, frame)

    def _on_reply(self, frame: bytes) -> None:
        self.stats["replies"] += 1
        dev = self._device(frame[0])
        now = time.monotonic()
        if dev and self.emu.fault(dev, "silent"):
            self.stats["dropped"] += 1
            return
        if dev and self.emu.fault(dev, "crc") and len(frame) >= 4:
            frame = frame[:-1] + bytes((frame[-1] ^ 0x5A,))
            self.stats["corrupted"] += 1
        start = now
        if dev and self.emu.fault(dev, "late"):
            start = now + self.late_s
            self.stats["late"] += 1
        if self.pace:
            start += TURNAROUND_S
            for i, b in enumerate(frame):
                self._schedule(start + (i + 1) * CHAR_S, self.ma, bytes((b,)))
        else:
            self._schedule(start, self.ma, frame)

    def _run(self) -> None:
        bufs = {self.ma: bytearray(), self.mb: bytearray()}
        first = {self.ma: 0.0, self.mb: 0.0}
        last = {self.ma: 0.0, self.mb: 0.0}
        sizer = {self.ma: request_len, self.mb: reply_len}

        def flush(fd):
            frame = bytes(bufs[fd])
            bufs[fd].clear()
            if fd == self.ma:
                self._on_request(frame, first[fd])
            else:
                self._on_reply(frame)

        while True:
            now = time.monotonic()
            timeout = 0.2
            for fd, b in bufs.items():
                if b:
                    timeout = min(timeout, last[fd] + FRAME_GAP_S - now)
            if self._out:
                timeout = min(timeout, self._out[0][0] - now)
            try:
                rl, _, _ = select.select([self.ma, self.mb, self._r], [], [], max(timeout, 0.0))
            except (OSError, ValueError):
                return
            if self._r in rl:
                return
            now = time.monotonic()
            for fd in (self.ma, self.mb):
                if fd in rl:
                    try:
                        data = os.read(fd, 4096)
                    except OSError:
                        data = b""
                    if not data:
                        continue
                    b = bufs[fd]
                    if b and now - last[fd] >= FRAME_GAP_S:
                        flush(fd)
                    if not b:
                        first[fd] = now
                    b += data
                    last[fd] = now
                    n = sizer[fd](b)
                    if n and len(b) >= n:
                        flush(fd)
            for fd, b in bufs.items():
                if b and now - last[fd] >= FRAME_GAP_S:
                    flush(fd)
            while self._out and self._out[0][0] <= time.monotonic():
                _, _, fd, data = heapq.heappop(self._out)
                try:
                    os.write(fd, data)
                except OSError:
                    pass

    def close(self) -> None:
        try:
            os.write(self._w, b"x")
        except OSError:
            pass
        self._t.join(1)
        for fd in (self.ma, self.sa, self.mb, self.sb, self._r, self._w):
            try:
                os.close(fd)
            except OSError:
                pass


# ------------------------------------------------------------------ FC 0x42 (PZEM reset energy)
class ResetEnergyPDU(ModbusPDU):
    """Custom FC 0x42: request and reply are `addr 42 CRC`; the charger answers exception 1."""
    function_code = 0x42
    rtu_frame_size = 4
    emu: "Emulator | None" = None

    def encode(self) -> bytes:
        return b""

    def decode(self, data: bytes) -> None:
        pass

    async def datastore_update(self, context, device_id):
        emu = ResetEnergyPDU.emu
        w = emu.world
        if device_id not in (w.pzem_addr, GENERAL_ADDR):
            if device_id != w.charger_addr:
                raise NoSuchIdException("device_id %d not hosted" % device_id)
            return ExceptionResponse(0x42, ExcCodes.ILLEGAL_FUNCTION)
        emu.sync()
        w.pzem_reset()
        return ResetEnergyPDU(dev_id=device_id, transaction_id=self.transaction_id)


# ------------------------------------------------------------------ emulator
class Emulator:
    def __init__(self, cfg: dict, scen: dict, sim_dir: str, pace: bool = False,
                 late_ms: float = 400.0):
        self.cfg = cfg
        self.scen = scen
        self.dir = sim_dir
        os.makedirs(sim_dir, exist_ok=True)
        self.clock = Clock(scenario_epoch(cfg, scen))
        self.world = World(cfg, scen, t_start=self.clock.now(), clock_from=self.clock.valid_from)
        self.lock = threading.Lock()
        self.link = BusLink(self, pace, late_ms / 1000.0)
        self.server = None
        self._relays_sig = None
        self._faults_pos = 0
        self._written_samples = -1
        # SIM_WORLD_MIN: write world.json every N simulated minutes (default 1). A month's
        # series is ~1.7 MB of JSON: at x2400 a write every simulated minute (25 ms real) would
        # take the emulator's whole time; long benchmarks (bench.month) set e.g. 60.
        self._world_every = max(1, int(os.environ.get("SIM_WORLD_MIN") or 1))
        self.relays_path = os.path.join(sim_dir, "relays")
        self.faults_path = os.path.join(sim_dir, "faults")
        ResetEnergyPDU.emu = self

    # called from the link thread and the asyncio thread
    def fault(self, dev: str, kind: str) -> bool:
        return self.world.fault(dev, kind, self.clock.now())

    def sync(self) -> None:
        with self.lock:
            self.world.advance(self.clock.now())

    # ---------------------------------------------------------- pymodbus devices
    async def _pzem_action(self, fc, start, address, count, regs, values):
        self.sync()
        w = self.world
        if fc == 4:
            vals = w.pzem_input()
            for i in range(len(regs)):
                if 0 <= start + i < 10:
                    regs[i] = vals[start + i]
            return None
        if values is not None:
            for i, v in enumerate(values):
                old = w.pzem_addr
                rc = w.pzem_write(address + i, int(v))
                if rc:
                    return ExcCodes(rc)
                if w.pzem_addr != old:
                    devs = self.server.context.devices
                    devs[w.pzem_addr] = devs.pop(old)
            return None
        for i in range(len(regs)):
            regs[i] = w.pzem_holding(start + i)
        return None

    async def _charger_action(self, fc, start, address, count, regs, values):
        self.sync()
        w = self.world
        if fc not in (3, 6, 16):
            return ExcCodes.ILLEGAL_FUNCTION
        if w.no_ext and address + count > 3000:
            return ExcCodes.ILLEGAL_ADDRESS
        if values is not None:
            rc = w.charger_write(address, [int(v) for v in values])
            return ExcCodes(rc) if rc else None
        cur = w.charger_regs()
        for i in range(len(regs)):
            if start + i in cur:
                regs[i] = cur[start + i]
        return None

    async def _pzem_ev_action(self, fc, start, address, count, regs, values):
        self.sync()
        if fc == 4:
            vals = self.world.pzem_ev_input()
            for i in range(len(regs)):
                if 0 <= start + i < 10:
                    regs[i] = vals[start + i]
            return None
        if values is not None:
            return ExcCodes.ILLEGAL_ADDRESS     # the EV PZEM is set up before it is wired
        for i in range(len(regs)):
            regs[i] = self.world.pzem_ev_addr if start + i == 2 else 0
        return None

    def _devices(self) -> list:
        bits = [SimData(0, values=False, datatype=DataType.BITS)]
        R = DataType.REGISTERS
        pz = (bits, bits, [SimData(1, count=2, datatype=R)], [SimData(0, count=10, datatype=R)])
        pzem = SimDevice(id=self.world.pzem_addr, simdata=pz, action=self._pzem_action)
        general = SimDevice(id=GENERAL_ADDR, simdata=pz, action=self._pzem_action)
        hr = [SimData(1000, count=1, datatype=R), SimData(1001, count=3, datatype=R, readonly=True),
              SimData(1004, count=1, datatype=R), SimData(1005, count=2, datatype=R, readonly=True),
              SimData(3000, count=5, datatype=R, readonly=True), SimData(3005, count=2, datatype=R)]
        ch = (bits, bits, hr, [SimData(0, count=1, datatype=R)])
        charger = SimDevice(id=self.world.charger_addr, simdata=ch, action=self._charger_action)
        devs = [pzem, general, charger]
        if self.world.pzem_ev_addr:
            devs.append(SimDevice(id=self.world.pzem_ev_addr, simdata=pz,
                                  action=self._pzem_ev_action))
        return devs

    # ---------------------------------------------------------- files
    def write_file(self, name: str, text: str) -> None:
        path = os.path.join(self.dir, name)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)

    def poll_files(self) -> None:
        try:
            st = os.stat(self.relays_path)
            sig = (st.st_mtime_ns, st.st_size)
        except OSError:
            sig = None
        if sig != self._relays_sig:
            self._relays_sig = sig
            relays = {}
            if sig:
                try:
                    with open(self.relays_path) as f:
                        for line in f:
                            p = line.split()
                            if len(p) == 2:
                                relays[int(p[0])] = 1 if int(p[1]) else 0
                except (OSError, ValueError):
                    self._relays_sig = None        # half-written: read again next tick
            with self.lock:
                self.world.advance(self.clock.now())
                self.world.relays = relays
                self.world._react_check()
        try:
            size = os.path.getsize(self.faults_path)
        except OSError:
            return
        if size < self._faults_pos:
            self._faults_pos = 0                   # file was rewritten
        if size == self._faults_pos:
            return
        with open(self.faults_path) as f:
            f.seek(self._faults_pos)
            chunk = f.read()
        done = chunk.rfind("\n") + 1               # only complete lines
        self._faults_pos += len(chunk[:done].encode())
        for line in chunk[:done].splitlines():
            self.apply_fault_line(line)

    def apply_fault_line(self, line: str) -> None:
        p = line.split("#")[0].split()
        if not p:
            return
        try:
            dev, kind = p[0], p[1]
            secs = float(p[2]) if len(p) > 2 else 0.0
            devs = FAULT_DEVS if dev == "all" else (dev,)
            if any(d not in FAULT_DEVS for d in devs) or kind not in FAULT_KINDS + ("ok",):
                raise ValueError
        except (IndexError, ValueError):
            print("emulator: bad fault line %r" % line, file=sys.stderr)
            return
        with self.lock:
            self.world.advance(self.clock.now())
            for d in devs:
                self.world.set_fault(d, kind, secs)

    dump_now = False

    def write_world(self) -> None:
        m = self.world.metrics()
        m["link"] = dict(self.link.stats)
        m["faults_active"] = sorted("%s %s" % k for k, until in self.world.faults.items()
                                    if until > self.world.t)
        m["speed"] = self.clock.speed
        self.write_file("world.json", json.dumps(m, separators=(",", ":")))

    # ---------------------------------------------------------- main loop
    async def run(self, stop: asyncio.Event, tick_s: float = 0.01) -> None:
        self.server = ModbusSerialServer(self._devices(), framer=FramerType.RTU,
                                         port=self.link.path_b, baudrate=9600,
                                         custom_pdu=[ResetEnergyPDU],
                                         ignore_missing_devices=True)
        await self.server.serve_forever(background=True)   # port open when this returns
        self.write_file("bus", self.link.path_a + "\n")
        try:
            while not stop.is_set():
                self.poll_files()
                self.sync()
                if self.dump_now:                  # SIGUSR1: the harness wants metrics now
                    self.dump_now = False
                    self.write_world()
                if (len(self.world.series) != self._written_samples and
                        len(self.world.series) >= self._written_samples + self._world_every):
                    self._written_samples = len(self.world.series)
                    self.write_world()
                try:
                    await asyncio.wait_for(stop.wait(), tick_s)
                except asyncio.TimeoutError:
                    pass
        finally:
            self.sync()
            self.write_world()
            await self.server.shutdown()
            self.link.close()


def load_json(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sim.emulator", description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--scenario", required=True)
    ap.add_argument("--sim-dir", default=os.environ.get("SIM_DIR", "sim/run"))
    ap.add_argument("--pace", action="store_true", help="9600-baud wire timing (use at SPEED=1)")
    ap.add_argument("--late-ms", type=float, default=400.0,
                    help="extra real delay of a reply under a 'late' fault (default 400)")
    ap.add_argument("--print-epoch", action="store_true",
                    help="print the scenario start as UTC unix seconds (a SIM_EPOCH) and exit")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    cfg, scen = load_json(a.config), load_json(a.scenario)
    if a.print_epoch:
        print(scenario_epoch(cfg, scen))
        return 0
    logging.basicConfig(level=logging.DEBUG if a.verbose else logging.CRITICAL)
    logging.getLogger("pymodbus").setLevel(logging.DEBUG if a.verbose else logging.CRITICAL)
    emu = Emulator(cfg, scen, a.sim_dir, pace=a.pace, late_ms=a.late_ms)

    async def amain():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGUSR1, lambda: setattr(emu, "dump_now", True))
        await emu.run(stop)

    asyncio.run(amain())
    return 0


if __name__ == "__main__":
    sys.exit(main())
