"""Seeded fuzz cases for the meter's cloud input, and the driver that sends them through the NETPIE
stand-in as a dashboard does (publishMsg and writeShadow) to netpie.Cloud on the MicroPython unix
port (host_tests/mp_netpie_run.py). Used by host_tests/test_cloud_fuzz.py (a slice) and
bench/cloud_fuzz.py (the long run).

Each case is (path, name, payload bytes, expected): path "msg" publishes payload on
publishMsg/<alias>/<name>; path "shadow" writes payload (a JSON object) with writeShadow/<alias>.
expected is the exact `error` text docs/netpie.md (section 5 and "Memory and message limits")
gives for it, a prefix ending in "*", or None for input the meter ignores silently (shadow
fields that are not commands, nulls). The texts are written out here from the documentation, not
taken from the firmware, so a firmware that drifts from its docs fails.
"""
import json
import random
import time

LOAD = "heater"         # a load of firmware/config.json.example
# docs/netpie.md section 5, "error text"
WANT = {
    "target": "target: want HH:MM, 0-1439 or -1",
    "emergency": "emergency: want on or off",
    "choice": "choice: want accept, shed or emergency",
    "trip": "trip: want km 0-2000 or 0-100%",
    "dr": 'dr: want {"limit_w":0-200000,"minutes":0-1440}',
    "reset_ev_soc": "reset_ev_soc: want 0-100",
    "load/" + LOAD: "load/%s: want on or off" % LOAD,
}
NAMES = tuple(WANT)
KINDS_MSG = ("oversized", "long", "binary", "malformed", "nested", "number", "type", "unknown",
             "empty")
KINDS_SHADOW = ("oversized", "long", "nested", "number", "type", "text", "unknown", "null")


def _printable(rng, n):
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789 {}[]:,\"'-+.%") for _ in
                   range(n))


def _binary(rng, n):
    b = bytearray(rng.getrandbits(8) for _ in range(n))
    b[rng.randrange(n)] = 0xFF      # never valid UTF-8
    return bytes(b)


def _bad_number(rng, name):
    # numbers no command takes as they are: negative, huge, fractional for integer fields,
    # not finite (docs/netpie.md, accepted ranges)
    pool = ["-5", "-1e300", str(10 ** 20), str(-10 ** 30), str(2 ** 64), "1e999", "-0.5",
            "nan", "inf", str(rng.randint(-10 ** 9, -2))]
    if name == "target":
        pool += ["1440", "99999", "-2", "24:00", "12:60", "7:5"]
    elif name == "trip":
        pool += ["2000.5", "101%", "-1%", "5000", "+5"]
    elif name == "reset_ev_soc":
        pool += ["101", "1000", "50.5", "-0"]
    elif name == "dr":
        pool = ['{"limit_w":-1,"minutes":5}', '{"limit_w":3000,"minutes":1441}',
                '{"limit_w":1e400,"minutes":5}', '{"limit_w":%d,"minutes":5}' % 10 ** 20,
                '{"limit_w":3000.5,"minutes":5}', '{"limit_w":200001,"minutes":1}']
    return rng.choice(pool)


def _wrong_type(rng, name):
    if name == "dr":
        return rng.choice(['[3000,30]', '"3000"', 'true', '{"limit_w":"3000","minutes":30}',
                           '{"limit_w":3000}', '{"limit_w":3000,"minutes":30,"x":1}',
                           '{"w":3000,"m":30}', 'null'])
    return rng.choice(['["on"]', '{"x":1}', '"on"' if name != "emergency" else '["1"]', '[]',
                       '{}', 'true' if name not in ("emergency", "load/" + LOAD) else '[true]'])


def msg_case(rng):
    kind = rng.choice(KINDS_MSG)
    name = rng.choice(NAMES)
    if kind == "oversized":
        return "msg", name, _binary(rng, rng.randint(1281, 6000)), name + ": too long"
    if kind == "long":
        return "msg", name, _printable(rng, rng.randint(129, 1280)).encode(), name + ": too long"
    if kind == "binary":
        return "msg", name, _binary(rng, rng.randint(1, 128)), WANT[name]
    if kind == "malformed":
        p = rng.choice(['{"limit_w":3000,"minutes":', '{"limit_w":3000 "minutes":30}', '{',
                        '{"limit_w":3000,"minutes":30}}', "{'limit_w':3000,'minutes':30}",
                        '[1,2', '"unterminated', '{"a":}'])
        return "msg", name, p.encode(), WANT[name]
    if kind == "nested":
        k = rng.randint(2, 60)
        p = rng.choice(("[" * k + "]" * k, '{"a":' * k + "1" + "}" * k))
        return "msg", name, p[:128].encode(), WANT[name]
    if kind == "number":
        return "msg", name, _bad_number(rng, name).encode(), WANT[name]
    if kind == "type":
        return "msg", name, _wrong_type(rng, name).encode(), WANT[name]
    if kind == "unknown":
        if rng.random() < 0.3:
            x = "load/" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz_") for _ in
                                  range(rng.randint(1, 30)))
            return "msg", x, b"on", x[:24] + ": no such load"
        x = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789_-") for _ in
                    range(rng.randint(1, 40)))
        if x in NAMES:
            x += "_x"
        return "msg", x, b"on", x[:24] + ": unknown command"
    # empty: every command but target ("" = no departure) refuses it
    name = rng.choice([n for n in NAMES if n != "target"])
    return "msg", name, b"", WANT[name]


