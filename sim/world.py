"""World model behind the device emulator (CPython, no I/O).

Household load, non-critical loads behind the firmware's relays, an EV with a battery behind an
EVSE-DIN-style charger with our extension block, a PZEM-004T measuring the whole supply, and the
metrics the harness reads (world.json). Everything runs on simulated UTC seconds; the emulator calls
advance(t) with the shared clock. The register view (pzem_input, charger_regs, charger_write...) is
what the Modbus server exposes. See docs/scenario.md and docs/charger-modbus.md.
"""

from __future__ import annotations

import calendar
import copy
import json
import math
import os
import random

EXT_ID = 0x4556
FAULT_KINDS = ("silent", "crc", "late")
FAULT_DEVS = ("pzem", "charger")
WORLD_CMDS = ("dr", "emergency", "choice", "target")    # the commands that change the limit
SERIES_FIELDS = ("t", "house_w", "ev_w", "limit_w", "soc", "amps")
ENERGY_WRAP_WH = 10_000_000          # PZEM energy register range 0..9999.99 kWh


class ScenarioError(ValueError):
    pass


def _firmware(name):
    # a firmware module (and what it imports: netpie needs state, meter, scheduler) with
    # firmware/ on sys.path only while importing, so it shadows nothing in the emulator later
    import importlib
    import sys
    fw = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "firmware")
    sys.path.insert(0, fw)
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(fw)


_fw_config = _firmware("config")
_fw_netpie = _firmware("netpie")     # apply(): the world takes commands by the meter's rules
_fw_state = _firmware("state")
_fw_scheduler = _firmware("scheduler")   # the tariff calendar, as the meter keeps it


def firmware_config(cfg: dict) -> dict:
    """The config as the firmware runs on it: firmware/config.py validate() on a copy fills the
    same defaults (charger.max_a 16...). A config the firmware refuses keeps the defaults filled
    so far, so the world still runs and the harness can report the refusal."""
    c = copy.deepcopy(cfg)
    try:
        return _fw_config.validate(c)
    except ValueError:
        return c


def config_refusal(cfg) -> str | None:
    """The firmware's words when it refuses this config at boot (firmware/config.py; its boot
    report turns double quotes into single ones, firmware/app.py), or None when it runs on it."""
    try:
        _fw_config.validate(copy.deepcopy(cfg))
    except ValueError as e:
        return str(e).replace('"', "'")
    return None


def payload(value) -> str:
    """A scenario command's value as the harness publishes it and apply() receives it."""
    return value if isinstance(value, str) else json.dumps(value)


def scenario_commands(scen: dict) -> list:
    """The scenario's commands as [(at, cmd, payload)] in file order. Each needs at, cmd and
    value (an empty command is "value": ""), else ScenarioError."""
    out = []
    for c in scen.get("commands", []):
        if not isinstance(c, dict) or not {"at", "cmd", "value"} <= set(c):
            raise ScenarioError("command %r: want at, cmd and value" % (c,))
        out.append((c["at"], str(c["cmd"]), payload(c["value"])))
    return out


def hhmm(s: str) -> int:
    """'HH:MM' or 'HH:MM:SS' -> seconds after midnight."""
    try:
        parts = [int(p) for p in str(s).strip().split(":")]
    except ValueError:
        raise ScenarioError("bad time %r (want HH:MM)" % (s,)) from None
    if len(parts) not in (2, 3) or not 0 <= parts[0] <= 24 or not 0 <= parts[1] < 60:
        raise ScenarioError("bad time %r" % (s,))
    return parts[0] * 3600 + parts[1] * 60 + (parts[2] if len(parts) == 3 else 0)


def start_local(scen: dict) -> tuple:
    """Scenario 'start' ('YYYY-MM-DD HH:MM') -> (y, m, d, seconds after local midnight)."""
    s = str(scen.get("start", "2025-01-15 06:00")).replace("T", " ")
    try:
        date, tod = s.split()
        y, m, d = (int(x) for x in date.split("-"))
    except ValueError:
        raise ScenarioError("bad start %r (want 'YYYY-MM-DD HH:MM')" % (s,)) from None
    return y, m, d, hhmm(tod)


