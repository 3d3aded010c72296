# The control tick, twice a second: read the PZEM and the charger over the shared bus, turn
# readings + user settings into a charger current (scheduler.allocate), relay states, advice and
# the plan, and account the energy (meter). This is the one place limits are enforced; cloud
# commands only change settings in the State. A second coroutine (persist) checkpoints the store.
import gc
import random

import evse
import meter
import pzem
import scheduler
import state as S
import store

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

# private constants (const, leading _) cost no RAM on the board: no qstr, no module dict entry
_GUARD_S = const(30)        # pause this long before a peak window: a charger takes seconds to stop
_KEEPALIVE_S = const(10)    # re-send the current so the charger's timeout never trips
_PLAN_S = const(30)         # recompute the plan at least this often
_FALLBACK_S = const(30)     # charger communication timeout: it falls back to 0 A if we go silent
_PERIOD_MS = const(500)     # control tick: a load step is answered within a tick + bus time (< 1 s)
# IEC 61851: a car follows a new current within 5 s; the meter sees it up to 1.5 s later (the
# PZEM refreshes its reading about once a second, plus a tick): a cut is judged after 6.5 s
_FOLLOW_MS = const(6500)
_RAISE_MS = const(10000)    # a raise may take longer (no bound in IEC 61851): judged after 10 s


