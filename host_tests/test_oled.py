"""The OLED: what each page says (CPython, oled.page_lines) and that the screen sent a line at a
time through the driver's 128-byte buffer is the frame a full framebuffer would give (MicroPython:
host_tests/mp_oled_check.py on the unix port and on the board twin)."""
import json
import os
import subprocess

import pytest

from conftest import (BUILD_LIB, FIRMWARE, ROOT, app_over_a_fake_board, import_fails_once,
                      micropython_bin)

import config
import meter
import oled
import scheduler
import state as S

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(FIRMWARE, "config.json.example")
T0 = 25 * 365 * 86400          # some UTC second since 2000 (a valid clock)


def _cfg():
    with open(EXAMPLE) as f:
        return config.validate(json.load(f))


def _state(cfg):
    st = S.State(len(cfg["loads"]))
    st.counters = meter.new()
    st.now = T0
    return st


def _check_fit(lines):
    for s in lines[:8]:
        assert len(s) <= 16, s


def test_page0_power_energy_and_bill():
    cfg = _cfg()
    st = _state(cfg)
    st.power_w, st.ev_power_w, st.limit_w = 4200, 3000, 5000
    st.counters[meter.C_DAY_OFF] = 1234
    st.counters[meter.C_DAY_PEAK] = 1000
    lines = oled.page_lines(st, cfg, 0)
    _check_fit(lines)
    assert lines[1] == "P 4200W"
    assert lines[2] == "H 1200 EV 3000"
    assert lines[3] == "Lim 5000W"
    assert lines[4] == "Day 2.23kWh"
    st.pzem_misses = 1                  # a missed read: the figures are marked old
    lines = oled.page_lines(st, cfg, 0)
    assert lines[1] == "P 4200W old" and lines[2] == "H ? EV ?"


def test_page1_plan_and_unknown_soc():
    cfg = _cfg()
    st = _state(cfg)
    st.ev_state, st.ev_current_a, st.ev_power_w, st.ev_soc_pct = 3, 16, 3680, 40
    st.target_min = 7 * 60 + 30
    p = [0] * 10
    p[scheduler.P_OK], p[scheduler.P_SOC] = 0, 83
    p[scheduler.P_SHED_SOC], p[scheduler.P_EM_SOC], p[scheduler.P_TRIP] = 90, 100, 6
    st.plan = tuple(p)
    lines = oled.page_lines(st, cfg, 1)
    _check_fit(lines)
    assert lines[:3] == ["EV C 16A 3680W", "SOC 40% >07:30", "Plan accept"]
    assert lines[3] == "Reach 83%" and lines[4] == "Shed 90% Em100%"
    assert lines[5] == "Trip A- S+ E+"
    st.ev_soc_pct = -1                  # a charger without SOC: energy, not percent
    lines = oled.page_lines(st, cfg, 1)
    assert lines[1] == "SOC ? >07:30" and lines[3].startswith("+") and "by 07:30" in lines[3]


def test_page2_faults_banner_and_clock():
    cfg = _cfg()
    st = _state(cfg)
    st.faults = S.F_CLOCK | S.F_CLOUD
    for page in (0, 1, 2):
        lines = oled.page_lines(st, cfg, page)
        _check_fit(lines)
        assert lines[0] == "FAULT clock+"       # the banner tops every page: what fits, then +
    lines = oled.page_lines(st, cfg, 2)
    assert "no time:EV held" in lines and "FAULT clock" in lines and "FAULT cloud" in lines
    st.faults = S.F_PZEM
    assert oled.page_lines(st, cfg, 0)[0] == "FAULT pzem"


@pytest.mark.parametrize("binary", ["unix", "twin"])
def test_screen_a_line_at_a_time_is_the_full_frame(binary):
    exe = micropython_bin() if binary == "unix" else os.path.join(ROOT, "build", "twin",
                                                                  "micropython")
    if binary == "twin" and not os.path.exists(exe):
        pytest.skip("no board twin (make twin)")
    env = dict(os.environ, MICROPYPATH=FIRMWARE + ":" + BUILD_LIB + ":.frozen")
    r = subprocess.run([exe, os.path.join(HERE, "mp_oled_check.py")], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "ALL OK" in r.stdout, r.stdout + r.stderr


def test_the_display_task_outlives_a_memory_error_in_its_first_import(monkeypatch):
    # at a 26K heap the twin's display task died for good: `import oled` at its start found no
    # 244 B block (the MemoryError ended the task, the OLED stayed dark). Now the import is
    # retried with the next page.
    import asyncio
    import sys
    import types
    pages = []

    async def sleep(ms):
        if len(pages) >= 2:
            raise asyncio.CancelledError
        await asyncio.sleep(0)

    app = app_over_a_fake_board(monkeypatch, sleep)
    fake_oled = types.ModuleType("oled")
    fake_oled.draw = lambda fb, st, cfg, page: pages.append((page, "oled" in sys.modules))
    failed = import_fails_once(monkeypatch, "oled", fake_oled, 244)
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(app._display(None, None, None))
    assert failed and pages == [(0, True), (0, True)]
    # and the module is dropped after each page: its code does not hold the heap between pages
    assert "oled" not in sys.modules
