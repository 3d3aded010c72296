"""control.Control on CPython with a fake board and bus: a MemoryError inside a tick drops that
tick only, and the tasks keep running (a dead control task would stop the limit being enforced)."""
import asyncio
import json
import os

import config
import control
import meter
import state as S

from conftest import FIRMWARE

with open(os.path.join(FIRMWARE, "config.json.example")) as f:
    CFG = config.validate(json.load(f))


class Board:
    SPEED = 1
    STORE = None

    def __init__(self):
        self.t = 0
        self.saves = 0

    def ticks_ms(self):
        return self.t

    def ticks_diff(self, a, b):
        return a - b

    def utc(self):
        return 1_764_000_000 + self.t // 1000

    def relay(self, pin, on):
        pass

    async def sleep(self, ms):
        self.t += ms
        await asyncio.sleep(0)


class Bus:
    """Every read times out; the first `boom` reads raise MemoryError instead."""
    exceptions = timeouts = last_exc = 0

    def __init__(self, boom):
        self.boom = boom

    async def read_regs(self, addr, fc, start, count):
        if self.boom:
            self.boom -= 1
            raise MemoryError("no free block")
        return None

    async def write_regs(self, addr, start, values):
        return False

    async def write_reg(self, addr, reg, value):
        return False


def run_ticks(ctl, n):
    async def go():
        t = asyncio.ensure_future(ctl.run())
        for _ in range(100000):
            if ctl.ticks + ctl.oom >= n or t.done():
                break
            await asyncio.sleep(0)
        assert not t.done(), "the control task died: %r" % t.exception()
        t.cancel()
    asyncio.run(go())


def test_memory_error_drops_one_tick_and_control_goes_on():
    st = S.State(len(CFG["loads"]))
    st.counters = meter.new()
    ctl = control.Control(CFG, st, Bus(boom=2), Board())
    run_ticks(ctl, 12)
    assert ctl.oom == 2, "each MemoryError costs exactly one tick"
    assert ctl.ticks == 10, "and the ticks after it run"
    assert st.faults & S.F_PZEM and st.faults & S.F_EVSE, "silent devices still seen as faults"
    assert st.ev_current_a == 0
