"""store.py: two checksummed slots, newest valid wins, corrupt slots ignored and counted."""
import meter
import state
import store


def filled(seq_seed=1):
    st = state.State(3)
    st.counters = meter.new()
    meter.roll(st.counters, 1_764_000_000 - 946_684_800)
    meter.add(st.counters, 3_600_000, 2000 + seq_seed, 500, True, False)
    st.target_min = 450
    st.emergency = True
    st.choice = 1
    st.trip_soc_pct = 42
    st.start_soc_pct = 30
    st.dr_limit_w = 3000
    st.dr_until = 1_764_003_600 - 946_684_800   # UTC s since 2000
    st.loads[0] = 1
    st.loads[2] = 1
    return st


def fresh():
    st = state.State(3)
    st.counters = meter.new()
    return st


def same(a, b):
    for k in ("target_min", "emergency", "choice", "trip_soc_pct", "start_soc_pct",
              "dr_limit_w", "dr_until", "counters"):
        assert getattr(a, k) == getattr(b, k), k
    assert bytes(a.loads) == bytes(b.loads)


def test_round_trip_and_newest_slot_wins(tmp_path):
    base = str(tmp_path / "store")
    a = filled(1)
    store.save(base, 1, a)
    b = filled(2)
    store.save(base, 2, b)
    st = fresh()
    assert store.load(base, st) == (2, 0)
    same(st, b)


def test_no_store_is_not_a_fault(tmp_path):
    st = fresh()
    assert store.load(str(tmp_path / "none"), st) == (-1, 0)
    assert st.target_min == -1


def test_corrupt_newest_slot_falls_back_to_the_other(tmp_path):
    base = str(tmp_path / "store")
    store.save(base, 7, filled(1))
    store.save(base, 8, filled(2))
    p = tmp_path / "store0"                 # seq 8 lives in slot 0
    b = bytearray(p.read_bytes())
    b[40] ^= 0x55                           # a flipped byte
    p.write_bytes(bytes(b))
    st = fresh()
    assert store.load(base, st) == (7, 1)
    same(st, filled(1))


def test_torn_write_and_garbage(tmp_path):
    base = str(tmp_path / "store")
    store.save(base, 3, filled(1))
    (tmp_path / "store0").write_bytes(b"EM1\x00\x00")       # torn, short
    st = fresh()
    assert store.load(base, st) == (3, 1)
    (tmp_path / "store1").write_bytes(b"\xff" * store.SIZE)  # erased flash
    st = fresh()
    assert store.load(base, st) == (-1, 2)
    assert st.counters == meter.new() and st.target_min == -1


def test_checksum_valid_but_settings_out_of_range_is_rejected(tmp_path):
    st = filled(1)
    st.choice = 2
    b = store.pack(5, st)
    b[10] = 9                                # choice byte: out of range
    import struct
    struct.pack_into("<I", b, store.SIZE - 4, store._sum(b, store.SIZE - 4))
    (tmp_path / "store1").write_bytes(bytes(b))
    got = fresh()
    assert store.load(str(tmp_path / "store"), got) == (-1, 1)
    assert got.choice == 0


def test_a_dr_end_stored_by_the_1970_firmware_is_read_in_the_2000_base(tmp_path):
    st = state.State(2)
    st.counters = meter.new()
    st.dr_limit_w = 3000
    st.dr_until = 1_764_003_600                 # what firmware counting from 1970 wrote
    store.save(str(tmp_path / "s"), 1, st)
    st2 = state.State(2)
    store.load(str(tmp_path / "s"), st2)
    assert st2.dr_until == 1_764_003_600 - 946_684_800