class Control:
    def __init__(self, cfg, st, bus, board):
        self.cfg = cfg
        self.st = st
        self.bus = bus
        st.bus = bus
        self.b = board
        self.ok_since = -1          # scheduler.allocate anti-flap state
        self.ms = 0                 # simulated/monotonic ms since boot (no 2^30 wrap)
        self.last = board.ticks_ms()
        self.pend_ms = 0            # time since the last good PZEM reading
        self.sent_s = -_KEEPALIVE_S  # when the charger current was last written
        self.up_s = -1              # when it was last raised
        self.plan_s = -_PLAN_S
        self.sig = -1               # what the cloud/OLED show, packed; change -> st.dirty
        self.psig = [-2, 0, 0, 0, 0]    # settings the plan was made with
        self.choice = st.choice
        self.choice_until = 0
        self.relays = -1
        self.configured = False
        self.sess_wh = 0            # EV energy since plug-in / SOC reset, for the SOC estimate,
        self.sess_rem = 0           # in Wh + a W*ms remainder (no long ints on the ESP8266)
        self.start_soc = st.start_soc_pct
        self.ticks = 0              # the watchdog task feeds only while this moves
        self.gap_ms = 0
        self.oom = 0                # ticks lost to MemoryError (reported)
        self.ev_prev = 0            # the EV's power last tick, and how many ms it has held still
        self.steady = 0
        # without a measured EV power (docs/architecture.md "The EV's draw"): the draw the total
        # holds (W) once the car has followed, and while it follows a change: the draw before
        # (d0), the one expected (d1), the total (t0) and ms (tc, -1 = settled) at the change
        self.ev_w = 0
        self.d0 = 0
        self.d1 = 0
        self.t0 = 0
        self.tc = -1
        self.cap = False            # a raise found the car at its own limit
        # start-of-off-peak randomisation: after a peak window charging waits until `hold` (UTC
        # s), a random 0..start_delay_max_s drawn one window ahead, so the plan counts it
        self.was_peak = False
        self.rnd = 0                # charger.spread: this session's random start, 0..99 %
        self.hold = 0
        self.delay = self.draw_delay()
        # the learned household load: this half-hour's profile slot, its W x 100 ms and 100 ms
        # so far, the local seconds of its first and last tick; learned: save the profile
        self.slot = -1
        self.hw = self.hd = self.h0 = self.hl = 0
        self.learned = False
        # what decide() leaves for the charger write and finish() in the same tick: W per amp,
        # the household load (W), emergency power and a demand-response limit in force
        self.per_a = 230
        self.house_w = 0
        self.emerg = False
        self.dr = False

    def decide(self, dt, r, r2, e):
        # readings in (PZEM r, the EV circuit's PZEM r2, charger e: None missed, 0 spoilt):
        # state, tariff, limit and the EV current; returns the current to write to the
        # charger now, or -1 for none
        b = self.b
        st = self.st
        cfg = self.cfg
        ch = cfg["charger"]
        t_s = self.ms // 1000
        faults = st.faults & ~(S.F_PZEM | S.F_EVSE | S.F_CLOCK)
        if r:
            st.pzem_misses = 0
            st.voltage_dv = r[0]
            st.power_w = r[2] // 10
        else:
            st.pzem_misses += 1
        if st.pzem_misses >= 3:
            faults |= S.F_PZEM
        # volts rounded up: amps = watts / volts must never come out too high
        volt = (st.voltage_dv + 9) // 10 if st.voltage_dv >= 900 else cfg["voltage_v"]
        per_a = volt * ch["phases"]
        if e:
            st.ev_misses = 0
            was = st.ev_state
            st.ev_state = e[1]
            if not 2 <= was <= 4 and 2 <= e[1] <= 4:
                self.sess_wh = 0            # plugged in: a new session
                self.rnd = random.getrandbits(8) % 100      # its place in the street's night
            if 2 <= was <= 4 and e[1] == 1 and st.emergency:
                st.emergency = False        # emergency charging ends with the session
                st.dirty = True
            a = e[0] if e[0] >= 6 else 0
            if a != st.ev_current_a:
                # register 1000 is the truth (a write whose reply was lost, the charger's own
                # fallback): a stop read back here restarts after the hold and ramps
                self.change(st.ev_current_a, a, per_a)
                st.ev_current_a = a
            if not 3 <= was <= 4 and 3 <= e[1] <= 4 and self.tc < 0:
                self.change(0, a, per_a)    # the car starts drawing on its own (B -> C)
        elif e is None:
            st.ev_misses += 1
        if st.ev_misses >= 3:
            faults |= S.F_EVSE
            st.ev_state = 0
            st.ev_power_w = 0
        if self.start_soc != st.start_soc_pct:
            self.start_soc = st.start_soc_pct
            self.sess_wh = 0
        rem = self.sess_rem + st.ev_power_w * dt
        self.sess_wh += rem // 3600000
        self.sess_rem = rem % 3600000
        if e and e[2] >= 0:
            st.ev_soc_pct = e[2]
        elif st.start_soc_pct >= 0 and st.ev_state:
            # no SOC from the charger: the user's start SOC + energy delivered x efficiency
            soc = st.start_soc_pct + self.sess_wh * cfg["_eff_pct"] // cfg["battery"][
                "capacity_wh"]
            st.ev_soc_pct = soc if soc < 100 else 100
        else:
            st.ev_soc_pct = -1

        now = b.utc()
        st.now = now
        if not now:
            faults |= S.F_CLOCK
        off = cfg["tz_offset_min"] * 60
        loc = now + off
        # without a valid clock the tariff is unknown: bill as peak and hold normal charging
        st.peak = peak = not now or scheduler.is_peak(
            loc // 60 % 1440, scheduler.day_windows(loc // 86400, cfg))
        soon = peak or scheduler.is_peak((loc + _GUARD_S) // 60 % 1440, scheduler.day_windows(
            (loc + _GUARD_S) // 86400, cfg))
        if self.was_peak and not peak:
            # a peak window ended: the meters of a street must not all start in this second
            self.hold = now + self.delay
            self.delay = self.draw_delay()
        self.was_peak = peak and now > 0    # (a clock that becomes valid ends no window)
        dr = st.dr_limit_w > 0 and now > 0 and now < st.dr_until
        if st.dr_limit_w and now and not dr:
            st.dr_limit_w = 0               # the DR event is over
            st.dr_until = 0
        # a plan choice lasts until the departure it was made for
        if st.choice != self.choice:
            self.choice = st.choice
            self.choice_until = 0
        if st.choice and now:
            if not self.choice_until and st.target_min >= 0:
                end = loc - loc % 86400 + st.target_min * 60
                self.choice_until = (end if end >= loc else end + 86400) - off
            if not self.choice_until or now >= self.choice_until:
                st.choice = self.choice = 0
        emerg = st.emergency or st.choice == 2
        lim = cfg["breaker_w"] if emerg else cfg["sanctioned_w"]
        if dr and st.dr_limit_w < lim:
            lim = st.dr_limit_w             # a grid request only ever lowers the limit
        else:
            dr = False                      # one above the limit changes nothing: no advice
        st.limit_w = lim
        # house = the meter's total minus the charger's power, read a moment apart: while the
        # EV's power moves (it follows a new current within seconds) the two disagree by the
        # change. While it rises the estimate can come out low: raise the current again only
        # after it held within half an amp for a second (two readings on the board; counted in
        # time, not readings, so ticks slowed by the bus wait no longer; cuts never wait).
        # While it falls the total is paired with the EV's power of the tick before, which a
        # slightly older meter reading still contains: else each cut looked like a house load
        # step and cut again
        if r2:
            ev_w = r2[2] // 10
        elif e and e[3] >= 0:
            ev_w = e[3]
        else:
            ev_w = -1
        if ev_w >= 0:                       # a measured EV power
            st.ev_power_w = ev_w
            d = ev_w - self.ev_prev
            if 2 * d <= -per_a or 2 * d >= per_a:
                self.steady = 0
            elif self.steady < 60000:       # capped: small ints on the ESP8266
                self.steady += dt
            house = st.power_w - (self.ev_prev if d < 0 and not self.steady else ev_w)
            self.ev_prev = ev_w
            wait = self.steady < 1000
        else:
            st.ev_power_w = ev_w = self.draw(r, st.ev_state, per_a)
            house = st.power_w - ev_w
            # raise only once the car has followed, and not a car at its own limit
            wait = self.tc >= 0 or self.cap
            ev_w = -1
        if house < 0:
            house = 0
        sp = -1
        if ch["spread"] and not emerg and now and st.target_min >= 0 and st.ev_soc_pct >= 0:
            # grid-friendly pace (opt-in): the lowest current that still fills the car by the
            # departure, a random start for short charges (scheduler.spread, docs/grid.md)
            end = loc - loc % 86400 + st.target_min * 60
            # paced up to the battery's taper; the taper then gets its own time, at the most
            # the limit leaves the car
            bat = cfg["battery"]
            tail = scheduler.taper_tail(st.ev_soc_pct, per_a, cfg, lim - house)
            need = ((bat["taper_soc_pct"] if tail else 100) - st.ev_soc_pct) * bat["capacity_wh"]
            sp = scheduler.spread(loc, end if end > loc else end + 86400,
                                  scheduler.day_windows(loc // 86400, cfg), need,
                                  cfg["_eff_pct"], per_a, ch, self.rnd, st.ev_current_a, tail)
        blocked = (not 2 <= st.ev_state <= 4 or faults & (S.F_PZEM | S.F_EVSE)
                   or (not emerg and (soon or now < self.hold)) or st.ev_soc_pct >= 100
                   or sp == 0)
        # the ramp is per second of time gone by: a tick slowed down ramps no slower
        amps, self.ok_since = scheduler.allocate(t_s, house, lim, volt, st.ev_current_a,
                                                 self.ok_since, ch, blocked,
                                                 dt // 1000 if dt >= 2000 else 1)
        if faults & (S.F_PZEM | S.F_EVSE):
            self.ok_since = -1              # a restart after a fault waits the whole hold
        if 0 < sp < amps:
            amps = sp
        if now and r and st.profile is not None:
            # learn the household load: a half-hour seen for 20 minutes or more is folded into
            # its slot of the profile when it ends (meter.learn)
            i = scheduler.day_type(loc // 86400, cfg) * 48 + loc % 86400 // scheduler.SLOT_S
            if i != self.slot:
                if self.hd and self.hl - self.h0 >= 1200:
                    meter.learn(st.profile, self.slot, self.hw // self.hd)
                    self.learned = True
                self.slot = i
                self.hw = self.hd = 0
                self.h0 = loc
            self.hl = loc
            q = dt // 100 if dt >= 100 else 1
            self.hw += house * q
            self.hd += q
        if amps > st.ev_current_a and (t_s == self.up_s or wait):
            amps = st.ev_current_a          # at most once a second (ramp is per s), when steady
        a = ch["min_a"]
        if ev_w < 0 and amps != st.ev_current_a and amps >= a and st.ev_current_a >= a:
            # a car draws up to half an amp less than offered (noise), so the house may be
            # that much more than it looks: move to what fits with half an amp to spare (not
            # below the minimum while it fits), or the next noisy reading cuts a second time
            x = (lim - house - per_a // 2) // per_a
            if x < amps:
                amps = x if x >= a else a
        if ev_w < 0 and st.ev_current_a < amps < st.ev_current_a + 2:
            # without a measured EV power a raise is 2 A or more: the +-0.5 A of a real car
            # hides whether it followed 1 A (and a raise it seems not to follow caps the car)
            amps = st.ev_current_a
        self.per_a = per_a
        self.house_w = house
        self.emerg = emerg
        self.dr = dr
        st.faults = faults
        if amps != st.ev_current_a or t_s - self.sent_s >= _KEEPALIVE_S:
            if amps > st.ev_current_a:
                self.up_s = t_s
            return amps
        return -1

    def finish(self, dt, r):
        # after the charger was written: energy, relays, advice, plan, what the cloud shows
        st = self.st
        cfg = self.cfg
        b = self.b
        t_s = self.ms // 1000
        now = st.now
        loc = now + cfg["tz_offset_min"] * 60
        peak = st.peak
        emerg = self.emerg
        dr = self.dr
        house = self.house_w
        faults = st.faults
        # energy: the PZEM register covers missed readings exactly, the integral approximately
        self.pend_ms += dt
        if r:
            c = st.counters
            if now:
                meter.roll(c, loc)
            # the whole gap since the last good reading (capped at a day: small ints on the
            # ESP8266); meter.add bounds what the power integrals may extrapolate
            meter.add(c, self.pend_ms if self.pend_ms < 86400000 else 86400000, st.power_w,
                      st.ev_power_w, peak, emerg and st.ev_power_w > 0, r[3])
            self.pend_ms = 0

        # relays: the user's settings, minus the non-critical loads while "shed" is chosen
        mask = 0
        for i in range(len(st.loads)):
            if st.loads[i]:
                mask |= 1 << i
        on = mask & ~cfg["_noncrit"] if st.choice == 1 else mask
        if on != self.relays:
            for i, ld in enumerate(cfg["loads"]):
                if (on ^ self.relays) >> i & 1 or self.relays < 0:
                    b.relay(ld["pin"], on >> i & 1)
            self.relays = on
        st.advice = scheduler.advice(peak or dr, on, cfg)[0]

        # settings the plan depends on, packed in place (no per-tick allocation: a tuple kept
        # from one tick to the next fragments a small heap)
        ps = self.psig
        changed = (ps[0] != st.target_min or ps[1] != (2 <= st.ev_state <= 4)
                   or ps[2] != st.trip_soc_pct or ps[3] != on or ps[4] != st.start_soc_pct)
        if changed or t_s - self.plan_s >= _PLAN_S:
            ps[0] = st.target_min
            ps[1] = 2 <= st.ev_state <= 4
            ps[2] = st.trip_soc_pct
            ps[3] = on
            ps[4] = st.start_soc_pct
            self.plan_s = t_s
            p = None
            if now and st.target_min >= 0 and 2 <= st.ev_state <= 4:
                w = 0
                for i, ld in enumerate(cfg["loads"]):
                    if on >> i & 1 and not ld["critical"]:
                        w += ld["rated_w"]
                # no SOC known: plan the charge energy alone, from an empty battery (P_SOC is
                # then the gain in % of battery.capacity_wh, docs/charger-modbus.md section 5)
                a = st.ev_soc_pct
                p = scheduler.plan(now, st.target_min, a if a >= 0 else 0, house, w,
                                   st.trip_soc_pct if a >= 0 else 0, cfg,
                                   self.hold if now < self.hold else 0, self.delay, st.profile)
            # the answer shown moves only when it matters (no flicker on every kettle); a
            # changed setting always shows its new plan
            if p != st.plan and (changed or scheduler.moved(p, st.plan)):
                st.plan = p
                st.dirty = True
        sig = st.ev_state | peak << 3 | faults << 4 | st.advice << 10 | emerg << 18 | \
            st.choice << 19 | on << 21 | dr << 29
        if sig != self.sig:
            self.sig = sig
            st.dirty = True
        self.ticks += 1

    def draw_delay(self):
        # seconds, uniform in 0..start_delay_max_s (small ints: 16 random bits x at most 3601)
        return random.getrandbits(16) * (self.cfg["charger"]["start_delay_max_s"] + 1) >> 16

    def change(self, a, b, per_a):
        # the offered current goes from a to b A: the car's draw will move from what the total
        # holds now to at most b A, and by at most the step on a raise (a car under its own
        # limit takes less than offered)
        d = self.st.ev_power_w      # the draw as it stands, mid-follow too
        self.d0 = d
        self.t0 = self.st.power_w
        self.tc = self.ms
        m = b * per_a
        if b > a:
            x = d + (b - a) * per_a
            self.d1 = m if m < x else x
        elif m < d:
            self.d1 = m
            self.cap = False                # below its own limit again: it follows raises
        else:
            self.d1 = d

    def draw(self, fresh, ev_state, per_a):
        # -> the EV's draw the meter's total holds now (W), learned from how the total moved
        # when the current changed: while the car follows, the old draw plus the part of the
        # expected move the total already shows; then the new one, or on a raise the car did
        # not follow (it is at its own limit) the old one plus what the total did move
        d0 = self.d0
        x = self.d1 - d0
        if self.tc >= 0:
            m = self.st.power_w - self.t0 if fresh else 0
            if x < 0:
                m = x if m < x else 0 if m > 0 else m
            else:
                # a rise beyond what the raise can explain is the house (a step while the car
                # follows): the car is taken as not moved yet, so the house is not underrated
                m = 0 if m < 0 or 2 * (m - x) > per_a else x if m > x else m
            t = self.ms - self.tc
            if x <= 0:
                if 2 * (m - x) < per_a or t >= _FOLLOW_MS:
                    self.ev_w = self.d1     # followed the cut (within half an amp)
                    self.tc = -1
                    return self.ev_w
            elif m >= per_a and 2 * (x - m) < per_a:
                self.ev_w = self.d1         # followed the raise: a move noise cannot fake
                self.tc = -1
                return self.ev_w
            elif t >= _RAISE_MS:
                if m < per_a:               # did not follow: at its own limit
                    m = 0
                    self.cap = True
                self.ev_w = d0 + m
                self.tc = -1
                return self.ev_w
            return d0 + m
        elif not 3 <= ev_state <= 4:
            self.ev_w = 0                   # not charging: the total is the house alone
            self.cap = False
        return self.ev_w

    async def persist(self, seq):
        """Task: checkpoint counters + settings to the store (the older of its two slots) when
        5 Wh have accrued, when a setting changed, and at least every 60 s while energy flows.
        A failed write (flash full or failing) is retried the next second."""
        st = self.st
        b = self.b
        wh0 = -1
        at = b.ticks_ms()
        sv = [None] * 8             # settings as last saved
        while True:
            await b.sleep(1000)
            try:
                wh = st.counters[meter.C_TOTAL]
                # the persisted settings, compared in place (no tuple kept between seconds)
                m = 0
                for i in range(len(st.loads)):
                    m |= st.loads[i] << i
                now_v = (st.target_min, st.emergency, st.choice, st.trip_soc_pct,
                         st.start_soc_pct, st.dr_limit_w, st.dr_until, m)
                sig = 0
                for i in range(8):
                    if sv[i] != now_v[i]:
                        sv[i] = now_v[i]
                        sig = 1
                del now_v
                # 5 Wh: with this 1 s check and the tick lag a kill loses at most 10 Wh
                if (wh0 >= 0 and wh - wh0 >= 5 or sig
                        or (wh != wh0 and b.ticks_diff(b.ticks_ms(), at) >= 60000)):
                    try:
                        store.save(b.STORE, seq + 1, st)
                    except OSError:
                        sv[0] = None            # flash said no: retry next second
                        continue
                    seq += 1
                    wh0 = wh
                    at = b.ticks_ms()
                if self.learned:
                    self.learned = False
                    try:
                        store.save_profile(b.STORE, st.profile)
                    except OSError:
                        self.learned = True     # retry next second
            except MemoryError:
                sv[0] = None                # no free block: retry next second

    async def run(self):
        # The control task: one coroutine for the life of the meter. Only the bus transfers are
        # awaited here; the work is in plain methods (decide, finish). Each call of a coroutine
        # allocates its locals as one heap object: a per-tick coroutine holding all of this took
        # 264 B, 17 free blocks in a row, the allocation that failed first at a 27K heap; a
        # plain method's frame goes on the C stack when the heap has no room for it. The
        # transfers awaited here are the bus itself (modbus.Bus.xfer), not coroutines either
        b = self.b
        bus = self.bus
        cfg = self.cfg
        ch = cfg["charger"]
        while True:
            t0 = b.ticks_ms()
            dt = b.ticks_diff(t0, self.last)
            self.last = t0
            dt = 0 if dt < 0 else 60000 if dt > 60000 else dt
            if dt > self.gap_ms:
                self.gap_ms = dt            # the longest time between two ticks (reported)
            self.ms += dt
            try:
                r = await pzem.read(bus, cfg["pzem"]["addr"])
                a = cfg["pzem"]["ev_addr"]
                r2 = None
                if r and a:
                    r2 = await pzem.read(bus, a)    # the EV circuit's own PZEM: exact power
                    if not r2:
                        r = None                    # a missed EV reading is a PZEM miss
                a = bus.foreign
                e = await evse.read(bus, ch["addr"])
                if e and evse.no_ext != ch["addr"]:
                    e = await evse.read_ext(bus, ch["addr"])    # SOC, power, session energy
                if not e and bus.foreign != a:
                    e = 0                   # spoilt by another slave's late reply: not a miss
                if e and not self.configured:
                    # (the simulated board runs up to x1200, where ticks are tens of simulated
                    # seconds apart: its charger's timeout, in simulated time, is stretched)
                    self.configured = await evse.configure(
                        bus, ch["addr"], _FALLBACK_S * (1 + int(b.SPEED) // 100), 0)
                a = self.decide(dt, r, r2, e)
                if a >= 0 and await evse.set_current(bus, ch["addr"], a):
                    st = self.st
                    if a != st.ev_current_a:
                        self.change(st.ev_current_a, a, self.per_a)
                    st.ev_current_a = a
                    self.sent_s = self.ms // 1000
                self.finish(dt, r)
            except MemoryError:
                # no free block in a fragmented heap: drop this tick, the next one starts from
                # fresh readings. A heap that stays full stops self.ticks, and the watchdog
                # resets the board (the store keeps the billing data)
                self.oom += 1
                gc.collect()
            used = b.ticks_diff(b.ticks_ms(), t0)
            await b.sleep(_PERIOD_MS - used if used < _PERIOD_MS - 50 else 50)
