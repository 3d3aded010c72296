# The meter application (imported by main.py): wires the modules together and starts the asyncio
# tasks; the logic lives in the modules.
#   control  0.5 s  PZEM + charger over the bus, allocation, relays, plan, metering (control.py)
#   persist  1 s    store checkpoints (Control.persist)
#   display  2 s    OLED pages (oled.py)
#   cloud           NETPIE telemetry and commands (netpie.py), never awaited by control
#   clock    hourly NTP (clock.py, imported for each sync)
#   watchdog 0.5 s  feeds the hardware WDT while the control task is alive; heap housekeeping
import gc
import sys

import asyncio
import board


def _panel():
    # the OLED (oled.panel), or None; oled is dropped again
    try:
        import oled
        return oled.panel(board.i2c())
    finally:
        sys.modules.pop("oled", None)


async def _display(pn, st, cfg):
    n = 0
    while True:
        try:
            # imported for each page and dropped after it: its code would otherwise hold
            # ~600 B of the heap between pages. At a low heap the import itself may fail
            import oled
            oled.draw(pn, st, cfg, n // 3 % 3)
        except MemoryError:
            pass                    # a page skipped; the next one in 2 s
        oled = None
        sys.modules.pop("oled", None)
        n += 1
        await board.sleep(2000)


async def _watchdog(ctl):
    seen = -1
    late = 0
    n = 0
    faults = -1
    plan = None
    while True:
        # feed only while the control task makes progress: a hung loop resets the board
        if ctl.ticks != seen:
            seen = ctl.ticks
            late = 0
        else:
            late += 1
        if late < 10:
            board.feed()
        elif late > 20:
            board.reset()           # the hardware WDT should have fired already
        n += 1
        st = ctl.st
        if n % 20 == 0 or st.faults != faults or st.plan is not plan:
            faults = st.faults
            plan = st.plan
            gc.collect()
            gc.threshold(gc.mem_free() // 4 + gc.mem_alloc())
            if board.REPORT:        # the host harness reads these; the board has no reader
                q = ctl.bus
                try:                # a host-only line: its MemoryError must not stop this task
                    board.report('{"t":%d,"heap":%d,"free":%d,"p":%d,"ev_a":%d,"soc":%d,'
                                 '"f":%d,"gap":%d,"oom":%d,"skip":%d,"crc":%d,"to":%d,'
                                 '"exc":%d,"plan":%s}' % (
                                     st.now, gc.mem_alloc(), gc.mem_free(), st.power_w,
                                     st.ev_current_a, st.ev_soc_pct, st.faults, ctl.gap_ms,
                                     ctl.oom, st.tele_skips, q.crc_errors, q.timeouts,
                                     q.exceptions, "[%d,%d,%d]" % (plan[0], plan[1], plan[3])
                                     if plan else "null"))
                except MemoryError:
                    pass
        await asyncio.sleep_ms(500)


async def _clock(host, cloud):
    # NTP at boot, every 30 s until a server answers, then hourly (clock.sync). clock.py is
    # imported for each attempt and dropped after it: between syncs its code would hold about
    # 0.8 KB of heap (docs/benchmarks.md section 0)
    addr = [None]                   # the server's address, resolved once
    n = 0
    while cloud and cloud.u and n < 30:
        # the cloud's first connect goes first while it holds umqtt.simple (~1 KB) for it: at
        # a 24K heap clock.py loaded beside it left the connect no room (at most 30 s)
        await board.sleep(1000)
        n += 1
    while True:
        ms = 30000
        try:
            import clock
            ms = await clock.sync(board, host, addr)
        except MemoryError:
            pass                    # no room to load it now: again in 30 s
        clock = None
        sys.modules.pop("clock", None)
        await board.sleep(ms)


def run():
    if board.safe_mode():
        print("safe mode: REPL kept, meter not started")
        return
    # the modules the meter keeps, before the config's parse: their objects and qstr pools go to
    # the bottom of the heap in one run, and the parse's temporaries leave one hole above them
    import control  # noqa: F401
    import modbus  # noqa: F401
    import config
    try:
        cfg = config.load(board.CONFIG)
    except ValueError as e:
        # refuse to run on a bad config: say which field, and stop
        print("config error:", e)
        pn = _panel()
        if pn:
            import oled
            oled.fatal(pn, "CONFIG " + str(e))
        board.report('{"fatal":"%s"}' % str(e).replace('"', "'"))
        return
    del config                      # needed only at boot: free its code
    del sys.modules["config"]
    gc.collect()
    import meter
    import state
    import store
    st = state.State(len(cfg["loads"]))
    st.counters = meter.new()
    seq, bad = store.load(board.STORE, st)
    st.profile = bytearray(meter.PROFILE_SIZE)
    bad += store.load_profile(board.STORE, st.profile)
    if bad:
        st.faults |= state.F_STORE
    board.wifi(cfg["wifi"]["ssid"], cfg["wifi"]["password"])
    asyncio.run(_run(cfg, st, seq, bad))


async def _run(cfg, st, seq, bad):
    # the big buffers first, while the heap still has long runs of free blocks: the cloud's
    # 1 280 B packet buffer (made after the control task's objects it found no hole at a 29K
    # heap); then the OLED panel, whose driver needs ~1.4 KB for a moment; then umqtt.simple
    # and its client for the first connect (~1 KB, dropped after it: after the tasks had
    # started they failed to load for minutes at 25K, and before the panel the heap did not
    # boot at 24K)
    cloud = None
    if cfg["netpie"]["client_id"]:
        import netpie
        cloud = netpie.Cloud(cfg, st, board)
    pn = _panel()
    if cloud:
        cloud.prepare()
    import control
    import meter
    import modbus
    ctl = control.Control(cfg, st, modbus.Bus(board.uart()), board)
    asyncio.create_task(ctl.run())
    asyncio.create_task(ctl.persist(seq if seq > 0 else 0))
    if pn:
        asyncio.create_task(_display(pn, st, cfg))
    if board.NTP and cfg["wifi"]["ssid"]:
        asyncio.create_task(_clock(cfg["ntp_host"], cloud))
    if cloud:
        asyncio.create_task(cloud.run())
        cloud = None
    board.watchdog()
    gc.collect()
    board.report('{"boot":1,"seq":%d,"bad_slots":%d,"wh":%d,"heap":%d,"free":%d}' % (
        seq, bad, st.counters[meter.C_TOTAL], gc.mem_alloc(), gc.mem_free()))
    await _watchdog(ctl)

