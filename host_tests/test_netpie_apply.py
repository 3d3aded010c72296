"""netpie.apply(): the command table, strict validation, a garbage fuzz; and the Cloud's
telemetry composition and own-echo rule driven without a broker (CPython, fake socket)."""
import json
import os
import sys

import pytest
from hypothesis import given, settings, strategies as hs

from conftest import FIRMWARE

import netpie
import scheduler
import state as S

with open(os.path.join(FIRMWARE, "config.json.example")) as f:
    CFG = json.load(f)
NOW = 1_795_600_000


def new_state(now=NOW):
    st = S.State(len(CFG["loads"]))
    st.now = now
    st.loads[:] = b"\x01\x01\x01"
    st.error = "old"
    st.dirty = False
    return st


def snap(st):
    d = dict(vars(st))
    d["loads"] = bytes(st.loads)
    return d


TRIP120 = scheduler.trip_need_pct(120, 170, 10, 60000)

# (name, payload, {attr: expected}) for accepted commands
GOOD = [
    ("target", "07:30", {"target_min": 450}),
    ("target", "7:30", {"target_min": 450}),
    ("target", " 23:59 ", {"target_min": 1439}),
    ("target", "0", {"target_min": 0}),
    ("target", "1439", {"target_min": 1439}),
    ("target", 450, {"target_min": 450}),
    ("target", "", {"target_min": -1}),
    ("target", "-1", {"target_min": -1}),
    ("target", "off", {"target_min": -1}),
    ("target", b"06:05", {"target_min": 365}),
    ("emergency", "on", {"emergency": True}),
    ("emergency", "ON", {"emergency": True}),
    ("emergency", "true", {"emergency": True}),
    ("emergency", True, {"emergency": True}),
    ("emergency", "1", {"emergency": True}),
    ("emergency", 1, {"emergency": True}),
    ("emergency", "off", {"emergency": False}),
    ("emergency", False, {"emergency": False}),
    ("emergency", "0", {"emergency": False}),
    ("load/ac", "off", {"loads": b"\x00\x01\x01"}),
    ("load/heater", "false", {"loads": b"\x01\x00\x01"}),
    ("load/fridge", 0, {"loads": b"\x01\x01\x00"}),
    ("load/ac", "on", {"loads": b"\x01\x01\x01"}),
    ("choice", "accept", {"choice": 0}),
    ("choice", "shed", {"choice": 1}),
    ("choice", "Emergency", {"choice": 2}),
    ("trip", "120", {"trip_soc_pct": TRIP120}),
    ("trip", 120, {"trip_soc_pct": TRIP120}),
    ("trip", "119.2", {"trip_soc_pct": TRIP120}),
    ("trip", "55%", {"trip_soc_pct": 55}),
    ("trip", "100%", {"trip_soc_pct": 100}),
    ("trip", "0", {"trip_soc_pct": 0}),
    ("trip", "0%", {"trip_soc_pct": 0}),
    ("trip", "2000", {"trip_soc_pct": 100}),
    ("dr", '{"limit_w":3000,"minutes":30}', {"dr_limit_w": 3000, "dr_until": NOW + 1800}),
    ("dr", {"limit_w": 2500, "minutes": 1440}, {"dr_limit_w": 2500, "dr_until": NOW + 86400}),
    ("dr", '{"limit_w":0,"minutes":30}', {"dr_limit_w": 0, "dr_until": 0}),
    ("dr", '{"minutes":0,"limit_w":3000}', {"dr_limit_w": 0, "dr_until": 0}),
    ("reset_ev_soc", "40", {"start_soc_pct": 40}),
    ("reset_ev_soc", 0, {"start_soc_pct": 0}),
    ("reset_ev_soc", "100", {"start_soc_pct": 100}),
]