def _shadow(field, value):
    if field.startswith("load/"):
        return json.dumps({"load": {field[5:]: value}}).encode()
    return json.dumps({field: value}).encode()


def shadow_case(rng):
    kind = rng.choice(KINDS_SHADOW)
    name = rng.choice(NAMES)
    if kind == "oversized":
        v = _printable(rng, rng.randint(1300, 4000))
        if rng.random() < 0.3:      # a field no one reads: it stays in the shadow
            return "shadow", "junk", json.dumps({"junk": v}).encode(), "cloud: message of *"
        return "shadow", name, _shadow(name, v), "cloud: message of *"
    if kind == "long":
        v = _printable(rng, rng.randint(129, 900))
        return "shadow", name, _shadow(name, v), name + ": too long"
    if kind == "nested":
        v = 1
        for _ in range(rng.randint(2, 150)):
            v = [v] if rng.random() < 0.5 else {"a": v}
        return "shadow", name, _shadow(name, v), WANT[name]
    if kind == "number":
        v = rng.choice([-5, -10 ** 30, 10 ** 20, 2 ** 64, -0.5, 1e300, -1e300, 10 ** 60])
        if name == "dr":
            v = {"limit_w": v, "minutes": 30}
        return "shadow", name, _shadow(name, v), WANT[name]
    if kind == "type":
        v = rng.choice([[1, 2], {"x": 1}, [], {}, ["on"]])
        if name == "dr":
            v = rng.choice([[3000, 30], "3000", True, {"limit_w": "3000", "minutes": 30},
                            {"limit_w": 3000}, {"limit_w": 3000, "minutes": 30, "x": 1}])
        return "shadow", name, _shadow(name, v), WANT[name]
    if kind == "text":
        # strings no command takes: control characters, non-ASCII, lone surrogates, junk
        v = rng.choice(["\x00\x01\x02", "\u00e9t\u00e9", "\ud800", "on\u0000", "\u202eon",
                        "ON OFF", "tomorrow", "\x7f" * 10, "7:30 pm"])
        if name == "trip":
            v = rng.choice(["\x00", "\u0661\u0662", "ten km", "5 km"])
        return "shadow", name, _shadow(name, v), WANT[name]
    if kind == "unknown":
        x = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz_") for _ in range(rng.randint(1, 30)))
        if x in NAMES or x in ("load", "trip", "dr"):
            x += "_x"
        return "shadow", x, json.dumps({x: rng.choice([1, "on", [1], {"a": 1}])}).encode(), None
    return "shadow", name, _shadow(name, None), None


def cases(seed, n_msg, n_shadow):
    rng = random.Random(seed)
    out = [msg_case(rng) for _ in range(n_msg)] + [shadow_case(rng) for _ in range(n_shadow)]
    rng.shuffle(out)
    return out


SETTINGS = ("target", "emergency", "choice", "loads", "trip", "dr_w", "dr_until", "start_soc")


def settings(r):
    return tuple(json.dumps(r[k]) for k in SETTINGS)


def matches(error, expected):
    if expected.endswith("*"):
        return error.startswith(expected[:-1])
    return error == expected


def run(mp, dash, alias, todo, settle_s=0.15, timeout_s=5.0):
    """Send each case and wait for its outcome. Between cases a valid command that changes no
    setting (emergency off while it is off) clears `error`, so every case's error is seen on its
    own. Returns a list of failures (case, what was seen)."""
    bad = []

    def wait(pred):
        t0 = time.time()
        while time.time() - t0 < timeout_s:
            r = mp.last
            if r and pred(r):
                return r
            time.sleep(0.005)
        return None

    for case in todo:
        path, name, payload, expected = case
        if not wait(lambda r: r["error"] == "" and r["ph"] == 4):
            bad.append((case, "no clean start: %s" % mp.last))
            continue
        before = settings(mp.last)
        # publishMsg/<device alias>/<topic> arrives as @msg/<topic>; the meter listens on
        # @msg/<its netpie.alias>/<command>, the same alias here
        topic = ("publishMsg/%s/%s/%s" % (alias, alias, name) if path == "msg" else
                 "writeShadow/%s" % alias)
        dash.publish(topic, payload)
        if expected is None:
            time.sleep(settle_s)
            r = mp.last
            if r["error"] != "" or settings(r) != before:
                bad.append((case, "not ignored: %s" % r))
        else:
            r = wait(lambda r: r["error"] != "")
            if r is None or not matches(r["error"], expected):
                bad.append((case, "error %r" % (r and r["error"])))
            elif settings(r) != before:
                bad.append((case, "settings changed: %s -> %s" % (before, settings(r))))
        if mp.last["ph"] != 4:
            bad.append((case, "link not ready after it: %s" % mp.last))
        dash.publish("publishMsg/%s/%s/emergency" % (alias, alias), b"off")
    return bad