def scenario_epoch(cfg: dict, scen: dict) -> int:
    """UTC unix seconds of the scenario start (the natural SIM_EPOCH for this scenario)."""
    y, m, d, tod = start_local(scen)
    return calendar.timegm((y, m, d, 0, 0, 0)) + tod - int(cfg.get("tz_offset_min", 0)) * 60


def parse_at(at, cfg: dict, scen: dict) -> float:
    """Scenario time -> UTC seconds.

    number      seconds after the scenario start
    "HH:MM"     that local time on day 0 (the start date)
    "+Nd HH:MM" that local time N days after the start date
    ("HH:MM:SS" accepted everywhere)
    """
    start = scenario_epoch(cfg, scen)
    if isinstance(at, (int, float)) and not isinstance(at, bool):
        return float(start + at)
    s = str(at).strip()
    day = 0
    if s.startswith("+"):
        try:
            dpart, s = s[1:].split(None, 1)
            if not dpart.endswith("d"):
                raise ValueError
            day = int(dpart[:-1])
        except ValueError:
            raise ScenarioError("bad time %r (want '+Nd HH:MM')" % (at,)) from None
    y, m, d, tod = start_local(scen)
    midnight = calendar.timegm((y, m, d, 0, 0, 0)) - int(cfg.get("tz_offset_min", 0)) * 60
    return float(midnight + day * 86400 + hhmm(s))


EPOCH_2000 = 946684800      # the meter counts UTC seconds from 2000-01-01

# what a plug event may say about its car (docs/scenario.md, `ev`); the rest of the car model
# (taper) is the scenario's
_CAR_KEYS = ("onboard_a", "follow_s", "noise_a", "capacity_wh", "efficiency")


def peak_windows(cfg: dict) -> list:
    """cfg['peak'] ['HH:MM-HH:MM', ...] local -> [(start_s, end_s)] seconds of the local day."""
    out = []
    for w in cfg.get("peak", []):
        a, b = str(w).split("-")
        out.append((hhmm(a), hhmm(b)))
    return out


