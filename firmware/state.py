# The one record every task reads. The control task writes readings and results; cloud commands
# write settings only (they never touch a device), so limits are enforced in one place.

# Fault bits (telemetry `faults`, OLED line). Names in FAULT_NAMES, in bit order.
F_PZEM = 1      # 3 PZEM reads missed: EV paused
F_EVSE = 2      # charger silent
F_CLOCK = 4     # no valid time: normal charging held
F_CLOUD = 8     # broker unreachable / refused
F_STORE = 16    # a store slot was corrupt at boot
F_AUTH = 32     # broker refused the credentials
FAULT_NAMES = ("pzem", "charger", "clock", "cloud", "store", "auth")

CHOICES = ("accept", "shed", "emergency")


class State:
    def __init__(self, n_loads):
        # readings
        self.now = 0              # UTC seconds since 2000 (small int); 0 = clock not valid
        self.power_w = 0          # whole supply (PZEM), EV included
        self.voltage_dv = 0
        self.pzem_misses = 0
        self.ev_state = 0         # 1..5 = IEC A..E, 0 = unknown
        self.ev_power_w = 0
        self.ev_soc_pct = -1      # -1 = unknown
        self.ev_session_wh = 0
        self.ev_misses = 0
        self.ev_current_a = 0     # last commanded limit
        # user settings (persisted in the store and mirrored in the shadow)
        self.target_min = -1      # departure, minute of local day; -1 = none
        self.emergency = False
        self.choice = 0           # index into CHOICES
        self.trip_soc_pct = 0     # SOC the next trip needs; 0 = none given
        self.dr_limit_w = 0       # temporary grid limit (0 = none) ...
        self.dr_until = 0         # ... until this UTC second (since 2000)
        self.start_soc_pct = -1   # user-entered SOC for chargers that report none
        self.loads = bytearray(n_loads)   # user relay setting per configured load
        # results of the control tick
        self.limit_w = 0
        self.peak = False
        self.plan = None          # scheduler.plan() tuple, as shown (moves only when it matters)
        self.profile = None       # learned household load (meter.learn), a bytearray
        self.advice = 0           # bitmask of loads to switch off
        self.faults = 0
        self.error = ""           # last rejected command and why
        self.dirty = True         # something the cloud/OLED should show changed
        self.counters = None      # meter.py counter list (Wh by tariff/consumer, day/month)
        self.tele_skips = 0       # shadow writes skipped for want of a free heap block
        self.bus = None           # the modbus.Bus: its crc_errors, timeouts, exceptions are shown
