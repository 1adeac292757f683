"""Images for the container runner's tests: busybox images built once per session with podman
(FROM scratch + Debian's static busybox), or crafted with tarfile where podman is missing,
and hand-made hostile archives."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

BUSYBOX = Path("/bin/busybox") if Path("/bin/busybox").exists() else Path("/usr/bin/busybox")

# One script, one behaviour per argument: each test image only changes CMD.
ACT = r"""#!/bin/busybox sh
B=/bin/busybox
case "$1" in
predict)
  { echo case_id,score
    $B sed -n 's/.*"case_id": *"\([^"]*\)".*/\1/p' /input/cases.json | while read id; do
      v=$($B od -An -tu1 -N1 /input/images/$id.raw | $B tr -d ' ')
      printf '%s,0.%03d\n' "$id" "$v"
    done; } > /output/predictions.csv
  echo "predicted"
  ;;
network)
  for target in $($B cat /input/targets); do
    $B wget -q -T 3 -O /tmp/got "http://$target/" 2>/dev/null; echo "$target $?" >> /output/net.txt
  done
  $B ip -o link > /output/links.txt 2>&1
  ;;
write_input)
  for p in /input/evil /input/cases.json /evil /bin/evil /tmp/ok /output/ok; do
    (echo x >> "$p") 2>/dev/null; echo "$p $?" >> /output/writes.txt
  done
  ;;
sleep)
  $B sleep 120
  ;;
memory)
  $B dd if=/dev/zero of=/dev/null bs=400M count=1
  ;;
forkbomb)
  while :; do $B sleep 120 & done
  ;;
inspect)
  $B env > /output/env.txt; $B id -u > /output/uid.txt; $B pwd > /output/pwd.txt
  $B ls /dev > /output/dev.txt; $B grep CapEff /proc/self/status > /output/caps.txt
  $B ls /proc | $B grep -c '^[0-9]' > /output/nprocs.txt; $B hostname > /output/hostname.txt
  $B unshare -U -r true 2>/dev/null; echo "userns $?" > /output/escapes.txt
  $B mkdir -p /tmp/m; $B mount -t tmpfs none /tmp/m 2>/dev/null; echo "mount $?" >> /output/escapes.txt
  $B chroot / true 2>/dev/null; echo "chroot $?" >> /output/escapes.txt
  ;;
escape)
  $B ln -s /etc/passwd /output/predictions.csv; $B mkdir /output/masks; $B mkfifo /output/masks/pipe
  echo x > /output/a; $B ln /output/a /output/linked  # (a link from the image's files fails: EXDEV)
  echo fine > /output/note.txt
  ;;
chatty)
  $B yes mica-log-line | $B head -c 300000
  ;;
hugefile)
  $B dd if=/dev/zero of=/output/predictions.csv bs=1M count=100000
  ;;
manyfiles)
  $B mkdir /output/masks; i=0
  while [ $i -lt 100000 ]; do : > /output/masks/c$i.png; i=$((i+1)); done
  ;;
fill)
  $B mkdir /output/masks
  for i in 1 2 3 4; do $B dd if=/dev/zero of=/output/masks/c$i.png bs=1M count=2 2>/dev/null; done
  ;;
esac
"""

BEHAVIOURS = ("predict", "network", "write_input", "sleep", "memory", "forkbomb", "inspect", "chatty", "escape",
              "hugefile", "manyfiles", "fill")


def _tar_bytes(entries, *, gz=False):
    """A layer tar: entries are (name, kind, payload, mode) with kind file/dir/symlink/hardlink/
    chr/fifo; payload is the file's bytes or a link's target."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, payload, mode in entries:
            info = tarfile.TarInfo(name)
            info.mode = mode
            if kind == "file":
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
                         "chr": tarfile.CHRTYPE, "fifo": tarfile.FIFOTYPE}[kind]
            if kind in ("symlink", "hardlink"):
                info.linkname = payload
            tar.addfile(info)
    data = raw.getvalue()
    return gzip.compress(data, mtime=0) if gz else data, hashlib.sha256(data).hexdigest()


