# NETPIE 2020 link: MQTT 3.1.1, shadow telemetry, dashboard commands. umqtt.simple (frozen in
# the ESP8266 firmware) opens the session: CONNECT with the credentials, CONNACK. It is imported
# for each connect and dropped after it, because its classes hold ~1 KB of heap once imported
# (docs/benchmarks.md section 0); the session's few packets are then written here: PUBLISH at
# qos 0 (Cloud._pub), PINGREQ on our own schedule, and one SUBSCRIBE written without waiting for
# its SUBACK (a later step sees it). Incoming packets are read by Cloud._rx into the one packet
# buffer, only when poll() says data is there. umqtt.simple blocks; every call is kept short:
# the broker is resolved once and given to umqtt as an IP, connect() gets a 0.5 s timeout.
# Longest step about 1 s (connect + CONNACK). See docs/netpie.md.
import json
import socket
import select
import sys
import time
import asyncio
import state as S
import meter
import scheduler

try:
    from time import ticks_ms, ticks_diff, ticks_add
    from micropython import const
except ImportError:
    def const(x):
        return x

    def ticks_ms():
        return int(time.monotonic() * 1000)

    def ticks_diff(a, b):
        return a - b

    def ticks_add(a, b):
        return a + b
try:
    from binascii import crc32 as _fp
except ImportError:
    _fp = hash

_TO = 0.5           # socket timeout (s): connect, CONNACK, the rest of a packet, writes
_N = const(25)      # telemetry fields (indices in Cloud._val); 0..2 mirror user settings
_UNC = const(15000)  # ms a sent setting waits for its own echo before other shadow values win
_BUF = const(1280)  # bytes of the packet buffer (Cloud.buf)
_TOPIC = const(64)  # longest topic taken (ours are at most 45 B)
# the telemetry fields composed in pieces (Cloud._val): energy today/month, plan, advice,
# loads, faults, error
_MULTI = const(1 << 8 | 1 << 9 | 1 << 15 | 1 << 16 | 1 << 18 | 1 << 19 | 1 << 20)
# ... and the slow ones, once a minute: energy, bills, SOC, bus counters
_SLOW = const(1 << 8 | 1 << 9 | 1 << 10 | 1 << 11 | 1 << 13 | 1 << 24)
# The shadow's command fields: 0..2 settings mirrored in telemetry, 3.. one-shot (nulled once
# taken, Cloud.clr bits 0..3). Bit n of _CMD_LENS: a command name n - 1 characters long.
# (bit sets, chains and one shared tuple in place of tuple literals: each literal tuple is an
# object of ~18 B in RAM on the board, docs/benchmarks.md section 0)
_CMDS = ("target", "emergency", "choice", "load", "trip", "dr", "reset_ev_soc")
_CMD_LENS = const(1 << 3 | 1 << 5 | 1 << 7 | 1 << 10 | 1 << 13)


def umqtt():
    """umqtt.simple, for connecting (Cloud.prepare)."""
    import umqtt.simple
    return umqtt.simple


