"""Fetch the MicroPython libraries the firmware uses on the host (umqtt.simple, ssd1306).

Their PyPI sdists have no setup.py, so `pip download` refuses them after downloading. We ask
pip's configured index (PIP_INDEX_URL or `pip config`, default PyPI) for the sdist through the
standard simple-repository JSON API, check its sha256 and extract the one module we need.
Nothing is committed: on the ESP8266 both libraries are frozen into the standard firmware.
"""
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import urllib.request

# (project, version, member suffix in the archive, destination under the lib dir)
WANTED = (
    ("micropython-umqtt.simple", "1.3.4", "umqtt/simple.py", "umqtt/simple.py"),
    ("micropython-ssd1306", "0.3", "ssd1306.py", "ssd1306.py"),
)


def index_url():
    url = os.environ.get("PIP_INDEX_URL")
    if not url:
        try:
            out = subprocess.run([sys.executable, "-m", "pip", "config", "get", "global.index-url"],
                                 capture_output=True, text=True, check=False).stdout.strip()
        except OSError:
            out = ""
        url = out or "https://pypi.org/simple"
    return url.rstrip("/")


def normalise(name):
    return name.lower().replace("_", "-").replace(".", "-")


def sdist_link(base, project, version):
    req = urllib.request.Request(base + "/" + normalise(project) + "/",
                                 headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        files = json.load(r)["files"]
    for f in files:
        if f["filename"].endswith(version + ".tar.gz"):
            return f["url"], f.get("hashes", {}).get("sha256")
    raise SystemExit("%s %s: no sdist on %s" % (project, version, base))


def fetch(dest):
    base = None
    for project, version, member, target in WANTED:
        out = os.path.join(dest, target)
        if os.path.exists(out):
            continue
        base = base or index_url()
        url, sha = sdist_link(base, project, version)
        with urllib.request.urlopen(url, timeout=60) as r:
            blob = r.read()
        if sha and hashlib.sha256(blob).hexdigest() != sha:
            raise SystemExit("%s: sha256 mismatch" % project)
        with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
            names = [m for m in tar.getmembers() if m.name.endswith("/" + member)]
            if not names:
                raise SystemExit("%s: %s not in archive" % (project, member))
            data = tar.extractfile(names[0]).read()
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "wb") as f:
            f.write(data)
        print("fetched", project, version, "->", out)


if __name__ == "__main__":
    fetch(sys.argv[1] if len(sys.argv) > 1 else "build/lib")
