import copy
import json
import os

import pytest

import config

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "firmware", "config.json.example")


def example():
    with open(EXAMPLE) as f:
        return json.load(f)


def test_example_is_valid_and_derives_fields():
    cfg = config.load(EXAMPLE)
    assert cfg["_win"] == (17 * 60, 22 * 60)
    assert cfg["_eff_pct"] == 90
    assert cfg["_noncrit"] == 0b011          # ac and heater, not the fridge


def test_defaults_fill_optional_groups():
    raw = example()
    for k in ("pzem", "trip", "netpie", "wifi", "ntp_host", "loads"):
        raw.pop(k)
    cfg = config.validate(raw)
    assert cfg["pzem"]["addr"] == 1 and cfg["loads"] == [] and cfg["_noncrit"] == 0


@pytest.mark.parametrize("path,value,field", [
    ("sanctioned_w", "5000", "sanctioned_w"),
    ("sanctioned_w", 5.5, "sanctioned_w"),
    ("sanctioned_w", True, "sanctioned_w"),
    ("breaker_w", 1000, "breaker_w"),
    ("tz_offset_min", 9999, "tz_offset_min"),
    ("price.peak", -1, "price.peak"),
    ("charger.min_a", 5, "charger.min_a"),
    ("charger.max_a", 100, "charger.max_a"),
    ("charger.phases", 2.0, "charger.phases"),
    ("battery.capacity_wh", 0, "battery.capacity_wh"),
    ("battery.efficiency", 1.5, "battery.efficiency"),
    ("netpie.host", "", "netpie.host"),
    ("peak", "17:00-22:00", "peak"),
    ("peak", ["17:00-17:00"], "peak[0]"),
    ("peak", ["25:00-02:00"], "peak[0]"),
    ("peak", ["7:00-22:00"], "peak[0]"),
    ("peak", [" 7:00-22:00"], "peak[0]"),       # int() takes " 7" and "+7": the meter does not
    ("peak", ["+7:00-22:00"], "peak[0]"),
    ("peak_weekend", ["10:00-1_:00"], "peak_weekend[0]"),
    ("weekend", ["on "], "weekend"),            # a piece of "mon tue ...", not a day name
    ("weekend", ["n t"], "weekend"),
    ("holidays", ["2025-+1-05"], "holidays[0]"),
    ("loads", [{"name": "a", "pin": 12, "rated_w": 1, "critical": "no"}], "loads[0].critical"),
    ("loads", [{"name": "a", "pin": 13, "rated_w": 1, "critical": True}], "loads[0].pin"),
    ("loads", [{"name": "a", "pin": 12, "rated_w": 1, "critical": True},
               {"name": "a", "pin": 14, "rated_w": 1, "critical": True}], "loads[1].name"),
])
def test_bad_field_is_named(path, value, field):
    raw = example()
    node = raw
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[k]
    node[keys[-1]] = value
    with pytest.raises(ValueError) as e:
        config.validate(raw)
    assert str(e.value).startswith(field + ":")


def test_missing_required_field_is_named():
    raw = example()
    del raw["battery"]["capacity_wh"]
    with pytest.raises(ValueError, match="^battery.capacity_wh: missing"):
        config.validate(raw)


def test_unreadable_and_corrupt_files(tmp_path):
    with pytest.raises(ValueError, match="cannot read"):
        config.load(str(tmp_path / "nope.json"))
    p = tmp_path / "bad.json"
    p.write_text("{ not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        config.load(str(p))
    p.write_text("[1, 2]")
    with pytest.raises(ValueError, match="want a JSON object"):
        config.load(str(p))


def test_validate_does_not_share_defaults_between_configs():
    a = config.validate({**example(), "loads": []})
    raw = example()
    raw.pop("trip")
    b = config.validate(raw)
    b["trip"]["wh_per_km"] = 999
    c = copy.deepcopy(example())
    c.pop("trip")
    assert config.validate(c)["trip"]["wh_per_km"] == 170
    assert a is not b


def test_the_largest_calendar_costs_the_meter_no_strings(tmp_path):
    # 8 + 8 peak windows and 32 holidays are valid; their strings (~1.5 KB on the board) were
    # kept in the config dict for good and cost a valid config its control ticks (found by a
    # black-box run). Measured on the board twin: the dict the meter keeps
    import subprocess
    twin = os.path.join(os.path.dirname(__file__), "..", "build", "twin", "micropython")
    if not os.path.exists(twin):
        pytest.skip("no board twin (make twin)")
    fw = os.path.join(os.path.dirname(__file__), "..", "firmware")

    def dict_bytes(raw):
        p = tmp_path / "c.json"
        p.write_text(json.dumps(raw))
        code = ("import gc, config\ngc.collect()\na = gc.mem_alloc()\n"
                "c = config.load(%r)\ngc.collect()\nprint(gc.mem_alloc() - a)\n" % str(p))
        r = subprocess.run([twin, "-c", code], env=dict(os.environ, MICROPYPATH=fw),
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return int(r.stdout.split()[-1])

    raw = example()
    small = dict_bytes(raw)
    raw["peak"] = ["%02d:00-%02d:30" % (h, h) for h in range(8)]
    raw["peak_weekend"] = ["%02d:00-%02d:30" % (h, h) for h in range(10, 18)]
    raw["holidays"] = ["2026-%02d-%02d" % (1 + i // 28, 1 + i % 28) for i in range(32)]
    cfg = config.validate(copy.deepcopy(raw))
    assert len(cfg["_hol"]) == 32 and len(cfg["_win_we"]) == 16
    assert not {"peak", "peak_weekend", "weekend", "holidays"} & set(cfg)
    big = dict_bytes(raw)
    assert big - small < 400, (small, big)     # the derived tuples only: 16 + 16 + 32 ints