# (name, payload, error text) for rejected commands
BAD = [
    ("target", "24:00", "target: want HH:MM, 0-1439 or -1"),
    ("target", "07:60", "target: want HH:MM, 0-1439 or -1"),
    ("target", "07:3", "target: want HH:MM, 0-1439 or -1"),
    ("target", "007:30", "target: want HH:MM, 0-1439 or -1"),
    ("target", "1440", "target: want HH:MM, 0-1439 or -1"),
    ("target", "-2", "target: want HH:MM, 0-1439 or -1"),
    ("target", "7.5", "target: want HH:MM, 0-1439 or -1"),
    ("target", 450.0, "target: want HH:MM, 0-1439 or -1"),
    ("target", True, "target: want HH:MM, 0-1439 or -1"),
    ("target", "07:30:00", "target: want HH:MM, 0-1439 or -1"),
    ("target", "+450", "target: want HH:MM, 0-1439 or -1"),
    ("target", "0" * 129, "target: too long"),
    ("target", b"1" * 200, "target: too long"),
    ("emergency", "yes", "emergency: want on or off"),
    ("emergency", 2, "emergency: want on or off"),
    ("emergency", None, "emergency: want on or off"),
    ("load/ac", "maybe", "load/ac: want on or off"),
    ("load/garage", "on", "load/garage: no such load"),
    ("load/", "on", "load/: no such load"),
    ("choice", "2", "choice: want accept, shed or emergency"),
    ("choice", "", "choice: want accept, shed or emergency"),
    ("trip", "2001", "trip: want km 0-2000 or 0-100%"),
    ("trip", "-5", "trip: want km 0-2000 or 0-100%"),
    ("trip", "101%", "trip: want km 0-2000 or 0-100%"),
    ("trip", "nan", "trip: want km 0-2000 or 0-100%"),
    ("trip", "inf", "trip: want km 0-2000 or 0-100%"),
    ("trip", "%", "trip: want km 0-2000 or 0-100%"),
    ("trip", "abc", "trip: want km 0-2000 or 0-100%"),
    ("dr", '{"limit_w":3000}', 'dr: want {"limit_w":0-200000,"minutes":0-1440}'),
    ("dr", '{"limit_w":"3000","minutes":30}', 'dr: want {"limit_w":0-200000,"minutes":0-1440}'),
    ("dr", '{"limit_w":true,"minutes":30}', 'dr: want {"limit_w":0-200000,"minutes":0-1440}'),
    ("dr", '{"limit_w":3000,"minutes":1441}', 'dr: want {"limit_w":0-200000,"minutes":0-1440}'),
    ("dr", '{"limit_w":-1,"minutes":30}', 'dr: want {"limit_w":0-200000,"minutes":0-1440}'),
    ("dr", '{"limit_w":3000,"minutes":30,"x":1}',
     'dr: want {"limit_w":0-200000,"minutes":0-1440}'),
    ("dr", "[3000,30]", 'dr: want {"limit_w":0-200000,"minutes":0-1440}'),
    ("dr", "3000", 'dr: want {"limit_w":0-200000,"minutes":0-1440}'),
    ("dr", "{", 'dr: want {"limit_w":0-200000,"minutes":0-1440}'),
    # MicroPython's json.loads takes these; the meter must not
    ("dr", '{"limit_w":3000 "minutes":30}', 'dr: want {"limit_w":0-200000,"minutes":0-1440}'),
    ("dr", '{"limit_w":3000,"minutes":30}}', 'dr: want {"limit_w":0-200000,"minutes":0-1440}'),
    ("dr", '{"limit_w":3000,"minutes":30} x', 'dr: want {"limit_w":0-200000,"minutes":0-1440}'),
    ("reset_ev_soc", "101", "reset_ev_soc: want 0-100"),
    ("reset_ev_soc", "-1", "reset_ev_soc: want 0-100"),
    ("reset_ev_soc", "4.5", "reset_ev_soc: want 0-100"),
    ("reset_ev_soc", "", "reset_ev_soc: want 0-100"),
    ("reboot", "1", "reboot: unknown command"),
    ("", "1", ": unknown command"),
    ("load", "on", "load: unknown command"),
]


@pytest.mark.parametrize("name,payload,want", GOOD)
def test_accepted(name, payload, want):
    st = new_state()
    before = snap(st)
    assert netpie.apply(st, CFG, name, payload) is None
    after = snap(st)
    assert st.error == "" and st.dirty is True
    for k, v in want.items():
        assert after[k] == v, k
    for k in before:
        if k not in want and k not in ("error", "dirty"):
            assert after[k] == before[k], k


@pytest.mark.parametrize("name,payload,err", BAD)
def test_rejected(name, payload, err):
    st = new_state()
    before = snap(st)
    assert netpie.apply(st, CFG, name, payload) == err
    assert st.error == err and st.dirty is True
    after = snap(st)
    for k in before:
        if k not in ("error", "dirty"):
            assert after[k] == before[k], k


def test_dr_needs_valid_clock():
    st = new_state(now=0)
    assert netpie.apply(st, CFG, "dr", '{"limit_w":3000,"minutes":30}') == "dr: clock not set"
    assert st.dr_limit_w == 0 and st.dr_until == 0
    st.dr_limit_w, st.dr_until = 3000, 99   # cancelling works without a clock
    assert netpie.apply(st, CFG, "dr", '{"limit_w":0,"minutes":0}') is None
    assert st.dr_limit_w == 0 and st.dr_until == 0


