"""load_image / image_digest on real podman archives and on hand-made hostile ones.

Bad inputs tried (each refused with a reason naming the layer and path, nothing left on
disk): '../' and absolute paths, a symlink and a hard link out of the root, a path through
a symlink, a device node, a fifo, a setuid file that survives to the last layer, a layer
bomb (a 64 MB file of zeros gzipped to a few KB, over the byte cap), too many entries, a
tampered layer (docker-archive and OCI), an archive that is not a tar, one with two images,
one whose manifest names a missing layer, a zstd layer.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess

import pytest

from evaluator.containers import ImageRefused, image_digest, load_image, open_image

from .conftest import busybox_layer, craft_image


@pytest.mark.parametrize("fmt", ["docker", "oci"])
def test_a_saved_image_unpacks_with_the_digest_podman_shows(images, tmp_path, fmt):
    archive, image_id = images.archive("predict", fmt)
    assert image_digest(archive) == image_id
    image = load_image(archive, tmp_path / "img")
    assert image.digest == image_id
    assert image.archive_format == f"{fmt}-archive"
    assert (image.rootfs / "bin" / "busybox").stat().st_mode & 0o777 == 0o755
    assert image.config.argv == ["/bin/busybox", "sh", "/app/act.sh", "predict"]
    for mount_point in ("input", "output", "tmp", "proc", "dev"):
        assert (image.rootfs / mount_point).is_dir()
    assert not (tmp_path / "img" / ".archive").exists()
    assert open_image(tmp_path / "img") == image


def test_the_same_image_in_both_formats_and_gzipped_has_one_digest(images, tmp_path):
    docker, _ = images.archive("predict", "docker")
    oci, _ = images.archive("predict", "oci")
    gzipped = tmp_path / "predict.tar.gz"
    gzipped.write_bytes(gzip.compress(docker.read_bytes()))
    assert image_digest(docker) == image_digest(oci) == image_digest(gzipped)
    assert load_image(gzipped, tmp_path / "g").digest == image_digest(docker)


def test_oci_layers_may_be_gzipped(tmp_path):
    archive, digest = craft_image(tmp_path / "a.tar", [busybox_layer()], fmt="oci", gzip_layers=True)
    assert load_image(archive, tmp_path / "x").digest == digest


def test_whiteouts_and_opaque_directories_hide_lower_layers(tmp_path):
    lower = [("a", "dir", None, 0o755), ("a/x", "file", b"x", 0o644), ("a/y", "file", b"y", 0o644),
             ("b", "dir", None, 0o755), ("b/old", "file", b"o", 0o644), ("b/sub", "dir", None, 0o755),
             ("b/sub/deep", "file", b"d", 0o644), ("c", "file", b"c", 0o644)]
    upper = [("a/.wh.x", "file", b"", 0o644), ("b/new", "file", b"n", 0o644),
             ("b/.wh..wh..opq", "file", b"", 0o644), (".wh.c", "file", b"", 0o644),
             ("link", "symlink", "/bin/busybox", 0o777), ("a/y2", "hardlink", "a/y", 0o644)]
    archive, _ = craft_image(tmp_path / "a.tar", [lower, upper])
    root = load_image(archive, tmp_path / "x").rootfs
    assert sorted(p.name for p in (root / "a").iterdir()) == ["y", "y2"]
    assert sorted(p.name for p in (root / "b").iterdir()) == ["new"]
    assert not (root / "c").exists()
    assert (root / "link").is_symlink() and str((root / "link").readlink()) == "/bin/busybox"
    assert (root / "a" / "y2").stat().st_ino == (root / "a" / "y").stat().st_ino


def test_a_later_layer_replaces_a_symlink_without_following_it(tmp_path):
    victim = tmp_path / "host-file"
    victim.write_text("host")
    lower = [("etc", "dir", None, 0o755), ("etc/hosts", "symlink", str(victim), 0o777)]
    upper = [("etc/hosts", "file", b"image", 0o644)]
    archive, _ = craft_image(tmp_path / "a.tar", [lower, upper])
    root = load_image(archive, tmp_path / "x").rootfs
    assert (root / "etc" / "hosts").read_text() == "image" and not (root / "etc" / "hosts").is_symlink()
    assert victim.read_text() == "host"


def test_a_setuid_file_cleared_by_a_later_layer_is_accepted_and_never_written(tmp_path):
    lower = [("bin", "dir", None, 0o755), ("bin/su", "file", b"su", 0o4755), ("bin/mount", "file", b"m", 0o2755)]
    upper = [("bin/su", "file", b"su", 0o755), ("bin/.wh.mount", "file", b"", 0o644)]
    archive, _ = craft_image(tmp_path / "a.tar", [lower, upper])
    root = load_image(archive, tmp_path / "x").rootfs
    assert (root / "bin" / "su").stat().st_mode & 0o7777 == 0o755


def _refused(tmp_path, layers, *words, **kwargs):
    limits = {k: kwargs.pop(k) for k in ("max_unpacked_bytes", "max_files") if k in kwargs}
    archive, _ = craft_image(tmp_path / "bad.tar", layers, **kwargs)
    with pytest.raises(ImageRefused) as caught:
        load_image(archive, tmp_path / "dest", **limits)
    for word in words:
        assert word in caught.value.reason
    assert not (tmp_path / "dest" / "rootfs").exists()
    assert not (tmp_path / "dest" / ".archive").exists()
    return caught.value.reason


def test_hostile_layers_are_refused_with_their_reason(tmp_path):
    base = [("etc", "dir", None, 0o755)]
    _refused(tmp_path, [base + [("../escape", "file", b"x", 0o644)]], "layer 1 of 1", "'../escape'", "climbs out")
    _refused(tmp_path, [base + [("etc/../../x", "file", b"x", 0o644)]], "climbs out")
    _refused(tmp_path, [base + [("/etc/passwd", "file", b"x", 0o644)]], "'/etc/passwd'", "absolute")
    _refused(tmp_path, [base + [("etc/up", "symlink", "../../../etc/shadow", 0o777)]],
             "'etc/up'", "points out of the root")
    _refused(tmp_path, [base + [("etc/hl", "hardlink", "../outside", 0o644)]], "hard link target", "climbs out")
    _refused(tmp_path, [base + [("etc/hl", "hardlink", "etc/missing", 0o644)]], "not a file unpacked before it")
    _refused(tmp_path, [[("etc", "symlink", "/etc", 0o777)], [("etc/cron.d", "file", b"x", 0o644)]],
             "layer 2 of 2", "runs through the symlink 'etc'")
    _refused(tmp_path, [base + [("dev", "dir", None, 0o755), ("dev/sda", "chr", None, 0o600)]],
             "'dev/sda'", "device node")
    _refused(tmp_path, [base + [("pipe", "fifo", None, 0o600)]], "'pipe'", "fifo")
    reason = _refused(tmp_path, [base + [("usr", "dir", None, 0o755), ("usr/su", "file", b"su", 0o4755)]],
                      "setuid/setgid", "/usr/su", "chmod a-s")
    assert "1 file(s)" in reason


def test_a_layer_bomb_and_too_many_entries_are_refused(tmp_path):
    zeros = b"\0" * (64 * 1024 * 1024)
    reason = _refused(tmp_path, [[("big", "file", zeros, 0o644)]], "'big'", "unpacked bytes",
                      gzip_layers=True, max_unpacked_bytes=16 * 1024 * 1024)
    assert "16777216" in reason
    many = [(f"f{i}", "file", b"", 0o644) for i in range(50)]
    _refused(tmp_path, [many], "more than 20 entries", max_files=20)


@pytest.mark.parametrize("fmt", ["docker", "oci"])
def test_a_tampered_layer_is_refused(tmp_path, fmt):
    _refused(tmp_path, [busybox_layer()], "layer 1 of 1", "does not match", fmt=fmt, tamper_layer=0)


def test_broken_archives_are_refused(tmp_path, images):
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not a tar file" * 100)
    with pytest.raises(ImageRefused, match="neither a docker-archive|not a tar"):
        load_image(junk, tmp_path / "j")
    (tmp_path / "junk.tar.gz").write_bytes(gzip.compress(b"not a tar either" * 100))
    with pytest.raises(ImageRefused, match="^junk.tar.gz: "):
        load_image(tmp_path / "junk.tar.gz", tmp_path / "jz")
    with pytest.raises(ImageRefused, match="^junk.tar.gz: "):
        image_digest(tmp_path / "junk.tar.gz")
    archive, _ = images.archive("predict", "docker")
    two = tmp_path / "two"
    shutil.unpack_archive(archive, two, format="tar")
    manifest = (two / "manifest.json").read_text()
    (two / "manifest.json").write_text(manifest.replace("[{", "[{}, {", 1))
    subprocess.run(["tar", "-cf", str(tmp_path / "two.tar"), "-C", str(two), "."], check=True)
    with pytest.raises(ImageRefused, match="exactly one image"):
        image_digest(tmp_path / "two.tar")
    (two / "manifest.json").write_text(manifest.replace('"Layers":["', '"Layers":["missing/', 1))
    subprocess.run(["tar", "-cf", str(tmp_path / "missing.tar"), "-C", str(two), "."], check=True)
    with pytest.raises(ImageRefused, match="not in the archive"):
        load_image(tmp_path / "missing.tar", tmp_path / "m")


def test_zstd_layers_are_refused_with_the_fix(tmp_path):
    archive, _ = craft_image(tmp_path / "z.tar", [busybox_layer()], fmt="oci")
    unpacked = tmp_path / "z"
    shutil.unpack_archive(archive, unpacked, format="tar")
    blob = max((unpacked / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)
    blob.write_bytes(b"\x28\xb5\x2f\xfd" + blob.read_bytes())
    subprocess.run(["tar", "-cf", str(tmp_path / "zz.tar"), "-C", str(unpacked), "."], check=True)
    with pytest.raises(ImageRefused, match="zstd"):
        load_image(tmp_path / "zz.tar", tmp_path / "d")
