# MicroPython: mount a ROMFS image and report the heap kept by importing the named modules from it.
# The image buffer itself is read before the baseline: on the board it stays in flash.
import gc
import sys
import vfs

with open(sys.argv[1], "rb") as f:
    buf = f.read()
vfs.mount(vfs.VfsRom(memoryview(buf)), "/rom")
sys.path.insert(0, "/rom")
sys.path.insert(1, "/rom/lib")
gc.collect()
before = gc.mem_alloc()
for name in sys.argv[2].split(","):
    __import__(name)
gc.collect()
print('{"romfs_import_heap_bytes": %d, "image_bytes": %d}' % (gc.mem_alloc() - before, len(buf)))
