# MicroPython: time one plan() against a trivial loop of known cost (so the figure is a ratio that
# carries over between machines), and report heap kept by importing the core.
import gc
import sys
import time

gc.collect()
before = gc.mem_alloc()
import config  # noqa: E402
import meter  # noqa: E402
import scheduler  # noqa: E402
gc.collect()
import_heap = gc.mem_alloc() - before

cfg = config.load(sys.argv[1])
gc.collect()
cfg_heap = gc.mem_alloc() - before - import_heap


def trivial(n):
    x = 0
    for i in range(n):
        x += i
    return x


N = 20000
t0 = time.ticks_us()
trivial(N)
loop_us = time.ticks_diff(time.ticks_us(), t0)

REPS = 50
now = 1764000000
t0 = time.ticks_us()
for i in range(REPS):
    scheduler.plan(now + i * 997, (i * 37) % 1440, 20, 900, 1500, 40, cfg)
plan_us = time.ticks_diff(time.ticks_us(), t0) / REPS

gc.collect()
free0 = gc.mem_free()
peak = 0
scheduler.plan(now, 450, 20, 900, 1500, 40, cfg)
print('{"import_heap_bytes": %d, "config_heap_bytes": %d, "plan_us": %.1f, '
      '"trivial_loop_us": %d, "plan_in_trivial_iterations": %d}'
      % (import_heap, cfg_heap, plan_us, loop_us, int(plan_us / loop_us * N)))