def craft_image(path, layers, *, cmd=("/bin/busybox", "true"), fmt="docker", gzip_layers=False,
                config_extra=None, tamper_layer=None):
    """Write an image archive by hand: ``fmt`` docker (docker-archive) or oci (OCI layout tar).
    ``layers`` is a list of entry lists (see :func:`_tar_bytes`); ``tamper_layer`` replaces that
    layer's bytes after the digests are computed."""
    blobs = [_tar_bytes(entries, gz=gzip_layers) for entries in layers]
    config = {"architecture": "amd64", "os": "linux",
              "config": {"Cmd": list(cmd), "Env": ["PATH=/bin"], **(config_extra or {})},
              "rootfs": {"type": "layers", "diff_ids": ["sha256:" + d for _, d in blobs]}}
    config_bytes = json.dumps(config).encode()
    config_hex = hashlib.sha256(config_bytes).hexdigest()
    if tamper_layer is not None:
        data, diff = blobs[tamper_layer]
        blobs[tamper_layer] = (data + b"\0" * 1024, diff)
    files = {}
    if fmt == "docker":
        names = []
        for data, diff in blobs:
            names.append(f"{diff}/layer.tar")
            files[names[-1]] = data
        files[f"{config_hex}.json"] = config_bytes
        files["manifest.json"] = json.dumps([{"Config": f"{config_hex}.json", "RepoTags": ["crafted:latest"],
                                              "Layers": names}]).encode()
    else:
        media = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if gzip_layers else "")
        manifest = {"schemaVersion": 2, "config": {"digest": "sha256:" + config_hex, "size": len(config_bytes)},
                    "layers": []}
        for data, _ in blobs:
            digest = hashlib.sha256(data).hexdigest()
            files[f"blobs/sha256/{digest}"] = data
            manifest["layers"].append({"mediaType": media, "digest": "sha256:" + digest, "size": len(data)})
        files[f"blobs/sha256/{config_hex}"] = config_bytes
        manifest_bytes = json.dumps(manifest).encode()
        manifest_hex = hashlib.sha256(manifest_bytes).hexdigest()
        files[f"blobs/sha256/{manifest_hex}"] = manifest_bytes
        files["oci-layout"] = b'{"imageLayoutVersion": "1.0.0"}'
        files["index.json"] = json.dumps({"schemaVersion": 2, "manifests": [
            {"digest": "sha256:" + manifest_hex, "size": len(manifest_bytes)}]}).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return Path(path), "sha256:" + config_hex


def busybox_layer(extra=()):
    return [("bin", "dir", None, 0o755), ("bin/busybox", "file", BUSYBOX.read_bytes(), 0o755),
            ("app", "dir", None, 0o755), ("app/act.sh", "file", ACT.encode(), 0o755), *extra]


def _podman_works():
    if shutil.which("podman") is None:
        return False
    return subprocess.run(["podman", "info"], capture_output=True).returncode == 0


class ImageFactory:
    """Builds each behaviour's image once per session: with podman when it works here, else by
    hand (the same files and CMD)."""

    def __init__(self, root: Path):
        self.root, self.cache = root, {}
        self.podman = _podman_works()
        if self.podman:
            ctx = root / "context"
            ctx.mkdir()
            shutil.copy(BUSYBOX, ctx / "busybox")
            (ctx / "act.sh").write_text(ACT)
            (ctx / "act.sh").chmod(0o755)
            self.context = ctx

    def archive(self, behaviour, fmt="docker"):
        """(archive path, the digest podman reports or the crafted config's)."""
        key = (behaviour, fmt)
        if key in self.cache:
            return self.cache[key]
        path = self.root / f"{behaviour}-{fmt}.tar"
        if self.podman:
            (self.context / "Containerfile").write_text(
                "FROM scratch\nCOPY busybox /bin/busybox\nCOPY act.sh /app/act.sh\n"
                f'CMD ["/bin/busybox", "sh", "/app/act.sh", "{behaviour}"]\n')
            tag = f"localhost/mica-test-{behaviour}"
            subprocess.run(["podman", "build", "-q", "-t", tag, str(self.context)], check=True,
                           capture_output=True)
            subprocess.run(["podman", "save", "-q", "--format", f"{fmt}-archive", "-o", str(path), tag],
                           check=True, capture_output=True)
            image_id = subprocess.run(["podman", "image", "inspect", "--format", "{{.Id}}", tag], check=True,
                                      capture_output=True, text=True).stdout.strip()
            self.cache[key] = (path, "sha256:" + image_id)
        else:
            self.cache[key] = craft_image(path, [busybox_layer()], fmt=fmt,
                                          cmd=("/bin/busybox", "sh", "/app/act.sh", behaviour))
        return self.cache[key]


@pytest.fixture(scope="session")
def images(tmp_path_factory):
    if not BUSYBOX.exists():
        pytest.skip("busybox-static is not installed (scripts/services.sh installs it)")
    return ImageFactory(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="session")
def loaded(images, tmp_path_factory):
    """loaded(behaviour) -> the unpacked Image, unpacked once per session."""
    from evaluator.containers import load_image
    cache = {}

    def _loaded(behaviour):
        if behaviour not in cache:
            cache[behaviour] = load_image(images.archive(behaviour)[0], tmp_path_factory.mktemp(behaviour))
        return cache[behaviour]

    return _loaded


@pytest.fixture(scope="session")
def has_bwrap():
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed (scripts/services.sh installs it)")
