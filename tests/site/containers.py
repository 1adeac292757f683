"""Hand-made container images for the site's tests: a docker-archive tar (as `docker save`
writes it) of one layer holding Debian's static busybox and a script as the entrypoint."""

import hashlib
import io
import json
import tarfile
from pathlib import Path

BUSYBOX = Path("/bin/busybox")
APPLETS = ["sh", "cat", "echo", "grep", "sed", "awk", "sleep", "ls", "head", "tr", "mkdir", "cp"]


def _add(tar, name, data=b"", *, mode=0o644, kind=tarfile.REGTYPE, target=""):
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname = kind, mode, target
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def image_archive(path, script, *, label="test"):
    """Writes an image whose entrypoint runs `script` with busybox sh; `label` changes the
    image (and so its digest) without changing what it does."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        _add(tar, "bin", kind=tarfile.DIRTYPE, mode=0o755)
        _add(tar, "bin/busybox", BUSYBOX.read_bytes(), mode=0o755)
        for applet in APPLETS:
            _add(tar, f"bin/{applet}", kind=tarfile.SYMTYPE, target="busybox")
        _add(tar, "run.sh", script.encode(), mode=0o755)
    layer_bytes = layer.getvalue()
    layer_digest = hashlib.sha256(layer_bytes).hexdigest()
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": ["/bin/sh", "/run.sh"], "Env": ["PATH=/bin"], "Labels": {"mica.test": label}},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_digest}"]},
    }).encode()
    config_digest = hashlib.sha256(config).hexdigest()
    manifest = json.dumps([{"Config": f"{config_digest}.json", "RepoTags": [f"mica/{label}:latest"],
                            "Layers": [f"{layer_digest}/layer.tar"]}]).encode()
    with tarfile.open(path, "w") as tar:
        _add(tar, f"{layer_digest}/layer.tar", layer_bytes)
        _add(tar, f"{config_digest}.json", config)
        _add(tar, "manifest.json", manifest)
    return Path(path), f"sha256:{config_digest}"


# Reads the case ids from cases.json and writes a score for each (0.5: a coin's AUC).
PREDICT = r"""
echo "cases seen by the container:"
ls /input
grep -o '"case_id": *"[^"]*"' /input/cases.json | sed 's/.*: *"\(.*\)"/\1/' > /tmp/ids
mkdir -p /output
echo "case_id,score" > /output/predictions.csv
sed 's/$/,0.5/' /tmp/ids >> /output/predictions.csv
echo "done" >&2
"""
CRASH = 'echo "model weights missing" >&2\nexit 3\n'
HANG = "sleep 600\n"
GREEDY = "awk 'BEGIN { s = \"x\"; while (1) s = s s }'\n"
NO_OUTPUT = 'echo "forgot to write"\n'
HUGE_OUTPUT = "head -c 50000000 /dev/zero > /output/predictions.csv\n"
MANY_OUTPUTS = 'i=0; while [ $i -lt 5000 ]; do : > /output/p$i.csv; i=$((i+1)); done\n'

# An organizer's metric container: the absolute error of each case's score against its label,
# and their mean (null for a case without a prediction, which the mean leaves out).
ABS_ERROR = r"""
grep -o '"case_id": *"[^"]*"' /input/cases.json | sed 's/.*: *"\(.*\)"/\1/' > /tmp/ids
awk -F, '
FILENAME == "/tmp/ids" { ids[++n] = $1; next }
FILENAME ~ /truth/ { if (FNR > 1) truth[$1] = $2; next }
FNR > 1 { pred[$1] = $2 }
END {
  printf "{\"cases\": ["
  for (i = 1; i <= n; i++) {
    id = ids[i]
    if (id in pred) { e = pred[id] - truth[id]; if (e < 0) e = -e; total += e; counted++; v = sprintf("%.9f", e) }
    else v = "null"
    printf "%s{\"case_id\": \"%s\", \"abs_error\": %s}", (i > 1 ? ", " : ""), id, v
  }
  printf "], \"metrics\": {\"abs_error\": %s}}\n", (counted ? sprintf("%.9f", total / counted) : "null")
}' /tmp/ids /input/truth/truth.csv /input/predictions/predictions.csv > /output/metrics.json
"""


def writes_metrics(text):
    """A metric container that writes `text` as its metrics.json."""
    return f"cat > /output/metrics.json <<'MICA'\n{text}\nMICA\n"