def test_error_kept_until_next_valid_command():
    st = new_state()
    netpie.apply(st, CFG, "target", "25:00")
    assert st.error.startswith("target:")
    netpie.apply(st, CFG, "emergency", "sometimes")
    assert st.error.startswith("emergency:")
    netpie.apply(st, CFG, "choice", "shed")
    assert st.error == ""


NAMES = ["target", "emergency", "choice", "trip", "dr", "reset_ev_soc", "load/ac",
         "load/fridge", "load/nope", "load/", "x", "@", "target/x"]
json_vals = hs.recursive(
    hs.none() | hs.booleans() | hs.integers() | hs.floats() | hs.text(max_size=40),
    lambda c: hs.lists(c, max_size=4) | hs.dictionaries(hs.text(max_size=8), c, max_size=4),
    max_leaves=8)
payloads = hs.one_of(hs.text(max_size=200), hs.binary(max_size=200), json_vals,
                     hs.sampled_from(["07:30", "on", "off", "shed", "55%", "120", "1e3",
                                      '{"limit_w":1,"minutes":1}', "\x00", "\udcff", "ｏｎ",
                                      "١٢٠", "12_0", " 1", "0x10"]))


@settings(max_examples=1500, deadline=None)
@given(name=hs.one_of(hs.sampled_from(NAMES), hs.text(max_size=30)), p=payloads)
def test_fuzz_never_raises_and_rejects_cleanly(name, p):
    st = new_state()
    before = snap(st)
    r = netpie.apply(st, CFG, name, p)
    assert st.dirty is True
    if r is None:
        assert st.error == ""
        return
    assert isinstance(r, str) and r == st.error and ": " in r and len(r) < 80
    after = snap(st)
    for k in before:
        if k not in ("error", "dirty"):
            assert after[k] == before[k], k


@settings(max_examples=1200, deadline=None)
@given(name=hs.sampled_from(NAMES), junk=hs.text(min_size=1, max_size=150))
def test_fuzz_garbage_always_rejected(name, junk):
    st = new_state()
    before = snap(st)
    p = "#" + junk      # no command accepts a leading '#'
    r = netpie.apply(st, CFG, name, p)
    assert r and st.error == r and r.startswith(name[:24] + ": ")
    after = snap(st)
    for k in before:
        if k not in ("error", "dirty"):
            assert after[k] == before[k], k


# ---- Cloud without a broker: telemetry and the own-echo rule ----
class FakeSock:
    def __init__(self, rx=b""):
        self.out = bytearray()
        self.rx = bytearray(rx)

    def write(self, b, n=None):
        b = b.encode() if isinstance(b, str) else bytes(b)
        self.out += b if n is None else b[:n]

    def read(self, n):
        d = bytes(self.rx[:n])
        del self.rx[:n]
        return d or None

    def readinto(self, mv):
        n = min(len(mv), len(self.rx))
        mv[:n] = self.rx[:n]
        del self.rx[:n]
        return n

    def settimeout(self, t):
        self.to = t

    def close(self):
        pass


class FakeMQTTException(Exception):
    pass


class FakeClient:
    """What Cloud uses of umqtt.simple's MQTTClient: connect() (its socket is a FakeSock)."""
    refuse = 0
    made = []

    def __init__(self, client_id, server, port=0, user=None, password=None, keepalive=0):
        self.args = (client_id, server, port, user, password, keepalive)
        self.server = server            # umqtt.simple resolves it in connect()
        self.sock = None
        FakeClient.made.append(self)

    unreachable = 0             # connects that fail with OSError (no broker) before one works

    def connect(self, clean_session=True, timeout=None):
        self.sock = FakeSock()
        self.timeout = timeout
        if FakeClient.unreachable:
            FakeClient.unreachable -= 1
            raise OSError(113)
        if self.refuse:
            raise FakeMQTTException(self.refuse)


def fake_umqtt(monkeypatch):
    """netpie imports umqtt.simple for each connect (netpie.umqtt): hand it the fake client.
    Returns the list of clients made."""
    import types
    FakeClient.made = []
    monkeypatch.setattr(netpie, "umqtt", lambda: types.SimpleNamespace(
        MQTTClient=FakeClient, MQTTException=FakeMQTTException))
    return FakeClient.made


