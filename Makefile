# Two commands from a fresh clone: `make sim` and `make test`. Everything else is bootstrapped here.
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
MPY := $(VENV)/bin/micropython
HOURS ?=
SPEED ?=
SCENARIO ?=
HEAP ?= 48K

.PHONY: all venv libs test sim image bench flash check-esp8266 clean

all: test

$(VENV)/.ok: pyproject.toml
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.ok

# micropython-lib umqtt.simple and ssd1306, fetched from pip's configured index (never committed)
build/lib/.ok: tools/fetch_mplibs.py $(VENV)/.ok
	$(VPY) tools/fetch_mplibs.py build/lib
	touch $@

libs: build/lib/.ok

image: libs
	$(VPY) tools/build_image.py

test: venv libs
	$(VPY) -m pytest -q host_tests

sim: venv libs
	$(VPY) -m sim.run $(if $(HOURS),--hours $(HOURS)) $(if $(SPEED),--speed $(SPEED)) $(if $(SCENARIO),--scenario $(SCENARIO)) --heap $(HEAP)

# flash a NodeMCU: make flash PORT=/dev/ttyUSB0 FIRMWARE=ESP8266_GENERIC-FLASH_2M_ROMFS-....bin
flash: venv libs
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" tools/flash.sh $(if $(PORT),--port $(PORT)) $(if $(FIRMWARE),--firmware $(FIRMWARE))

check-esp8266: venv libs
	$(VPY) tools/build_image.py --check

bench: venv libs
	$(VPY) -m bench.run_all

clean:
	rm -rf build .pytest_cache