def _hm(t, z=None):
    # '"HH:MM"' from a minute of day, or from UTC seconds when the tz offset (s) z is given;
    # '""' for t < 0 (none)
    if t < 0:
        return '""'
    if z is not None:
        t = (t + z) // 60 % 1440
    return '"%02d:%02d"' % (t // 60, t % 60)


def apply(st, cfg, name, p):
    """Apply one command (name, payload) to the State. Payload: str/bytes text as sent by
    publishMsg, or a JSON value from the shadow. Returns None, or the error text it also put in
    st.error; on error nothing else changes. Never raises."""
    name = str(name)[:24]
    e = "bad value"
    d = None
    try:
        if isinstance(p, (bytes, bytearray)):
            if len(p) > 128:
                raise OverflowError
            try:
                p = p.decode()
            except UnicodeError:
                p = "\0"          # not text: refused by the command's own check below
        elif type(p) is dict or type(p) is list:
            # a JSON container from the shadow: only dr takes one (an object), checked as it is;
            # printing a deeply nested value back to text would recurse
            d = p
            p = "\0"
        elif not isinstance(p, str):
            p = json.dumps(p)   # true, 450, 1.5: like their text
        if len(p) > 128:
            raise OverflowError
        v = p.strip().lower()
        if len(v.encode()) != len(v):
            v = "\0"           # ASCII only (CPython's isdigit/int/float take other digits)
        onoff = ("off", "on", "false", "true", "0", "1")
        if name == "target":
            e = "want HH:MM, 0-1439 or -1"
            if v in ("", "-1", "off"):
                x = -1
            elif ":" in v:
                h, m = v.split(":")
                if not (0 < len(h) < 3 and len(m) == 2 and h.isdigit() and m.isdigit()):
                    raise ValueError
                h = int(h)
                m = int(m)
                if h > 23 or m > 59:
                    raise ValueError
                x = h * 60 + m
            else:
                if not (0 < len(v) < 5 and v.isdigit()):
                    raise ValueError
                x = int(v)
                if x > 1439:
                    raise ValueError
            st.target_min = x
        elif name == "emergency":
            e = "want on or off"
            st.emergency = onoff.index(v) % 2 == 1
        elif name[:5] == "load/":
            e = "want on or off"
            i = 0
            for ld in cfg["loads"]:
                if ld["name"] == name[5:]:
                    break
                i += 1
            else:
                e = "no such load"
                raise ValueError
            st.loads[i] = onoff.index(v) % 2
        elif name == "choice":
            e = "want accept, shed or emergency"
            st.choice = S.CHOICES.index(v)
        elif name == "trip":
            e = "want km 0-2000 or 0-100%"
            if v[-1:] == "%":
                if not (0 < len(v) < 5 and v[:-1].isdigit()):
                    raise ValueError
                x = int(v[:-1])
                if x > 100:
                    raise ValueError
            else:
                if v.startswith("+"):
                    raise ValueError
                km = float(v)
                if not 0 <= km <= 2000:
                    raise ValueError
                t = cfg["trip"]
                x = scheduler.trip_need_pct(int(-(-km // 1)), t["wh_per_km"], t["reserve_pct"],
                                            cfg["battery"]["capacity_wh"])
            st.trip_soc_pct = x
        elif name == "dr":
            e = 'want {"limit_w":0-200000,"minutes":0-1440}'
            if d is None:
                d = json.loads(p)
            if type(d) is not dict or len(d) != 2:
                raise ValueError
            w = d["limit_w"]
            m = d["minutes"]
            if type(w) is not int or type(m) is not int or not (0 <= w <= 200000 and
                                                                0 <= m <= 1440):
                raise ValueError
            if p != "\0" and "".join(p.split()) not in (
                    '{"limit_w":%d,"minutes":%d}' % (w, m), '{"minutes":%d,"limit_w":%d}' % (m, w)):
                raise ValueError    # MicroPython's json takes '{"limit_w":1 "minutes":2}'
            if w and m:
                if not st.now:
                    e = "clock not set"
                    raise ValueError
                st.dr_until = st.now + m * 60
            else:
                w = st.dr_until = 0
            st.dr_limit_w = w
        elif name == "reset_ev_soc":
            e = "want 0-100"
            if not (0 < len(v) < 4 and v.isdigit()) or int(v) > 100:
                raise ValueError
            st.start_soc_pct = int(v)
        else:
            e = "unknown command"
            raise ValueError
        e = None
    except OverflowError:
        e = "too long"
    except Exception:
        pass
    st.error = "" if e is None else name + ": " + e
    st.dirty = True
    return e and st.error


class Cloud:
    def __init__(self, cfg, state, board):
        self.c = cfg
        self.st = state
        self.b = board
        self.ip = None          # the broker's address, resolved once
        # umqtt.simple and its MQTTClient for the next connect (prepare), dropped after a
        # connect succeeds
        self.u = self.m = None
        self.s = None           # the session's socket (None: not connected)
        self.p = None           # poll object on the client's socket
        self.ph = 0             # 0 not connected, 2 SUBSCRIBE sent, 3 get sent, 4 ready
        self.w = 0              # ms until the next attempt, set before raising (0: back-off)
        self.io = 1             # 0 while composing telemetry: an exception there is a bug
        self.bo = 2000          # next back-off (ms)
        self.tr = ticks_ms()    # ticks of the next connect attempt
        self.tc = self.rx = self.tp = self.tu = self.tr   # phase start, last rx/ping, setting sent
        self.ka = cfg["netpie"].get("keepalive", 30)      # MQTT keepalive (s)
        # fingerprint of each field as last sent or held by the shadow (-1: none); after them
        # power_w, house_w and ev_w as last sent (their deadband)
        self.h = [-1] * _N + [0, 0, 0]
        self.uc = 0             # settings sent but their own echo not seen yet (bits 0..2)
        self.clr = 0            # one-shot shadow commands to null: load, trip, dr, reset_ev_soc
        self.big = 0            # size of the last oversized shadow message reported
        self.pr = 0             # house_profile asked for: publish it on the next step
        self.tw = -10           # telemetry: time of the last write (s) ...
        self.tt = 0             # ... and the rate limiter's theoretical arrival time (s)
        self.ts = -60           # ... and of the last write with the slow fields (s)
        self.sd = 1             # the slow fields are due in this write
        # the one packet buffer: telemetry payloads out (a full write is ~950 B) and PUBLISH
        # payloads in (a full shadow get response ~1.1 KB); bigger ones are dropped in pieces
        self.buf = bytearray(_BUF)

    async def run(self):
        while True:
            try:
                self._step()
            except Exception as e:
                # drop the link (the socket is closed on every error); retry after self.w ms,
                # else after the growing back-off (2-8 s: a broker that comes back is
                # reached within 10 s; a refused connect costs nothing, a black-holed one 0.5 s)
                st = self.st
                ms = self.w
                if not (self.io or isinstance(e, OSError)):
                    st.error = "cloud: " + repr(e)[:40]
                self.w = 0
                self.io = 1
                if self.s:
                    try:
                        self.s.close()
                    except Exception:
                        pass
                    self.s = None
                self.ph = 0
                st.faults |= S.F_CLOUD
                if not ms:
                    ms = self.bo
                    self.bo = min(ms * 2, 8000)
                self.tr = ticks_add(ticks_ms(), ms)
            await asyncio.sleep_ms(100)

    def _step(self):
        # one short synchronous step; raises to drop the link (any exception from umqtt.simple:
        # OSError, or IndexError/TypeError/AssertionError on a short or timed-out read)
        st = self.st
        now = ticks_ms()
        if not self.b.wifi_ok():
            self.bo = 2000
            if self.ph or not st.faults & S.F_CLOUD:
                self.w = 1
                raise OSError(0)
            return
        n = self.c["netpie"]
        if not self.ph:
            if ticks_diff(now, self.tr) < 0:
                return
            if not n["client_id"]:
                self.w = 60000
                raise OSError(0)
            if not self.ip:
                # the broker's address, once: with a name this has no timeout on the ESP8266.
                # umqtt resolves it again in every connect(), at once for an IP literal
                a = socket.getaddrinfo(n["host"], n["port"])[0][-1]
                if type(a) is not tuple:            # unix port: a raw sockaddr_in
                    a = ("%d.%d.%d.%d" % tuple(a[4:8]),)
                self.ip = a[0]
            self._connect(n)
            s = self.s
            s.settimeout(_TO)
            self.tc = self.rx = self.tp = ticks_ms()
            st.faults &= ~(S.F_CLOUD | S.F_AUTH)
            if st.error[:6] == "cloud:":
                st.error = ""
            p = self.p = select.poll()
            p.register(s, select.POLLIN)
            # one SUBSCRIBE (packet id 1, qos 0) with all three filters; umqtt's subscribe()
            # would wait for each SUBACK, a later step picks it up instead
            a = "@msg/%s/#" % n["alias"]
            s.write(bytes((0x82, len(a) + 41, 0, 1, 0, len(a))))
            s.write(a)
            s.write(b"\0\0\x14@shadow/data/updated\0\0\x0a@private/#\0")
            self.ph = 2
            # fields the shadow may not hold: send again (the once-a-minute ones with the next
            # minute's write: the first write after a reconnect shares its step with the get
            # response's parse, and a full write on top of it was a 160 ms step at x10 on the
            # host); settings not echoed stay marked
            for i in range(_N):
                if i > 2 or self.uc >> i & 1:
                    self.h[i] = -1
            return
        s = self.s
        for _ in range(6):      # at most 6 packets per step
            if not self.p.poll(0):
                break
            self.rx = now       # something came in
            x = self._rx(s)     # a PUBLISH goes to self._msg
            if x == 0x90 and self.ph == 2:   # SUBACK: now ask for the stored shadow
                self.ph = 3
                self.tc = now
                self._pub("@shadow/data/get", b"{}")
        dt = ticks_diff(now, self.tc)
        ph = self.ph
        if ph < 4 and dt > 5000:
            if ph < 3:
                raise OSError(0)    # no SUBACK
            self.ph = ph = 4        # no get response: go on without it
        if ticks_diff(now, self.rx) > self.ka * 1000 + 5000:
            raise OSError(0)        # silent link: outage
        if ticks_diff(now, self.tp) > self.ka * 500:
            self.tp = now
            s.write(b"\xc0\0")    # PINGREQ
        if ph < 4:
            return
        if dt > 30000:
            self.bo = 2000          # a session that lasted: next drop retries quickly
        t = st.now or now // 1000
        if t < self.tw:             # clock stepped back
            self.tw = t - 10
            self.tt = t
        e = t - self.tw
        if self.pr:
            # the learned household load on request, composed in the packet buffer in pieces
            self.pr = 0
            b = self.buf
            n = 0
            try:
                for k in range(8):
                    f = self._val(-1, k)
                    if f:
                        b[n:n + len(f)] = f
                        n += len(f)
            except MemoryError:
                self.pr = 1             # no free block: the next step tries again
                n = 0
            if n:
                self._pub("@msg/%s/house_profile/data" % self.c["netpie"]["alias"],
                          memoryview(b)[:n])
        # what changed goes out when it changes (at most one write a second, 10 s apart on
        # average with a burst of 5); a command's effect at once, outside that budget; the slow
        # fields (energy, bill, SOC, bus counters, a power move under 100 W or a tenth) once a
        # minute: a quiet house costs about one write a minute (docs/netpie.md section 8)
        c = st.dirty == 2           # a command came in (_msg)
        if c or (e >= 10 or st.dirty and e >= 1) and self.tt - t <= 50:
            st.dirty = False
            try:
                b = self.buf
                self.sd = t - self.ts >= 60
                self.io = 0
                n = self._tele(b)
                self.io = 1
                if n > 10:
                    # one buffer allocated at boot for what goes out and what comes in: a fresh
                    # ~1 KB block would need a contiguous hole in a fragmented heap
                    self._pub("@shadow/data/update", memoryview(b)[:n])
                    self.tw = t
                    if self.sd:
                        self.ts = t
                    if not c:
                        self.tt = max(self.tt, t) + 10
                else:
                    self.tw = max(self.tw, t - 9)
            except MemoryError:
                st.tele_skips += 1
                if self.io:
                    raise               # inside publish: the link state is unknown, drop it
                # composing a field found no free block: skip this write, keep the link; fields
                # marked as sent by a half-filled buffer are sent again next time
                self.io = 1
                for i in range(_N):
                    self.h[i] = -1
                st.dirty = True
                self.tw = t - 9         # retry in about a second

    def prepare(self):
        """Load umqtt.simple and make its client for the next connect. app.py calls this at boot,
        while the heap still has room in one piece: made after the tasks had started, the
        module failed to load for minutes at 25K, and the client's 136 B attribute table
        found no free block at 24K (docs/benchmarks.md section 0)."""
        n = self.c["netpie"]
        u = self.u = self.u or umqtt()
        if not self.m:
            self.m = u.MQTTClient(n["client_id"], n["host"], n["port"], n["token"], n["secret"],
                                  self.ka)

    def _connect(self, n):
        # CONNECT and CONNACK through umqtt.simple. The module and its client are kept while
        # attempts fail (a retry in a heap that running has fragmented may find no room to make
        # them again) and dropped once a connect succeeds: a reconnect makes them again.
        # self.s is the socket as soon as there is one (run() closes it on any error)
        if not self.m:
            self.prepare()
        u = self.u
        m = self.m
        m.server = self.ip          # resolved once (_step); the client was made with the name
        m.sock = None
        try:
            try:
                m.connect(timeout=_TO)  # umqtt.simple >= 1.6: TCP connect, CONNACK bounded
            except TypeError:
                if m.sock:
                    raise
                # umqtt.simple < 1.6 (PyPI 1.3.4 on the host) has no timeout=: its module-level
                # socket is swapped for one that hands out sockets with our timeout

                class K:
                    getaddrinfo = socket.getaddrinfo

                    def socket():
                        k = socket.socket()
                        k.settimeout(_TO)
                        return k
                u.socket = K
                m.connect()
            self.u = self.m = None
        except u.MQTTException as e:    # CONNACK refused (NETPIE: 5, credentials)
            st = self.st
            st.faults |= S.F_AUTH
            st.error = "cloud: broker refused the credentials (%s)" % e
            st.dirty = True
            self.w = 300000
            raise OSError(0)
        finally:
            self.s = m.sock
            m = u = None
            if not self.m:
                sys.modules.pop("umqtt.simple", None)
                sys.modules.pop("umqtt", None)

    def _pub(self, topic, msg):
        # one PUBLISH at qos 0: topic (str, under 128 B) and payload (under 16 KB)
        s = self.s
        n = 2 + len(topic) + len(msg)
        s.write(bytes((0x30, n & 0x7F | 0x80, n >> 7, 0, len(topic))) if n > 0x7F
                else bytes((0x30, n, 0, len(topic))))
        s.write(topic)
        s.write(msg)

    def _tele(self, b):
        # the changed fields as {"data":{...}} written into bytearray b in one pass; returns the
        # length (<= 10: nothing changed). A field that does not fit waits for the next write.
        # Each field is written where it would go, then kept (n moves on) only when it changed:
        # the plan comes in pieces of about 50 B, so no block bigger than a field is needed here
        # (a ~330 B string found no hole in a fragmented 29K heap)
        n = 8
        top = len(b) - 2
        for i in range(_N + 4):
            e = n + 1
            x = k = 0
            while True:
                f = self._val(i, k)
                if f is None:
                    break
                k += 1
                m = e + len(f)
                if m > top:
                    e = 0
                    break
                b[e:m] = f
                e = m
                x = (x & 0x1FFFFFFF) << 1 ^ _fp(f) & 0x3FFFFFFF    # small ints on the ESP8266
                if not _MULTI >> i & 1:
                    break               # a field of one piece
            if not k:
                continue
            if not e:
                self.st.dirty = True
                continue
            if i < _N and x == self.h[i]:
                continue
            b[n] = 44                   # ","
            n = e
            if i < _N:
                self.h[i] = x
            if i < 3:
                self.uc |= 1 << i
                self.tu = ticks_ms()
        b[:9] = b'{"data":{'            # its "{" overwrites the first field's ","
        b[n:n + 2] = b"}}"
        if n > 8:
            self.clr = 0
        return n + 2

    def _val(self, i, k=0):
        # piece k of telemetry field i, b'"name":json' when joined (None: no more pieces; at k=0:
        # leave the field out); i < 0: piece k of 8 of the learned household load (the
        # house_profile command). The fields over ~30 B come in pieces of at most ~35 B
        # (_MULTI): in a fragmented 24K heap a whole 70-100 B field, made with its formatting
        # temporaries, found no free block (docs/benchmarks.md section 0)
        st = self.st
        c = self.c
        if k and i >= 0 and not _MULTI >> i & 1:
            return None
        if i < 0:
            # W per half-hour from 00:00, weekdays then weekends and holidays (null: fewer days
            # than the plan trusts), 12 slots a piece
            p = st.profile
            if p is None or k > 7:
                return None
            v = ('{"weekday":[', ",", ",", ",", '],"weekend":[', ",", ",", ",")[k]
            for j in range(k * 12, k * 12 + 12):
                v += ("%d," % (p[2 * j] | p[2 * j + 1] << 8)) if p[192 + j] >= \
                    scheduler.PROFILE_DAYS else "null,"
            return (v[:-1] + ("]}" if k == 7 else "")).encode()
        if i == 0:
            k, v = "target", _hm(st.target_min)
        elif i == 1:
            k, v = "emergency", "true" if st.emergency else "false"
        elif i == 2:
            k, v = "choice", '"%s"' % S.CHOICES[st.choice]
        elif i < 6:
            k = "power_w" if i == 3 else "house_w" if i == 4 else "ev_w"
            if i < 5 and st.faults & S.F_PZEM:
                # the supply is not being read: no stale figure (the shadow drops the field);
                # the first reading after it goes out whatever its size
                v = "null"
                self.h[_N + i - 3] = -100000
            else:
                v = (st.power_w, st.power_w - st.ev_power_w, st.ev_power_w)[i - 3]
                x = self.h[_N + i - 3]
                d = x // 10 if x > 1000 else 100
                if not self.sd and -d < v - x < d:
                    return None     # a few watts of noise: with the slow fields
                self.h[_N + i - 3] = v
        elif i == 6:
            k, v = "limit_w", st.limit_w
        elif i == 7:
            k, v = "peak", "true" if st.peak else "false"
        elif _SLOW >> i & 1 and not self.sd:
            return None             # slow fields: once a minute
        elif i < 10:
            q = st.counters
            if q is None or k > 2:
                return None
            m = meter
            j = (i == 9) * 3            # the month's counters follow the day's
            if k == 0:
                v = '"%s":{"offpeak":%d,' % ("energy_month_wh" if j else "energy_today_wh",
                                             q[m.C_DAY_OFF + j])
            elif k == 1:
                v = '"peak":%d,"emergency":%d,' % (q[m.C_DAY_PEAK + j], q[m.C_DAY_EM + j])
            else:
                v = '"ev":%d}' % q[m.C_MON_EV if j else m.C_DAY_EV]
            return v.encode()
        elif i < 12:
            if st.counters is None:
                return None
            k = "bill_month" if i == 11 else "bill_today"
            v = "%.2f" % meter.bill(st.counters, c, i == 11)
        elif i == 12:
            k, v = "ev_state", '"%s"' % "?ABCDE"[st.ev_state if 0 < st.ev_state < 6 else 0]
        elif i == 13:
            k, v = "ev_soc_pct", st.ev_soc_pct
        elif i == 14:
            k, v = "ev_current_a", st.ev_current_a
        elif i == 15:
            p = st.plan
            if p is None:
                if k:
                    return None
                k, v = "plan", "null"
            else:
                # the biggest field (~330 B), in pieces of at most ~30 B (see _tele): at a 24K
                # heap a 45 B piece with its formatting temporaries found no free block. Each
                # format string is a qstr (7 B of heap; a tuple of names would cost more)
                q = scheduler
                z = c["tz_offset_min"] * 60
                if k == 0:
                    v = '"plan":{"feasible":%s,' % ("true" if p[q.P_OK] else "false")
                elif k == 1:
                    v = '"full_at":%s,' % _hm(p[q.P_FULL], z)
                elif k == 2:
                    v = '"charge_minutes":%d,' % p[q.P_MIN]
                elif k == 3:
                    v = '"reachable_soc_pct":%d,' % p[q.P_SOC]
                elif k == 4:
                    v = '"shed":{"soc_pct":%d,' % p[q.P_SHED_SOC]
                elif k == 5:
                    v = '"full_at":%s},' % _hm(p[q.P_SHED_FULL], z)
                elif k == 6:
                    v = '"emergency":{"soc_pct":%d,' % p[q.P_EM_SOC]
                elif k == 7:
                    v = '"full_at":%s,' % _hm(p[q.P_EM_FULL], z)
                elif k == 8:
                    v = '"extra_cost":%.2f},' % p[q.P_EM_COST]
                elif k == 9:
                    v = '"trip_ok":{"accept":%s,' % ("true" if p[q.P_TRIP] & 1 else "false")
                elif k == 10:
                    v = '"shed":%s,"emergency":%s}}' % ("true" if p[q.P_TRIP] & 2 else "false",
                                                          "true" if p[q.P_TRIP] & 4 else "false")
                else:
                    return None
                return v.encode()
        elif i == 17:
            k = "advice_w"
            v = j = 0
            for ld in c["loads"]:
                if st.advice >> j & 1:
                    v += ld["rated_w"]
                j += 1
        elif i < 20:
            # 16 advice (load names), 18 loads (name -> on/off), 19 faults (names): the opening,
            # one piece per entry (b"" for an entry left out), the close
            n = len(S.FAULT_NAMES) if i == 19 else len(c["loads"])
            j = k - 1
            if j > n:
                return None
            if k == 0:
                v = '"advice":[' if i == 16 else '"loads":{' if i == 18 else '"faults":['
            elif j == n:
                v = "}" if i == 18 else "]"
            else:
                m = st.advice if i == 16 else st.faults if i == 19 else -1
                if not m >> j & 1:
                    return b""
                v = S.FAULT_NAMES[j] if i == 19 else c["loads"][j]["name"]
                # a comma when an entry before this one was written
                v = ('%s"%s":"%s"' % ("," if j else "", v, "on" if st.loads[j] else "off")
                     if i == 18 else '%s"%s"' % ("," if m & ((1 << j) - 1) else "", v))
            return v.encode()
        elif i == 20:
            # the message as a JSON string, 20 characters a piece
            j = len(st.error)
            if k > (j + 19) // 20 + 1:
                return None
            v = ('"error":"' if k == 0 else '"' if (k - 1) * 20 >= j else
                 json.dumps(st.error[k * 20 - 20:k * 20])[1:-1])
            return v.encode()
        elif i == 21:
            k, v = "trip_soc_pct", st.trip_soc_pct
        elif i == 22:
            k, v = "dr_w", st.dr_limit_w
        elif i == 23:
            k, v = "dr_until", _hm(st.dr_until if st.dr_limit_w else -1, c["tz_offset_min"] * 60)
        elif i == 24:
            q = st.bus                  # modbus.Bus error counters since boot
            if q is None:
                return None
            k, v = "bus", '{"crc":%d,"timeout":%d,"exc":%d}' % (q.crc_errors, q.timeouts,
                                                                q.exceptions)
        else:
            j = i - _N
            if not self.clr >> j & 1:
                return None
            k, v = _CMDS[3 + j], "null"
        return ('"%s":%s' % (k, v)).encode()

    def _rx(self, s):
        # One MQTT packet from the broker, read here and not by umqtt's check_msg(), which reads
        # a whole PUBLISH into a new block of its size: the payload goes into self.buf, and one
        # that does not fit is read and dropped in pieces (docs/netpie.md, limits). Returns the
        # packet type byte. A short read (timeout inside a packet) raises: the link is dropped.
        x = self._read1(s)
        n = sh = 0
        while True:                     # remaining length, 1-4 bytes
            c = self._read1(s)
            n |= (c & 0x7F) << sh
            if not c & 0x80:
                break
            sh += 7
            if sh > 21:
                raise OSError(0)        # not MQTT
        if x & 0xF0 != 0x30:
            self._drop(s, n)            # SUBACK, PINGRESP: nothing the meter needs
            return x
        k = self._read1(s) << 8 | self._read1(s)    # topic length
        q = 2 if x & 6 else 0           # a packet id follows the topic at qos 1/2
        if k + q > n:
            raise OSError(0)
        n -= 2 + k + q
        t = None
        if k <= _TOPIC:
            t = self._readn(s, k)
        else:
            self._drop(s, k)
        self._drop(s, q)
        b = self.buf
        m = len(b)
        sh = t == b"@shadow/data/updated" or t == b"@private/shadow/data/get/response"
        if t is None or n > m and not sh:
            self._drop(s, n)
            self._msg(t or b"", None, n)    # refused with a clear error, nothing applied
            return x
        if n < m:
            m = n
        mv = memoryview(b)
        i = 0
        while i < m:
            r = s.readinto(mv[i:m])
            if not r:
                raise OSError(0)
            i += r
        if m < n:
            # A shadow message too big for the buffer (a huge value someone wrote stays in the
            # shadow and comes back in every get response): the members that fit are taken, the
            # rest is dropped, and all our command fields are written again, so a huge value in
            # one of them is replaced; reported once per size, not on every reconnect
            self._drop(s, n - m)
            if n != self.big:
                self.st.error = "cloud: message of %d B cut to %d B" % (n, m)
                self.st.dirty = True
            self.big = n
            for i in range(3):
                self.h[i] = -1
            self.clr = 15
        self._msg(t, b, m)
        return x

    def _read1(self, s):
        c = s.read(1)
        if not c:
            raise OSError(0)
        return c[0]

    def _readn(self, s, n):
        c = s.read(n) if n else b""
        if len(c) != n:
            raise OSError(0)
        return c

    def _drop(self, s, n):
        # read n bytes and throw them away, a buffer's worth at a time
        mv = memoryview(self.buf)
        while n > 0:
            r = s.readinto(mv[:n if n < len(mv) else len(mv)])
            if not r:
                raise OSError(0)
            n -= r

    def _msg(self, t, d, n=-1):
        # one PUBLISH (topic t; payload d[:n], in the packet buffer; n < 0: all of d): a command
        # on @msg/<alias>/<name>, or shadow data
        st = self.st
        if n < 0:
            n = len(d)
        try:
            a = b"@msg/" + self.c["netpie"]["alias"].encode() + b"/"
            if d is None:               # too big for the buffer (or its topic): already dropped
                st.error = (t[len(a):].decode()[:24] + ": too long" if t[:len(a)] == a else
                            "cloud: message of %d B dropped (limit %d B)" % (n, _BUF) if t else
                            "cloud: topic over %d B dropped" % _TOPIC)
                st.dirty = True
                return
            if t[:len(a)] == a:
                self.big = 0
                t = t[len(a):]
                if t == b"house_profile" or t[:14] == b"house_profile/":
                    # a read, not a setting: the answer goes to .../house_profile/data (whose
                    # echo comes back here and is ignored)
                    self.pr |= len(t) == 13
                    return
                # apply() takes at most 128 B: a longer payload is cut to 129 to be refused
                apply(st, self.c, t.decode(), d[:n if n < 129 else 129])
                st.dirty = 2            # its effect goes out at once (_step)
                return
            g = t == b"@private/shadow/data/get/response"
            if not (g or t == b"@shadow/data/updated"):
                return
            if g and self.ph == 3:
                self.ph = 4
            # Walk the members of "data" in the raw bytes and json-parse only the values of
            # command fields: the full shadow (own telemetry) is never built as objects
            j = d.find(b'"data"', 0, n)
            m = d.find(b"{", j, n) if j >= 0 else -1
            if m < 0 or d[j + 6:m].strip() != b":":
                return              # no "data" object
            j = m
            m = j + 1               # start of the current member
            dep = q = e = 0         # nesting depth, inside a string, after a backslash
            for i in range(j, n):
                c = d[i]
                if q:
                    if e:
                        e = 0
                    elif c == 92:
                        e = 1
                    elif c == 34:
                        q = 0
                    continue
                if not dep and i > j:
                    break           # end of "data"
                if c == 34:
                    q = 1
                    continue
                if c == 123 or c == 91:
                    dep += 1
                    continue
                if c != 44 and c != 125 and c != 93:
                    continue
                x = dep == 1 and c != 93 and i > m      # a member of "data" ends here
                if c != 44:
                    dep -= 1
                if not x:
                    continue
                x = d.find(b'"', m)                 # the member's key, without copying it
                k = d.find(b'"', x + 1)
                m = i + 1
                if not 0 < k - x < 14 or not _CMD_LENS >> k - x & 1:
                    continue                        # no command name has this length
                k = d[x + 1:k].decode()
                if k not in _CMDS:
                    continue
                v = json.loads(d[x + len(k) + 2:i].strip()[1:])
                if v is None:
                    continue
                if k == "load":
                    self.clr |= 1
                    if type(v) is not dict:
                        st.error = 'load: want {"<name>":"on"|"off"}'
                        st.dirty = True
                        continue
                    for x in v:
                        if v[x] is not None:
                            apply(st, self.c, "load/" + x, v[x])
                    st.dirty = 2
                elif _CMDS.index(k) > 3:     # trip, dr, reset_ev_soc
                    self.clr |= 1 << _CMDS.index(k) - 3
                    apply(st, self.c, k, v)
                    st.dirty = 2
                else:
                    # own-echo rule (docs/netpie.md): a value equal to what this device sent last
                    # is its own echo; while a sent value waits for its echo (at most _UNC ms, and
                    # always in a get response after a reconnect) other values are stale echoes
                    n = _CMDS.index(k)
                    old = (st.target_min, st.emergency, st.choice, st.error, st.dirty)
                    if apply(st, self.c, k, v):
                        self.h[n] = -1    # rewrite the bad shadow value with ours
                        st.dirty = 2
                        continue
                    y = self._val(n)
                    x = _fp(y) & 0x3FFFFFFF
                    y = y == ('"%s":%s' % (k, json.dumps(v))).encode()   # in our own form?
                    if x == self.h[n]:
                        self.uc &= ~(1 << n)    # our own value: the echo we waited for
                        if not y:
                            self.h[n] = -1    # same value as "on", 450...: rewrite it our way
                    elif not (self.uc >> n & 1 and (g or ticks_diff(ticks_ms(), self.tu) < _UNC)):
                        # someone else's value: taken. Held by the shadow in our form: not written
                        # again, else the canonical form replaces it
                        self.h[n] = x if y else -1
                        self.uc &= ~(1 << n)
                        st.dirty = 2
                        continue
                    st.target_min, st.emergency, st.choice, st.error, st.dirty = old
        except Exception as e:  # a malformed message must not cost the connection
            st.error = "cloud: bad message " + repr(e)[:30]
            st.dirty = True