def published(sock):
    """The PUBLISH packets (topic str, payload bytes) Cloud wrote to the socket, in order;
    SUBSCRIBE and PINGREQ are checked for their form and skipped."""
    out = bytes(sock.out)
    pubs = []
    i = 0
    while i < len(out):
        x = out[i]
        n = sh = 0
        i += 1
        while True:
            c = out[i]
            i += 1
            n |= (c & 0x7F) << sh
            sh += 7
            if not c & 0x80:
                break
        p = out[i:i + n]
        assert len(p) == n, "packet cut short"
        i += n
        if x == 0x30:                   # qos 0, no retain, no dup
            k = p[0] << 8 | p[1]
            pubs.append((p[2:2 + k].decode(), p[2 + k:]))
        else:
            assert x in (0x82, 0xC0), hex(x)
    return pubs


class FakePoll:
    def register(self, s, ev):
        self.s = s

    def poll(self, t):
        return [1] if self.s.rx else []


class Board:
    def wifi_ok(self):
        return True


def body(topic, obj):
    """(topic, payload) as umqtt.simple hands them to the callback."""
    p = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return topic.encode(), p


def packet(topic, obj):
    """A qos-0 PUBLISH as the broker sends it."""
    t, p = body(topic, obj)
    n = 2 + len(t) + len(p)
    rl = bytearray()
    while True:
        rl.append(n & 0x7F | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            break
    return bytes((0x30,)) + bytes(rl) + bytes((len(t) >> 8, len(t) & 0xFF)) + t + p


def cloud():
    st = new_state()
    st.error = ""
    c = netpie.Cloud(CFG, st, Board())
    c.s = FakeSock()
    c.ph = 4
    return c, st


def send(c):
    """One telemetry write as the Cloud would do it -> data dict (None if nothing changed)."""
    b = bytearray(1152)
    n = c._tele(b)
    if n <= 10:
        return None
    return json.loads(bytes(b[:n]))["data"]


def test_telemetry_fields_and_deltas():
    import meter
    c, st = cloud()
    st.power_w, st.ev_power_w, st.limit_w = 5200, 4000, 5000
    st.counters = meter.new()
    st.counters[meter.C_DAY_OFF] = 1200
    st.counters[meter.C_MON_PEAK] = 700
    st.counters[meter.C_DAY_EV] = 900
    st.ev_state, st.ev_soc_pct, st.target_min = 3, 55, 450
    # distinct values, so that a member taken from the wrong place shows
    st.plan = (True, NOW + 3600, 240, 91, 95, NOW + 3000, 99, NOW + 1200, 12.345, 5)
    st.advice = 0b011
    st.faults = S.F_CLOCK | S.F_AUTH
    st.loads[1] = 0
    d = send(c)
    assert d["power_w"] == 5200 and d["house_w"] == 1200 and d["ev_w"] == 4000
    assert d["energy_today_wh"] == {"offpeak": 1200, "peak": 0, "emergency": 0, "ev": 900}
    assert d["energy_month_wh"]["peak"] == 700
    assert d["bill_today"] == round(1200 * 23.0 / 1000, 2)
    assert d["ev_state"] == "C" and d["target"] == "07:30" and d["choice"] == "accept"
    tz = CFG["tz_offset_min"] * 60
    hm = lambda t: "%02d:%02d" % ((t + tz) // 60 % 1440 // 60, (t + tz) // 60 % 60)  # noqa
    assert d["plan"] == {"feasible": True, "full_at": hm(NOW + 3600), "charge_minutes": 240,
                         "reachable_soc_pct": 91,
                         "shed": {"soc_pct": 95, "full_at": hm(NOW + 3000)},
                         "emergency": {"soc_pct": 99, "full_at": hm(NOW + 1200),
                                       "extra_cost": 12.35 if "%.2f" % 12.345 == "12.35"
                                       else 12.34},
                         "trip_ok": {"accept": True, "shed": False, "emergency": True}}
    assert d["advice"] == ["ac", "heater"] and d["advice_w"] == 2500
    assert d["loads"] == {"ac": "on", "heater": "off", "fridge": "on"}
    assert d["faults"] == ["clock", "auth"] and d["error"] == "" and d["emergency"] is False
    assert len(json.dumps({"data": d})) < 1024, "a full write must stay one 1 KB shadow op"
    assert send(c) is None      # nothing changed: nothing to send
    st.power_w = 5300
    assert send(c) == {"power_w": 5300, "house_w": 1300}
    st.plan = None
    st.counters = None
    assert send(c) == {"plan": None}


@pytest.mark.parametrize("advice", [0, 0b001, 0b010, 0b100, 0b110, 0b111])
@pytest.mark.parametrize("faults", [0, S.F_PZEM, S.F_EVSE | S.F_CLOUD, S.F_AUTH, 0x3F])
def test_fields_in_pieces_join_to_the_same_json(advice, faults):
    # advice, loads and faults go out an entry a piece (commas only between entries written)
    c, st = cloud()
    st.advice, st.faults = advice, faults
    st.loads[0] = advice & 1
    d = send(c)
    names = [ld["name"] for ld in CFG["loads"]]
    assert d["advice"] == [n for j, n in enumerate(names) if advice >> j & 1]
    assert d["advice_w"] == sum(ld["rated_w"] for j, ld in enumerate(CFG["loads"])
                                if advice >> j & 1)
    assert d["faults"] == [n for j, n in enumerate(S.FAULT_NAMES) if faults >> j & 1]
    assert d["loads"] == {n: ("on" if st.loads[j] else "off") for j, n in enumerate(names)}


@pytest.mark.parametrize("error", ["", "x" * 19, "y" * 20, "z" * 21, 'load "ac": \\ bad\n' * 4,
                                   "caf\u00e9 " * 9, "\u00e9" * 20 + '"'])
def test_the_error_goes_out_in_pieces_as_one_json_string(error):
    c, st = cloud()
    st.error = error
    assert send(c)["error"] == error
    st.error = error + "!"
    assert send(c) == {"error": error + "!"}


def test_no_loads_configured_gives_empty_advice_and_loads():
    cfg = dict(CFG, loads=[])
    st = S.State(0)
    st.error = ""
    c = netpie.Cloud(cfg, st, Board())
    d = send(c)
    assert d["advice"] == [] and d["loads"] == {} and d["advice_w"] == 0


def test_a_silent_supply_meter_shows_no_stale_power():
    # while the PZEM is silent (3 missed readings: F_PZEM) the last total is not today's:
    # power_w and house_w go out as null (the shadow drops them), the first reading after
    # comes at once, even a small move from the figure shown before
    c, st = cloud()
    st.power_w, st.ev_power_w = 4910, 3910
    send(c)
    c.sd = 0                    # between the once-a-minute writes: the deadband is in force
    st.power_w = 4950
    assert send(c) is None      # 40 W of noise: not sent on its own
    st.power_w = 4910
    st.faults = S.F_PZEM
    st.ev_power_w = 0           # the EV is paused meanwhile
    d = send(c)
    assert d["power_w"] is None and d["house_w"] is None and d["ev_w"] == 0
    assert d["faults"] == ["pzem"]
    assert send(c) is None      # nothing new while it stays silent
    st.faults = 0
    st.power_w = 4950           # within the deadband of the 4910 shown before the fault
    d = send(c)
    assert d["power_w"] == 4950 and d["house_w"] == 4950 and d["faults"] == []


def test_own_echo_never_undoes_a_newer_command():
    c, st = cloud()
    st.target_min = 450
    send(c)                                        # device publishes target 07:30
    netpie.apply(st, CFG, "target", "08:00")       # then a publishMsg command arrives
    c._msg(*body("@shadow/data/updated", {"data": {"target": "07:30", "power_w": 1}}))
    assert st.target_min == 480                    # echo of the old value: ignored
    assert send(c)["target"] == "08:00"
    # a stale echo of an even older value arriving late (before ours): still ignored
    c._msg(*body("@shadow/data/updated", {"data": {"target": "06:00"}}))
    assert st.target_min == 480
    c._msg(*body("@shadow/data/updated", {"data": {"target": "08:00"}}))  # our echo
    assert c.uc == 6
    c._msg(*body("@shadow/data/updated", {"data": {"emergency": False, "choice": "accept"}}))
    assert c.uc == 0
    # now a dashboard writeShadow wins, and the device does not write it back
    c._msg(*body("@shadow/data/updated", {"data": {"target": "09:15"}}))
    assert st.target_min == 555 and st.error == ""
    assert "target" not in (send(c) or {})
    # a value in another accepted form is taken and written back in the device's form
    c._msg(*body("@shadow/data/updated", {"data": {"target": 600, "emergency": "on"}}))
    assert st.target_min == 600 and st.emergency is True
    assert send(c) == {"target": "10:00", "emergency": True}


def test_echo_does_not_clear_error_and_bad_shadow_value_is_rewritten():
    c, st = cloud()
    st.emergency = True
    send(c)
    c._msg(*body("@shadow/data/updated", {"data": {"emergency": True}}))
    netpie.apply(st, CFG, "trip", "9999")
    err = st.error
    c._msg(*body("@shadow/data/updated", {"data": {"emergency": True, "choice": "accept"}}))
    assert st.error == err          # own echo is not a command
    c._msg(*body("@shadow/data/updated", {"data": {"choice": "sometimes"}}))
    assert st.error == "choice: want accept, shed or emergency" and st.choice == 0
    assert send(c)["choice"] == "accept"     # device overwrites the bad value


def test_boot_restore_and_one_shot_commands_are_nulled():
    c, st = cloud()
    st.target_min = -1
    c.ph = 3
    c._msg(*body("@private/shadow/data/get/response",
                {"deviceid": "x", "rev": 9, "modified": 1, "data": {
                    "target": "06:15", "emergency": True, "choice": "shed", "power_w": 99,
                    "load": {"heater": "off"}, "reset_ev_soc": 35, "dr": None}}))
    assert c.ph == 4
    assert (st.target_min, st.emergency, st.choice, st.loads[1], st.start_soc_pct) == (
        375, True, 1, 0, 35)
    d = send(c)
    assert d["load"] is None and d["reset_ev_soc"] is None and "dr" not in d
    assert "target" not in d and "emergency" not in d   # the shadow holds them already


def test_reconnect_get_ignores_unconfirmed_settings():
    c, st = cloud()
    st.choice = 2
    send(c)                 # published, echo never seen (connection died)
    assert c.uc & 4
    for i in range(netpie._N):  # what the CONNACK path does
        if i > 2 or c.uc >> i & 1:
            c.h[i] = -1
    c.ph = 3
    c._msg(*body("@private/shadow/data/get/response", {"data": {"choice": "accept"}}))
    assert st.choice == 2   # stale shadow value does not undo the unsent command
    assert send(c)["choice"] == "emergency"


def test_msg_topic_and_garbage_messages():
    c, st = cloud()
    c._msg(*body("@msg/meter/load/ac", b"off"))
    assert st.loads[0] == 0
    c._msg(*body("@msg/other/target", b"05:00"))      # not our alias
    assert st.target_min == -1
    c._msg(*body("@msg/meter/nope", b"1"))
    assert st.error == "nope: unknown command"
    for junk in (b"", b"{", b"[1]", b'{"data": [1]}', b'{"data": 5}', b"\xff\xfe"):
        c._msg(*body("@shadow/data/updated", junk))
    c._msg(*body("@shadow/data/updated", {"data": {"load": "off"}}))
    assert st.error.startswith("load: want")


def test_connect_step_subscribe_get_and_publish(monkeypatch):
    """The connect step with a fake umqtt.simple client: broker resolved once and given as an
    IP, connect(timeout=0.5), one SUBSCRIBE with the three filters written without waiting,
    SUBACK -> get, get response -> ready, telemetry published with qos 0."""
    made = fake_umqtt(monkeypatch)
    polls = []

    def mkpoll():
        p = FakePoll()
        polls.append(p)
        return p
    monkeypatch.setattr(netpie.select, "poll", mkpoll)
    cfg = json.loads(json.dumps(CFG))
    cfg["netpie"].update(client_id="cid", token="tok", secret="sec", host="127.0.0.1",
                         port=1883)
    st = new_state()
    st.error = "cloud: old"
    st.faults = S.F_CLOUD | S.F_AUTH
    c = netpie.Cloud(cfg, st, Board())
    # as an import leaves them on the board
    monkeypatch.setitem(sys.modules, "umqtt", object())
    monkeypatch.setitem(sys.modules, "umqtt.simple", object())
    c._step()
    m, = made
    sock = c.s
    assert sock is m.sock
    assert m.args == ("cid", "127.0.0.1", 1883, "tok", "sec", 30) and m.timeout == 0.5
    assert m.server == "127.0.0.1"      # the address resolved once, given to the client
    assert sock.to == 0.5
    assert c.ph == 2 and st.faults == 0 and st.error == ""
    assert "umqtt.simple" not in sys.modules and "umqtt" not in sys.modules   # dropped
    a = b"@msg/" + cfg["netpie"]["alias"].encode() + b"/#"
    sub = bytes(sock.out)
    assert sub == (bytes((0x82, len(sub) - 2, 0, 1, 0, len(a))) + a +
                   b"\0\0\x14@shadow/data/updated\0\0\x0a@private/#\0")
    c._step()
    assert c.ph == 2 and published(sock) == []
    sock.rx += b"\x90\x05\0\1\0\0\0"       # SUBACK for the three filters
    c._step()
    assert c.ph == 3 and published(sock) == [("@shadow/data/get", b"{}")] and not sock.rx
    sock.rx += packet("@private/shadow/data/get/response", {"data": {"target": "06:15"}})
    c._step()
    assert c.ph == 4 and st.target_min == 375 and not sock.rx
    c._step()
    (topic, p), = published(sock)[1:]
    assert topic == "@shadow/data/update"
    d = json.loads(p)["data"]
    assert "target" not in d and d["power_w"] == st.power_w     # the shadow holds target
    # a PINGREQ on the keepalive's half
    c.tp -= 16000
    n = len(sock.out)
    c._step()
    assert bytes(sock.out[n:]) == b"\xc0\0"
    # a packet cut short (a read that timed out inside it) drops the link
    sock.rx += packet("@shadow/data/updated", {"data": {"target": "06:30"}})[:-3]
    with pytest.raises(OSError):
        c._step()
    assert len(made) == 1                           # the broker was resolved once


def test_a_publish_of_any_size_is_framed_as_mqtt_says():
    """Cloud._pub's remaining length: one byte up to 127, two above (the packet buffer is 1 280 B)."""
    c, st = cloud()
    for k in (0, 1, 120, 123, 124, 125, 200, 1280, 5000):
        c.s = FakeSock()
        c._pub("@shadow/data/update", b"x" * k)
        assert published(c.s) == [("@shadow/data/update", b"x" * k)]
        assert len(c.s.out) == (2 if 21 + k < 128 else 3) + 21 + k


def test_a_payload_bigger_than_the_buffer_is_dropped_in_pieces_with_an_error(monkeypatch):
    """The packet buffer is allocated once; a bigger PUBLISH is read and thrown away in pieces,
    the command refused with "too long", the link kept and the next packet read normally."""
    fake_umqtt(monkeypatch)
    monkeypatch.setattr(netpie.select, "poll", FakePoll)
    cfg = json.loads(json.dumps(CFG))
    cfg["netpie"].update(client_id="cid", host="127.0.0.1", port=1883)
    st = new_state()
    c = netpie.Cloud(cfg, st, Board())
    c._step()
    m = c.s
    buf = c.buf
    alias = cfg["netpie"]["alias"]
    m.rx += b"\x90\x05\0\1\0\0\0"
    c._step()
    big = b"07:30" + b" " * 5000
    m.rx += packet("@msg/%s/target" % alias, big)
    m.rx += packet("@shadow/data/updated", {"data": {"x": "y" * 3000}})
    m.rx += packet("@msg/%s/emergency" % alias, b"on")
    c._step()
    assert c.buf is buf and not m.rx and c.ph in (3, 4)
    assert st.target_min == -1 and st.emergency is True and st.error == ""
    m.rx += packet("@msg/%s/target" % alias, big)
    c._step()
    assert st.error == "target: too long" and st.target_min == -1
    # a topic over 64 B is skipped in pieces too; the error says it was the topic
    m.rx += packet("@msg/%s/%s" % (alias, "t" * 60), b"07:30")
    m.rx += packet("@msg/%s/emergency" % alias, b"off")
    c._step()
    assert st.emergency is False and not m.rx and st.error == ""
    m.rx += packet("@msg/%s/%s" % (alias, "t" * 60), b"07:30")
    c._step()
    assert st.error == "cloud: topic over 64 B dropped" and st.target_min == -1


def test_connect_refused_is_an_auth_fault(monkeypatch):
    import asyncio
    fake_umqtt(monkeypatch)
    monkeypatch.setattr(FakeClient, "refuse", 5)
    cfg = json.loads(json.dumps(CFG))
    cfg["netpie"].update(client_id="cid", host="127.0.0.1", port=1883)
    st = new_state()
    c = netpie.Cloud(cfg, st, Board())

    async def one():
        t = asyncio.ensure_future(c.run())
        await asyncio.sleep(0.05)
        t.cancel()
    asyncio.sleep_ms = lambda ms: asyncio.sleep(ms / 1000)
    try:
        asyncio.run(one())
    finally:
        del asyncio.sleep_ms
    assert st.faults & S.F_AUTH and st.faults & S.F_CLOUD
    assert st.error == "cloud: broker refused the credentials (5)"
    assert c.s is None and c.ph == 0
    assert netpie.ticks_diff(c.tr, netpie.ticks_ms()) > 290000     # long back-off


def test_umqtt_is_kept_while_connects_fail_and_dropped_once_one_succeeds(monkeypatch):
    # a retry must not import umqtt.simple again in a heap that running has fragmented
    imports = []
    fake_umqtt(monkeypatch)
    fake = netpie.umqtt
    monkeypatch.setattr(netpie, "umqtt", lambda: imports.append(1) or fake())
    monkeypatch.setattr(FakeClient, "unreachable", 2)
    monkeypatch.setattr(netpie.select, "poll", FakePoll)
    cfg = json.loads(json.dumps(CFG))
    cfg["netpie"].update(client_id="cid", host="127.0.0.1", port=1883)
    c = netpie.Cloud(cfg, new_state(), Board())
    for attempt in range(2):
        monkeypatch.setitem(sys.modules, "umqtt.simple", object())
        with pytest.raises(OSError):
            c._step()
        assert c.u is not None and "umqtt.simple" in sys.modules, attempt   # kept
        c.tr = netpie.ticks_ms()        # the back-off is over
    c._step()
    assert c.ph == 2 and c.u is None and "umqtt.simple" not in sys.modules
    m, = FakeClient.made                # one client, made once, for all three attempts
    assert len(imports) == 1 and m.server == "127.0.0.1" and c.m is None


def test_same_answers_on_micropython(tmp_path):
    """The command table and a few hundred odd payloads give the same result on the unix port
    (what the ESP8266 runs) as on CPython."""
    import random
    import subprocess
    from conftest import micropython_bin
    r = random.Random(7)
    cases = [[n, p if not isinstance(p, bytes) else p.decode("latin-1"),
              "b" if isinstance(p, bytes) else ""] for n, p, _ in GOOD + BAD]
    odd = ["1e3", "nan", "inf", "-0", "0x10", "1_0", " 12 ", "12 %", "5%%", "07:30 ", "7:5",
           "00:00", "23:59", "on ", "TRUE", "Shed", "{}", '{"limit_w":1,"minutes":1}',
           '{"limit_w":1.0,"minutes":1}', "٣", "²", "ｏｎ", "\t1", "", " ", "+1", "1.", ".5"]
    for n in ("target", "emergency", "choice", "trip", "dr", "reset_ev_soc", "load/ac"):
        cases += [[n, p, ""] for p in odd]
    for _ in range(300):
        cases.append([r.choice(NAMES), r.choice(odd + ["".join(
            r.choice("0123456789:%.-+ onfae{}\"") for _ in range(r.randrange(6)))]), ""])
    cp = tmp_path / "cases.json"
    cp.write_text(json.dumps(cases))
    env = dict(os.environ, MICROPYPATH=FIRMWARE + ":.frozen")
    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run([micropython_bin(), os.path.join(here, "mp_netpie_apply.py"),
                          os.path.join(FIRMWARE, "config.json.example"), str(cp)],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    mp = [json.loads(x) for x in out.stdout.splitlines()]
    assert len(mp) == len(cases)
    for (name, p, kind), got in zip(cases, mp):
        st = S.State(len(CFG["loads"]))
        st.now = 1795600000
        st.loads[0] = 1
        pp = p.encode("latin-1") if kind == "b" else p
        want = [netpie.apply(st, CFG, name, pp), st.target_min, st.emergency, st.choice,
                list(st.loads), st.trip_soc_pct, st.dr_limit_w, st.dr_until, st.start_soc_pct]
        assert got == want, (name, p)


def test_shadow_scan_only_top_level_command_fields():
    c, st = cloud()
    st.emergency = True
    raw = (b'{"rev": 3, "deviceid": "d", "data": {"energy_today_wh": {"emergency": 5, '
           b'"target": "01:00"}, "error": "x}\\"{,\\\\", "plan": {"emergency": {"soc_pct": 1},'
           b' "trip_ok": [true, {"a": "]"}]}, "advice": ["a,b", "}"], "emergency" : false ,'
           b'"target":"06:00"}, "later": {"choice": "shed", "target": "02:00"}}')
    json.loads(raw)     # valid JSON
    c._msg(*body("@shadow/data/updated", raw))
    assert (st.emergency, st.target_min, st.choice) == (False, 360, 0)
    # compact and pretty forms, big payloads
    for dump in (lambda o: json.dumps(o, separators=(",", ":")),
                 lambda o: json.dumps(o, indent=2)):
        c, st = cloud()
        data = {"plan": {"emergency": {"full_at": "01:00"}}, "choice": "emergency",
                "dr": {"limit_w": 1000, "minutes": 5}, "load": {"ac": "off", "x": None},
                "pad": "y" * 900}
        c._msg(*body("@shadow/data/updated", dump({"deviceid": "d", "data": data}).encode()))
        assert (st.choice, st.dr_limit_w, st.loads[0]) == (2, 1000, 0), st.error
    for junk in (b'{"data": {', b'{"data": {"target": }', b'{"data": {"target": "06:00"',
                 b'{"data"', b'"data": [1, {"target": "05:00"}]'):
        c, st = cloud()
        try:
            c._msg(*body("@shadow/data/updated", junk))
        except ValueError:
            pass    # _step turns this into "cloud: bad message ..."
        assert st.target_min in (-1, 360)
