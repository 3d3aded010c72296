"""The web dashboard (dashboard/, served by the NETPIE stand-in) in headless Chromium against the
simulated meter (python -m sim.run): live values, the departure slider and the plan card, "shed"
and the relays, emergency charging, a refused value, a broker outage. Screenshots of each step
go to the test's output folder (printed with -s). Needs Debian's chromium + chromium-driver and
selenium (dev extra); skipped with the reason otherwise. docs/dashboard.md section 6."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT

try:
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
except ImportError:  # pragma: no cover - the dev extra installs it
    webdriver = None

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver") or (
    "/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver") else None)
pytestmark = pytest.mark.skipif(
    webdriver is None or not CHROMIUM or not DRIVER,
    reason="browser test needs selenium (pip install -e '.[dev]') and Debian's chromium + "
           "chromium-driver (apt-get install chromium chromium-driver; .ci/run does)")

# 20:50 local, in the peak window (17:00-22:00): the EV is plugged in at 30 %, all loads on, a
# departure at 07:30; the house leaves the EV 7 A under the 5 kW limit (off-peak only).
SCENARIO = {
    "name": "dashboard_browser", "start": "2025-01-15 20:50", "hours": 3,
    "house": [{"at": "20:50", "w": 700}],
    "loads": [{"at": "20:50", "name": n, "use": True} for n in ("fridge", "heater", "ac")],
    "ev": [{"at": "20:50", "plug": True, "soc": 30, "capacity_wh": 60000}],
    "charger": {"no_ext": False, "delay_s": 2, "cable_a": 32},
    "commands": [{"at": "20:50", "cmd": "load/" + n, "value": "on"}
                 for n in ("fridge", "heater", "ac")]
    + [{"at": "20:50", "cmd": "target", "value": "07:30"},
       {"at": "20:50", "cmd": "trip", "value": "150"}],
}
SPEED = 10
WAIT = 20           # seconds a step may take to show (a bound, not a measured figure)


class Meter:
    """python -m sim.run headless in a subprocess, its dashboard URL and run directory."""

    def __init__(self, tmp):
        self.dir = tmp / "run"
        scen = tmp / "scenario.json"
        scen.write_text(json.dumps(SCENARIO))
        self.out = open(tmp / "sim.out", "w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sim.run", "--scenario", str(scen), "--speed", str(SPEED),
             "--sim-dir", str(self.dir), "--dashboard-port", "0"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=self.out, text=True)
        self.url = None
        end = time.time() + 90
        while time.time() < end and self.url is None:
            line = self.proc.stdout.readline()
            if not line:
                break
            if line.startswith("dashboard: "):
                self.url = line.split(" ", 1)[1].strip()
        if not self.url:
            self.stop()
            self.out.seek(0)
            pytest.fail("sim.run printed no dashboard line: %s" % self.out.read()[-2000:])

    def relays(self):
        try:
            with open(self.dir / "relays") as f:
                return {int(p): int(v) for p, v in (ln.split() for ln in f if ln.strip())}
        except (OSError, ValueError):
            return {}

    def shadow(self):
        try:
            with open(self.dir / "netpie" / "shadow-meter-0001.json") as f:
                return json.load(f)["data"]
        except (OSError, ValueError):
            return {}

    def outage(self):
        self.proc.send_signal(signal.SIGUSR2)       # sim.run: stop / restart the stand-in

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()


@pytest.fixture(scope="module")
def outdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("dashboard")
    print("\nscreenshots: %s" % d)
    return d


@pytest.fixture(scope="module")
def meter(outdir):
    m = Meter(outdir)
    yield m
    m.stop()


@pytest.fixture(scope="module")
def browser(meter, outdir):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1400,1500", "--hide-scrollbars"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        d = webdriver.Chrome(service=Service(DRIVER), options=opts)
    except WebDriverException as e:
        pytest.skip("chromium did not start: %s" % str(e).splitlines()[0])
    d.set_page_load_timeout(30)
    yield d
    d.quit()


def wait_for(what, cond, timeout=WAIT):
    end = time.time() + timeout
    last = None
    while time.time() < end:
        try:
            last = cond()
        except Exception as e:  # noqa: BLE001 - the page may be re-rendering
            last = e
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.25)
    raise AssertionError("%s: not within %s s (last: %r)" % (what, timeout, last))


def text(d, el_id):
    return d.find_element(By.ID, el_id).text


def shot(d, outdir, name):
    d.save_screenshot(str(outdir / ("%s.png" % name)))


def severe(d):
    return [e for e in d.get_log("browser") if e.get("level") == "SEVERE"]


def test_01_page_loads_and_shows_live_power(browser, meter, outdir):
    d = browser
    d.get(meter.url)
    wait_for("live power", lambda: "W of" in text(d, "headline") and text(d, "link") == "live")
    wait_for("the gauges", lambda: "W" in d.find_element(By.ID, "g-power").text)
    first = text(d, "headline")
    assert text(d, "ev-state") == "Plugged in, not charging"     # peak: the EV waits
    # the departure comes with the shadow's settings, which may land a moment after live power
    wait_for("the departure", lambda: text(d, "dep-value") == "07:30")
    assert text(d, "soc").endswith("%")
    wait_for("the loads", lambda: d.find_element(By.ID, "load-ac").is_selected())
    shot(d, outdir, "01-loaded")
    assert severe(d) == [], "console errors: %r" % severe(d)
    assert first.split(" of ")[0].strip()           # a number with its unit


def plan_text(d):
    return " | ".join(text(d, i) for i in ("plan-ok", "plan-full-at", "options"))


def test_02_departure_slider_changes_the_plan(browser, meter, outdir):
    d = browser
    before = wait_for("a plan", lambda: "07:30" in text(d, "plan-ok") and plan_text(d))
    slider = d.find_element(By.ID, "departure")
    slider.click()                                   # the middle: about 12:00
    for _ in range(8):
        slider.send_keys(Keys.ARROW_LEFT)           # 15 min a step: 10:00 or so
    chosen = text(d, "dep-value")
    assert chosen != "07:30"
    wait_for("the meter's target", lambda: meter.shadow().get("target") == chosen)
    after = wait_for("a new plan card", lambda: chosen in text(d, "plan-ok") and
                     plan_text(d) != before and plan_text(d))
    assert "07:30" not in after
    shot(d, outdir, "02-departure-%s" % chosen.replace(":", ""))


def test_03_shed_switches_the_non_critical_loads_off(browser, meter, outdir):
    d = browser
    cfg = json.load(open(os.path.join(ROOT, "firmware", "config.json.example")))
    noncrit = [ld["pin"] for ld in cfg["loads"] if not ld["critical"]]
    crit = [ld["pin"] for ld in cfg["loads"] if ld["critical"]]
    wait_for("relays on", lambda: all(meter.relays().get(p) == 1 for p in noncrit + crit))
    d.find_element(By.CSS_SELECTOR, 'button.choose[data-value="shed"]').click()
    wait_for("relays of the non-critical loads off",
             lambda: all(meter.relays().get(p) == 0 for p in noncrit))
    assert all(meter.relays().get(p) == 1 for p in crit)
    wait_for("shed shown as chosen", lambda: "chosen" in d.find_element(
        By.CSS_SELECTOR, '.opt[data-choice="shed"]').get_attribute("class"))
    shot(d, outdir, "03-shed")


def current_a(d):
    t = text(d, "ev-current")
    return int(t.split()[0]) if t and t[0].isdigit() else None


def test_04_emergency_on_raises_the_ev_current(browser, meter, outdir):
    d = browser
    before = wait_for("a current", lambda: current_a(d) is not None and (current_a(d),))[0]
    sw = d.find_element(By.ID, "emergency")
    assert not sw.is_selected()
    d.execute_script("arguments[0].click()", sw)
    wait_for("emergency in the shadow", lambda: meter.shadow().get("emergency") is True)
    wait_for("a higher EV current", lambda: current_a(d) > before)
    wait_for("EV charging", lambda: text(d, "ev-state") == "Charging")
    assert d.find_element(By.ID, "emergency").is_selected()
    shot(d, outdir, "04-emergency")


def test_05_a_bad_departure_shows_the_meters_error_and_changes_nothing(browser, meter, outdir):
    d = browser
    target = meter.shadow().get("target")
    assert target
    box = d.find_element(By.ID, "departure-text")
    box.clear()
    box.send_keys("25:99")
    d.find_element(By.ID, "departure-set").click()
    err = wait_for("the meter's error", lambda: "target:" in text(d, "error-inline") and
                   text(d, "error-inline"))
    assert err == "target: want HH:MM, 0-1439 or -1"
    assert d.find_element(By.ID, "error-banner").is_displayed()
    assert meter.shadow().get("target") == target and text(d, "dep-value") == target
    shot(d, outdir, "05-bad-value")


def test_06_the_page_survives_a_broker_outage(browser, meter, outdir):
    d = browser
    meter.outage()
    wait_for("the page sees the outage", lambda: "retrying" in text(d, "link"))
    shot(d, outdir, "06-outage")
    meter.outage()
    wait_for("live again", lambda: text(d, "link") == "live", timeout=30)
    # a command right away: a message if the meter is back, else kept in the shadow (PUT
    # /v2/device/shadow/data) until it is; either way it takes effect
    box = d.find_element(By.ID, "departure-text")
    box.clear()
    box.send_keys("06:45")
    d.find_element(By.ID, "departure-set").click()
    wait_for("the new departure", lambda: text(d, "dep-value") == "06:45", timeout=30)
    wait_for("the meter back online", lambda: text(d, "online") == "meter online", timeout=30)
    assert text(d, "error-inline") == "none"
    shot(d, outdir, "06-reconnected")
    # the outage's failed requests are the only console errors
    bad = [e for e in severe(d) if "Failed to load resource" not in e.get("message", "")
           and "Failed to fetch" not in e.get("message", "")]
    assert bad == []
