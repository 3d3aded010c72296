"""dashboard/widgets.json against the firmware (fields from Cloud._val, commands from apply()),
the generated NETPIE guide in docs/dashboard.md and the local page (dashboard/index.html)."""
import json
import os
import re
import sys

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "tools"))
import widgets as W  # noqa: E402

SPEC = W.load_spec()
CFG = W.load_config()


def bound_fields(spec):
    out = set()
    for w in spec["widgets"]:
        for f in [w.get("field")] + w.get("fields", []) + w.get("also", []) + \
                w.get("local_extra", []):
            if f and f != "@status":
                out.add(f.split(".")[0])
    return out


def test_firmware_lists_are_found():
    f = W.firmware_fields()
    assert {"power_w", "plan", "loads", "dr_until", "error"} <= set(f) and len(f) >= 24
    assert set(W.firmware_oneshots()) <= set(f)
    c = W.firmware_commands()
    assert {"target", "emergency", "choice", "trip", "dr", "reset_ev_soc", "load/*"} == set(c)


def test_every_widget_binds_a_field_and_command_the_firmware_has():
    fields = set(W.firmware_fields())
    cmds = set(W.firmware_commands())
    for w in SPEC["widgets"]:
        assert w["kind"] in W.KINDS, w
        assert w["section"] in {s["id"] for s in SPEC["sections"]}, w
        assert w.get("field") or w.get("fields") or w.get("command"), w
        for f in bound_fields({"widgets": [w]}):
            assert f in fields, "widget %s shows %r: the firmware writes no such field" % (
                w["id"], f)
        if w.get("command"):
            assert w["command"] in cmds, "widget %s sends %r: apply() has no such command" % (
                w["id"], w["command"])
    ids = [w["id"] for w in SPEC["widgets"]]
    assert len(ids) == len(set(ids))


def test_every_firmware_field_is_shown_or_explained():
    shown = bound_fields(SPEC)
    doc = W.doc_text()
    for f in W.firmware_fields():
        if f in shown:
            continue
        assert f in SPEC["not_shown"], "the firmware writes %r: no widget shows it and " \
            "widgets.json not_shown does not explain it" % f
        assert "`%s`" % f in doc.split(W.END)[1][:2000], "docs/dashboard.md does not " \
            "explain the unshown field %r" % f
    for f in SPEC["not_shown"]:
        assert f in W.firmware_fields(), "not_shown names %r, which the firmware lacks" % f


def test_every_command_has_a_control():
    used = {w["command"] for w in SPEC["widgets"] if w.get("command")}
    assert used == set(W.firmware_commands())


def test_docs_are_generated_from_the_spec():
    assert W.main(["--check"]) == 0, "run python tools/widgets.py --write"
    sec = W.render_section()
    for w in SPEC["widgets"]:
        for f in [w.get("field")] + w.get("fields", []):
            if f and f != "@status":
                assert '["%s"]' % f.split(".")[-1] in sec or "`%s`" % f in sec, (w, f)


def test_ranges_and_colours_come_from_the_config():
    r = W.resolve(SPEC, dict(CFG, breaker_w=9000, sanctioned_w=4000))
    g = {w["id"]: w for w in r["widgets"]}
    assert g["power"]["max"] == 9000 and g["power"]["colors"][0]["to"] == 4000
    assert [ld["name"] for ld in r["loads"]] == [ld["name"] for ld in CFG["loads"]]
    rows = W.netpie_rows(SPEC, dict(CFG, breaker_w=9000))
    assert any("MAXIMUM 9000" in s for _, t, s in rows if t == "Power")


def test_the_page_has_a_place_for_every_widget_and_nothing_else():
    html = open(os.path.join(ROOT, "dashboard", "index.html")).read()
    ids = set(re.findall(r'data-w="([a-z_0-9]+)"', html))
    assert ids == {w["id"] for w in SPEC["widgets"]}