def day_peaks(fcfg: dict, utc: float) -> list:
    """The peak windows ("HH:MM", "HH:MM") of the local day of utc in the meter's tariff calendar
    (fcfg validated by firmware_config; a config the firmware refuses: its `peak` list)."""
    if "_win" not in fcfg:
        return [tuple(str(w).split("-")) for w in fcfg.get("peak", [])]
    loc = int(utc) - EPOCH_2000 + int(fcfg["tz_offset_min"]) * 60
    win = _fw_scheduler.day_windows(loc // 86400, fcfg)
    return [("%02d:%02d" % divmod(win[i], 60), "%02d:%02d" % divmod(win[i + 1], 60))
            for i in range(0, len(win), 2)]


def in_windows(utc: float, windows: list, tz_offset_min: int) -> bool:
    """True when local time of utc lies in one of the windows; a window may cross midnight."""
    tod = (utc + tz_offset_min * 60) % 86400
    for a, b in windows:
        if a == b:
            continue
        if a < b:
            if a <= tod < b:
                return True
        elif tod >= a or tod < b:
            return True
    return False


class World:
    def __init__(self, cfg: dict, scen: dict, t_start: float | None = None,
                 clock_from: float = -math.inf):
        """clock_from: simulated UTC from which the meter's clock is valid (SIM_CLOCK; inf =
        never): before it the firmware refuses DR requests and keeps a choice open-ended."""
        cfg = firmware_config(cfg)
        self.cfg = cfg
        self.scen = scen
        self.tz = int(cfg.get("tz_offset_min", 0))
        self.sanctioned_w = int(cfg.get("sanctioned_w", 5000))
        self.breaker_w = int(cfg.get("breaker_w", 0)) or 10 ** 9
        self.nominal_v = float(cfg.get("voltage_v", 230))
        self.peaks = peak_windows(cfg)
        ch = cfg.get("charger", {})
        self.phases = int(ch.get("phases", 1))
        self.pzem_addr = int(cfg.get("pzem", {}).get("addr", 1))
        self.pzem_ev_addr = int(cfg.get("pzem", {}).get("ev_addr", 0))   # 0 = no EV PZEM
        self.charger_addr = int(ch.get("addr", 2))
        # the emulator serves each device on its own address, and the PZEM's general 0xF8 too
        addrs = [a for a in (self.pzem_addr, self.pzem_ev_addr, self.charger_addr) if a]
        if len(set(addrs)) < len(addrs) or not all(1 <= a <= 247 for a in addrs):
            raise ValueError("bus addresses %r: want distinct addresses 1-247" % addrs)
        bat = cfg.get("battery", {})
        sch = scen.get("charger", {})
        self.no_ext = bool(sch.get("no_ext", False))
        self.delay_s = float(sch.get("delay_s", 2.0))
        self.cable_a = int(sch.get("cable_a", 32))
        self.max_reg_a = int(sch.get("max_a", 80))
        self.fw_version = int(sch.get("fw", 18))
        sev = scen.get("ev_model", {})
        # the emulated car; config battery.taper_* is only the meter's belief about it
        self.onboard_a = float(sev.get("onboard_a", ch.get("max_a", 16)))
        self.taper_soc = float(sev.get("taper_soc", 80))
        self.taper_floor = float(sev.get("taper_floor", 0.1))
        # the car's own follow delay (a real car takes 1-5 s), else the charger's delay_s
        self.follow_s = float(sev["follow_s"]) if "follow_s" in sev else None
        self.noise_a = float(sev.get("noise_a", 0.0))     # +- A around its draw, never > offer
        self.noise_seed = int(sev.get("seed", 1))
        self.capacity_wh = float(bat.get("capacity_wh", 60000))
        self.efficiency = float(bat.get("efficiency", 0.9))
        self.loads = [(ld["name"], int(ld["pin"]), float(ld["rated_w"]))
                      for ld in cfg.get("loads", [])]
        self.pf_house = float(scen.get("pzem", {}).get("pf", 0.93))
        # a plug event's car starts from these, then takes the figures the event gives
        self.car_model = {k: getattr(self, k) for k in _CAR_KEYS}

        # state
        self.t0 = float(scenario_epoch(cfg, scen))
        self.t = self.t0
        self.house_base_w = 0.0
        self.use = {name: False for name, _, _ in self.loads}   # occupant wants the load
        self.relays: dict[int, int] = {}                         # pin -> 0/1 from DIR/relays
        self.plugged = False
        self.soc = -1.0                 # % (float), -1 = no vehicle yet
        self.reg_limit = int(sch.get("boot_a", 0))   # register 1000
        self.applied_a = self.reg_limit              # register 1001 (what the PWM offers)
        self.pending = None             # (amps, due_t)
        self.turnoff = 0                # register 1004
        self.timeout_s = 0              # register 3005
        self.safe_a = 0                 # register 3006
        self.last_limit_write = self.t
        self.fallback = False
        self.session_wh = 0.0
        self.ev_energy_reg_wh = 0.0     # the EV circuit's PZEM energy register
        self.ev_w = 0.0
        self.ev_a = 0.0
        self.voltage = self.nominal_v + 2.0
        pz = scen.get("pzem", {})
        self.pzem_energy_wh = float(pz.get("energy_wh", 0)) % ENERGY_WRAP_WH
        self.pzem_threshold_w = int(pz.get("threshold_w", 23000))
        # the meter's settings as the commands set them (firmware/netpie.py apply())
        self.clock_from = clock_from
        self.emergency = False
        self.choice = 0                 # index into state.CHOICES
        self._st = _fw_state.State(0)   # apply() scratch State (no load commands here)
        self.choice_until = None        # end of the choice, fixed once the clock is valid
        self.target_min = -1            # departure, minute of the local day
        self.em_off_t = -1e18          # when emergency charging last ended
        self.dr_limit_w = 0
        self.dr_until = -1.0
        self.faults: dict[tuple, float] = {}      # (dev, kind) -> until (sim s)

        # metrics
        self.max_total_w = 0.0
        self.over_limit_s = 0.0
        self.over_limit_wh = 0.0
        self.over_limit_em_s = 0.0      # part of over_limit_s while emergency charging was on
        self.over_breaker_s = 0.0       # above cfg breaker_w (never acceptable)
        self.react_t = None             # when the commanded current stopped fitting the limit
        self.writes = []                # [t, register 1000 written, A the car drew then]
        self.over_log = []              # [start t, seconds] of each spell above the limit
        self._over_from = None
        self.reactions = []             # seconds from such a change to the meter's new command
        self.ev_energy_wh = 0.0
        self.ev_energy_peak_wh = 0.0
        self.total_energy_wh = 0.0
        self.soc_start = None
        self.sessions: list[dict] = []
        self.series: list[list] = []
        self.next_sample = self.t0
        self.counts = {"pzem_reads": 0, "charger_reads": 0, "charger_writes": 0, "pzem_resets": 0,
                       "limit_changes": 0, "fallbacks": 0}

        self.events = self._build_events(scen)
        self.ev_i = 0
        if t_start is not None and t_start > self.t:
            self._skip_to(float(t_start))
        self._apply_due()

    # ---------------------------------------------------------------- scenario events
    def _build_events(self, scen: dict) -> list:
        ev = []
        seq = 0

        def add(at, kind, data):
            nonlocal seq
            ev.append((parse_at(at, self.cfg, scen), seq, kind, data))
            seq += 1

        for h in scen.get("house", []):
            add(h["at"], "house", float(h["w"]))
        for e in scen.get("ev", []):
            add(e["at"], "plug" if e.get("plug", True) else "unplug", e)
        for ld in scen.get("loads", []):
            if ld["name"] not in self.use:
                raise ScenarioError("load %r is not in the config" % (ld["name"],))
            add(ld["at"], "use", (ld["name"], bool(ld.get("use", True))))
        for f in scen.get("faults", []):
            devs = FAULT_DEVS if f.get("dev") == "all" else (f.get("dev"),)
            if any(d not in FAULT_DEVS for d in devs) or f.get("kind") not in FAULT_KINDS + (
                    "ok",):
                raise ScenarioError("bad fault %r" % (f,))
            for d in devs:
                add(f["at"], "fault", (d, f["kind"], float(f.get("s", 0))))
        for at, cmd, p in scenario_commands(scen):
            if cmd in WORLD_CMDS:
                add(at, "cmd", (cmd, p))
        ev.sort(key=lambda x: (x[0], x[1]))
        return ev

    def _skip_to(self, t: float) -> None:
        """Start later than the scenario start: apply earlier events as initial state, no metrics."""
        self.t = t
        self.last_limit_write = t
        self.next_sample = self.t0 + math.ceil((t - self.t0) / 60.0) * 60

    def in_peak(self) -> bool:
        """Whether the world's time is in a peak window of the meter's tariff calendar (`peak`
        on weekdays, `peak_weekend` on the weekend days and holidays: firmware/scheduler.py)."""
        c = self.cfg
        if "_win" not in c:     # a config the firmware refuses: its weekday windows
            return in_windows(self.t, self.peaks, self.tz)
        loc = int(self.t) - EPOCH_2000 + self.tz * 60      # local s since 2000, the meter's
        return _fw_scheduler.is_peak(loc // 60 % 1440,
                                     _fw_scheduler.day_windows(loc // 86400, c))

    def _apply(self, kind: str, data) -> None:
        was = self.em_on()
        self._apply1(kind, data)
        self._choice_tick()
        if was and not self.em_on():
            self.em_off_t = self.t
        self._react_check()

    def _apply1(self, kind: str, data) -> None:
        if kind == "house":
            self.house_base_w = data
        elif kind == "plug":
            self.plugged = True
            self.soc = float(data.get("soc", 50))
            for k in _CAR_KEYS:     # this car's own figures, else the scenario's car
                setattr(self, k, float(data[k]) if k in data else self.car_model[k])
            self.session_wh = 0.0
            if self.soc_start is None:
                self.soc_start = self.soc
            self.sessions.append({"plug_t": int(self.t), "soc_start": round(self.soc, 2)})
        elif kind == "unplug":
            self.plugged = False
            self.emergency = False          # control.py: emergency charging ends on unplug
            if self.sessions and "unplug_t" not in self.sessions[-1]:
                self.sessions[-1].update(unplug_t=int(self.t), soc_end=round(self.soc, 2),
                                         wh=round(self.session_wh, 1))
        elif kind == "use":
            self.use[data[0]] = data[1]
        elif kind == "fault":
            self.set_fault(*data)
        elif kind == "cmd":
            self.command(*data)

    def command(self, cmd: str, p: str) -> bool:
        """A cloud command with payload text p, put through the firmware's own netpie.apply() on
        a State holding the world's settings; a command apply() rejects changes nothing. ->
        accepted."""
        if cmd not in WORLD_CMDS:
            return False
        st = self._st
        st.now = int(self.t) if self.clock_ok() else 0     # apply(): a DR needs the clock
        st.emergency, st.choice, st.target_min = self.emergency, self.choice, self.target_min
        st.dr_limit_w, st.dr_until = self.dr_limit_w, self.dr_until
        if _fw_netpie.apply(st, self.cfg, cmd, p) is not None:
            return False
        if st.choice != self.choice:        # control.py: a new choice gets a new end
            self.choice_until = None
        self.emergency, self.choice, self.target_min = st.emergency, st.choice, st.target_min
        self.dr_limit_w, self.dr_until = st.dr_limit_w, st.dr_until
        return True

    def clock_ok(self) -> bool:
        return self.t >= self.clock_from

    def _choice_tick(self) -> None:
        """control.py: a choice lasts until the departure (target) it was made for, fixed when
        the clock is first valid; with no departure set it reverts to accept at once."""
        if not self.choice or not self.clock_ok():
            return
        now = int(self.t)
        if self.choice_until is None and self.target_min >= 0:
            loc = now + self.tz * 60
            end = loc - loc % 86400 + self.target_min * 60
            self.choice_until = (end if end >= loc else end + 86400) - self.tz * 60
        if self.choice_until is None or now >= self.choice_until:
            self.choice = 0

    def set_fault(self, dev: str, kind: str, seconds: float) -> None:
        if kind == "ok":
            for k in FAULT_KINDS:
                self.faults.pop((dev, k), None)
        else:
            self.faults[(dev, kind)] = self.t + seconds

    def fault(self, dev: str, kind: str, t: float) -> bool:
        return self.faults.get((dev, kind), -1.0) > t

    # ---------------------------------------------------------------- dynamics
    def load_w(self) -> float:
        """Configured loads drawing now: in use and relay closed (pin missing = closed)."""
        w = 0.0
        for name, pin, rated in self.loads:
            if self.use.get(name) and self.relays.get(pin, 1):
                w += rated
        return w

    def house_w(self) -> float:
        return self.house_base_w + self.load_w()

    def limit_w(self) -> int:
        """The applicable limit (control.py): the breaker limit while emergency charging is on,
        else the sanctioned load; a DR event's limit only ever lowers it."""
        lim = self.breaker_w if self.em() else self.sanctioned_w
        return min(lim, self.dr_limit_w) if self.t < self.dr_until else lim

    EM_GRACE_S = 10.0

    def em_on(self) -> bool:
        """Emergency charging as the meter has it: the emergency switch or choice emergency."""
        return self.emergency or self.choice == 2

    def em(self) -> bool:
        """Emergency charging in force for the metrics. Its end reaches the meter through the
        cloud (or its next tick) and the charger follows after its delay: EM_GRACE_S longer."""
        return self.em_on() or self.t < self.em_off_t + self.EM_GRACE_S

    def _react_check(self) -> None:
        """After a house/limit change: if the charger's commanded current no longer fits under
        the limit, start timing the meter's reaction (ended by charger_write)."""
        if self.react_t is None and self.plugged and self.reg_limit >= 6 and (
                self.house_w() + self.reg_limit * self.nominal_v * self.phases > self.limit_w()):
            self.react_t = self.t

    def _ev_current(self) -> float:
        if not self.plugged or self.turnoff or self.applied_a < 6 or self.soc >= 100.0:
            return 0.0
        a = min(float(self.applied_a), float(self.cable_a), self.onboard_a)
        if self.soc > self.taper_soc:
            f = 1.0 - (1.0 - self.taper_floor) * (self.soc - self.taper_soc) / (100.0 - self.taper_soc)
            a = min(a, self.onboard_a * f)
        if self.noise_a and a > 0:
            # a real car's draw wanders: a new offset every simulated second, never above the
            # current the charger offers
            n = random.Random(self.noise_seed * 1000003 + int(self.t)).uniform(
                -self.noise_a, self.noise_a)
            a = min(a + n, float(self.applied_a))
        return max(a, 0.0)

    def delay(self) -> float:
        return self.delay_s if self.follow_s is None else self.follow_s

    def _timeout_due(self) -> float:
        if self.timeout_s and not self.fallback:
            return self.last_limit_write + self.timeout_s
        return math.inf

    def _next_due(self) -> float:
        d = self.next_sample
        if self.ev_i < len(self.events):
            d = min(d, self.events[self.ev_i][0])
        if self.pending:
            d = min(d, self.pending[1])
        if self.dr_until > self.t:
            d = min(d, self.dr_until)
        if self.choice:                     # the choice's end, or when it can get one
            for c in (self.choice_until, self.clock_from):
                if c is not None and self.t < c < math.inf:
                    d = min(d, c)
        return min(d, self._timeout_due())

    def _apply_due(self) -> None:
        t = self.t
        while self.ev_i < len(self.events) and self.events[self.ev_i][0] <= t:
            _, _, kind, data = self.events[self.ev_i]
            self.ev_i += 1
            self._apply(kind, data)
        if self.choice:
            self._apply("tick", None)       # the choice may end now
        if self.pending and self.pending[1] <= t:
            if self.applied_a != self.pending[0]:
                self.counts["limit_changes"] += 1
            self.applied_a = self.pending[0]
            self.pending = None
        if self._timeout_due() <= t:
            self.fallback = True
            self.counts["fallbacks"] += 1
            self.reg_limit = self.safe_a
            self.applied_a = self.safe_a
            self.pending = None
        self._update_ev()
        while self.next_sample <= t:
            self.series.append([int(self.next_sample), round(self.house_w()), round(self.ev_w),
                                self.limit_w(), round(self.soc, 2) if self.soc >= 0 else -1,
                                round(self.ev_a, 1)])
            self.next_sample += 60

    def _update_ev(self) -> None:
        self.ev_a = self._ev_current()
        self.ev_w = self.ev_a * self.voltage * self.phases

    def advance(self, t: float) -> None:
        """Integrate the world up to simulated UTC second t (sub-steps of at most 1 s)."""
        while self.t < t:
            end = min(t, self.t + 1.0, self._next_due())
            if end <= self.t:                      # guard against a stuck due time
                end = min(t, self.t + 1e-3)
            self._integrate(end - self.t)
            self.t = end
            self._apply_due()

    def _integrate(self, dt: float) -> None:
        self._update_ev()
        house = self.house_w()
        ev = self.ev_w
        total = house + ev
        h = dt / 3600.0
        if total > self.max_total_w:
            self.max_total_w = total
        lim = self.limit_w()
        if total > lim:
            if self._over_from is None:
                self._over_from = self.t
                self.over_log.append([round(self.t, 3), 0.0])
            self.over_log[-1][1] = round(self.t + dt - self._over_from, 3)
            if len(self.over_log) > 2000:
                del self.over_log[0]
            self.over_limit_s += dt
            self.over_limit_wh += (total - lim) * h
            if self.em():
                self.over_limit_em_s += dt
        else:
            self._over_from = None
        if total > self.breaker_w:
            self.over_breaker_s += dt
        self.total_energy_wh += total * h
        self.pzem_energy_wh = (self.pzem_energy_wh + total * h) % ENERGY_WRAP_WH
        if ev > 0:
            self.ev_energy_reg_wh = (self.ev_energy_reg_wh + ev * h) % ENERGY_WRAP_WH
            self.ev_energy_wh += ev * h
            self.session_wh += ev * h
            if not self.em() and self.in_peak():
                self.ev_energy_peak_wh += ev * h
            self.soc = min(100.0, self.soc + ev * self.efficiency * h / self.capacity_wh * 100.0)
        # supply voltage sags a little with load: nominal + 2 V at no load, -0.4 V per kW
        self.voltage = self.nominal_v + 2.0 - 0.4 * total / 1000.0

    def vehicle_state(self) -> int:
        if not self.plugged:
            return 1                     # A
        return 3 if self.ev_w > 0 else 2  # C charging, B connected

    # ---------------------------------------------------------------- register view
    def pzem_input(self) -> list:
        self.counts["pzem_reads"] += 1
        total = self.house_w() + self.ev_w
        v = self.voltage
        house = self.house_w()
        pf = 1.0 if total <= 0 else (house * self.pf_house + self.ev_w * 0.99) / total
        cur_ma = int(round(total / (v * pf) * 1000)) if total > 0 else 0
        p_dw = int(round(total * 10))
        e = int(self.pzem_energy_wh)
        alarm = 0xFFFF if total > self.pzem_threshold_w else 0
        return [int(round(v * 10)), cur_ma & 0xFFFF, cur_ma >> 16, p_dw & 0xFFFF, p_dw >> 16,
                e & 0xFFFF, e >> 16, 500, int(round(pf * 100)) if total > 0 else 0, alarm]

    def pzem_ev_input(self) -> list:
        """The second PZEM, on the EV circuit only (config pzem.ev_addr)."""
        self.counts["pzem_ev_reads"] = self.counts.get("pzem_ev_reads", 0) + 1
        v = self.voltage
        cur_ma = int(round(self.ev_w / (v * 0.99) * 1000)) if self.ev_w > 0 else 0
        p_dw = int(round(self.ev_w * 10))
        e = int(self.ev_energy_reg_wh)
        return [int(round(v * 10)), cur_ma & 0xFFFF, cur_ma >> 16, p_dw & 0xFFFF, p_dw >> 16,
                e & 0xFFFF, e >> 16, 500, 99 if self.ev_w > 0 else 0, 0]

    def pzem_holding(self, reg: int) -> int:
        return self.pzem_threshold_w if reg == 1 else self.pzem_addr if reg == 2 else 0

    def pzem_write(self, reg: int, value: int):
        """-> None (ok) or Modbus exception code."""
        if reg == 1:
            self.pzem_threshold_w = value
            return None
        if reg == 2:
            if not 1 <= value <= 0xF7 or value == self.charger_addr:
                return 3
            self.pzem_addr = value
            return None
        return 2

    def pzem_reset(self) -> None:
        self.counts["pzem_resets"] += 1
        self.pzem_energy_wh = 0.0

    def charger_regs(self) -> dict:
        self.counts["charger_reads"] += 1
        evse_state = 3 if self.turnoff else (2 if self.applied_a >= 6 else 1)
        regs = {1000: self.reg_limit, 1001: self.applied_a if self.plugged else 0,
                1002: self.vehicle_state(), 1003: self.cable_a if self.plugged else 0,
                1004: self.turnoff, 1005: self.fw_version, 1006: evse_state}
        if not self.no_ext:
            wh = int(self.session_wh)
            regs.update({3000: EXT_ID,
                         3001: int(self.soc) if self.plugged and self.soc >= 0 else 0xFFFF,
                         3002: int(round(self.ev_w)), 3003: wh & 0xFFFF, 3004: wh >> 16 & 0xFFFF,
                         3005: self.timeout_s, 3006: self.safe_a})
        return regs

    def charger_write(self, reg: int, values: list):
        """-> None (ok) or Modbus exception code (2 illegal address / read-only, 3 bad value)."""
        self.counts["charger_writes"] += 1
        for i, v in enumerate(values):
            r = reg + i
            if r >= 3000 and self.no_ext:
                return 2
            if r == 1000:
                if v > self.max_reg_a:
                    return 3
            elif r == 1004:
                if v > 1:
                    return 3
            elif r == 3005:
                if v > 3600:
                    return 3
            elif r == 3006:
                if v > self.max_reg_a:
                    return 3
            else:
                return 2
        for i, v in enumerate(values):
            r = reg + i
            if r == 1000:
                if self.react_t is not None and (
                        v < 6 or self.house_w() + v * self.nominal_v * self.phases
                        <= self.limit_w()):
                    self.reactions.append(round(self.t - self.react_t, 3))
                    self.react_t = None
                self.writes.append([round(self.t, 3), v, round(self.ev_a, 1)])
                if len(self.writes) > 4000:
                    del self.writes[0]
                self.reg_limit = v
                self.last_limit_write = self.t
                self.fallback = False
                self.pending = (v if v >= 6 else 0, self.t + self.delay())
            elif r == 1004:
                self.turnoff = v
            elif r == 3005:
                self.timeout_s = v
                self.last_limit_write = self.t
                self.fallback = False
            elif r == 3006:
                self.safe_a = v if v >= 6 else 0
        return None

    # ---------------------------------------------------------------- metrics
    def metrics(self) -> dict:
        return {
            "t": int(self.t),
            "t0": int(self.t0),
            "hours": round((self.t - self.t0) / 3600.0, 4),
            "sanctioned_w": self.sanctioned_w,
            "limit_w": self.limit_w(),
            "house_w": round(self.house_w()),
            "ev_w": round(self.ev_w),
            "total_w": round(self.house_w() + self.ev_w),
            "max_total_w": round(self.max_total_w),
            "over_limit_s": round(self.over_limit_s, 1),
            "over_limit_wh": round(self.over_limit_wh, 2),
            "over_limit_em_s": round(self.over_limit_em_s, 1),
            "over_breaker_s": round(self.over_breaker_s, 1),
            "reactions_s": self.reactions[-500:],
            "writes": self.writes,
            "over_log": self.over_log,
            "ev_energy_wh": round(self.ev_energy_wh, 1),
            "ev_energy_peak_wh": round(self.ev_energy_peak_wh, 1),
            "total_energy_wh": round(self.total_energy_wh, 1),
            "soc_start": None if self.soc_start is None else round(self.soc_start, 2),
            "soc_end": None if self.soc < 0 else round(self.soc, 2),
            "plugged": self.plugged,
            "vehicle_state": "?ABCDE"[self.vehicle_state()],
            "charger_limit_a": self.reg_limit,
            "charger_applied_a": self.applied_a,
            "emergency": self.emergency,
            "choice": _fw_state.CHOICES[self.choice],
            "pzem_addr": self.pzem_addr,
            "sessions": self.sessions,
            "counts": self.counts,
            "series_fields": list(SERIES_FIELDS),
            "series": self.series,
        }
