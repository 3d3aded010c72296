"""What a scenario has in store, for the live view of `make sim` (pure functions).

agenda(cfg, scen) lists the events a person watching would care about (the EV arriving and
leaving, faults, commands other than the initial load switches, the peak windows) as
[(utc_seconds, text)]; live_start() picks a start shortly before the first of them, so a
newcomer does not wait twenty real minutes for the EV to arrive.
"""
import time

from sim.world import day_peaks, firmware_config, parse_at, scenario_epoch, scenario_commands

LEAD_S = 5 * 60         # the live view starts this long (simulated) before the first event


def _local(t, cfg):
    g = time.gmtime(t + int(cfg.get("tz_offset_min", 0)) * 60)
    return "%02d:%02d" % (g.tm_hour, g.tm_min)


def agenda(cfg, scen):
    out = []
    for e in scen.get("ev", []):
        t = parse_at(e["at"], cfg, scen)
        if e.get("plug", True):
            soc = e.get("soc")
            out.append((t, "the EV plugs in" + (" at %s %%" % soc if soc is not None else "")))
        else:
            out.append((t, "the EV leaves"))
    for f in scen.get("faults", []):
        out.append((parse_at(f["at"], cfg, scen), "%s fault (%s, %s s)" % (
            f.get("dev"), f.get("kind"), f.get("s", 0))))
    for at, cmd, p in scenario_commands(scen):
        if cmd.startswith("load/"):
            continue        # the household's initial switches: not worth waiting for
        out.append((parse_at(at, cfg, scen), "the app sends %s %s" % (cmd, p)))
    start = scenario_epoch(cfg, scen)
    days = int(float(scen.get("hours") or 24) // 24) + 1
    fcfg = firmware_config(cfg)
    for d in range(days + 1):
        for a, b in day_peaks(fcfg, parse_at(("+%dd 12:00" % d) if d else "12:00", cfg, scen)):
            t = parse_at(("+%dd %s" % (d, a)) if d else a, cfg, scen)
            if t >= start:
                out.append((t, "peak tariff starts (%s-%s)" % (a, b)))
    out.sort(key=lambda x: x[0])
    return out


def live_start(cfg, scen):
    """UTC seconds: LEAD_S before the EV's first arrival (else the first event), never before
    the scenario start."""
    start = scenario_epoch(cfg, scen)
    items = agenda(cfg, scen)
    plug = [t for t, what in items if what.startswith("the EV plugs in")]
    first = plug[0] if plug else (items[0][0] if items else start)
    return max(start, int(first - LEAD_S))


def coming_up(items, now, cfg, n=3):
    """The next n agenda lines after now, as text with local time and time to go."""
    out = []
    for t, what in items:
        if t < now:
            continue
        dt = int(t - now)
        go = "%d min" % (dt // 60) if dt >= 60 else "%d s" % dt
        out.append("%s  %s  (in %s simulated)" % (_local(t, cfg), what, go))
        if len(out) == n:
            break
    return out
