#!/usr/bin/env python3
"""Builds an OCI image archive (an image layout in a tar) without a container daemon.

    oci_image.py --ref REF --out FILE [--file SRC:DEST[:MODE]]... [--symlink DEST:TARGET]...
                 [--dir DEST[:MODE]]... [--entrypoint JSON] [--cmd JSON] [--user UID:GID]
                 [--env K=V]... [--port N]... [--label K=V]...

The image has one uncompressed layer holding exactly the listed files, directories and symlinks
(parents are added as root-owned 0755 directories). Everything that could vary between runs is
fixed: entries sorted, mtime 0, owner 0:0 unless given, no user or group names, no creation time
in the config, JSON with sorted keys. So the same inputs give the same manifest digest, which
is printed on stdout as `sha256:...`.

The archive loads with `ctr -n k8s.io images import FILE`: its index names the image with the
`io.containerd.image.name` annotation (the full reference) and the platform linux/amd64.
Only the Python standard library is used.
"""

import argparse
import hashlib
import io
import json
import os
import sys
import tarfile

LAYER_MEDIA = "application/vnd.oci.image.layer.v1.tar"
CONFIG_MEDIA = "application/vnd.oci.image.config.v1+json"
MANIFEST_MEDIA = "application/vnd.oci.image.manifest.v1+json"
INDEX_MEDIA = "application/vnd.oci.image.index.v1+json"


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tarinfo(name, kind, mode, size=0, target=""):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = mode
    ti.size = size
    ti.mtime = 0
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    ti.linkname = target
    return ti


def build_layer(files, dirs, symlinks):
    """files: {dest: (src, mode)}; dirs: {dest: mode}; symlinks: {dest: target}."""
    entries = {}

    def add_parents(path):
        parts = path.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            entries.setdefault(d, ("dir", 0o755, None))

    for dest, mode in dirs.items():
        add_parents(dest)
        entries[dest.strip("/")] = ("dir", mode, None)
    for dest, (src, mode) in files.items():
        add_parents(dest)
        entries[dest.strip("/")] = ("file", mode, src)
    for dest, target in symlinks.items():
        add_parents(dest)
        entries[dest.strip("/")] = ("symlink", 0o777, target)

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(entries):
            kind, mode, arg = entries[name]
            if kind == "dir":
                tar.addfile(tarinfo(name, tarfile.DIRTYPE, mode))
            elif kind == "symlink":
                tar.addfile(tarinfo(name, tarfile.SYMTYPE, mode, target=arg))
            else:
                with open(arg, "rb") as f:
                    data = f.read()
                tar.addfile(tarinfo(name, tarfile.REGTYPE, mode, size=len(data)), io.BytesIO(data))
    return buf.getvalue()


def split_pair(value, what):
    if ":" not in value:
        sys.exit(f"oci_image.py: {what} {value!r} needs the form A:B")
    return value.split(":", 1)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ref", required=True, help="full image reference, e.g. ghcr.io/org/name:tag")
    p.add_argument("--out", required=True, help="the archive to write")
    p.add_argument("--file", action="append", default=[], help="SRC:DEST[:MODE] (octal mode, default from SRC)")
    p.add_argument("--dir", action="append", default=[], help="DEST[:MODE] (default 0755)")
    p.add_argument("--symlink", action="append", default=[], help="DEST:TARGET")
    p.add_argument("--entrypoint", help="JSON list")
    p.add_argument("--cmd", help="JSON list")
    p.add_argument("--user", help="UID:GID the container runs as")
    p.add_argument("--env", action="append", default=[], help="K=V")
    p.add_argument("--port", action="append", default=[], help="exposed TCP port")
    p.add_argument("--label", action="append", default=[], help="K=V")
    a = p.parse_args()

    files, dirs, symlinks = {}, {}, {}
    for f in a.file:
        parts = f.split(":")
        if len(parts) not in (2, 3):
            sys.exit(f"oci_image.py: --file {f!r} needs SRC:DEST[:MODE]")
        src, dest = parts[0], parts[1]
        if not os.path.isfile(src):
            sys.exit(f"oci_image.py: --file {f!r}: {src} is not a file")
        mode = int(parts[2], 8) if len(parts) == 3 else (os.stat(src).st_mode & 0o7777)
        files[dest] = (src, mode)
    for d in a.dir:
        dest, _, mode = d.partition(":")
        dirs[dest] = int(mode, 8) if mode else 0o755
    for s in a.symlink:
        dest, target = split_pair(s, "--symlink")
        symlinks[dest] = target

    layer = build_layer(files, dirs, symlinks)
    env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] + a.env
    cfg = {"Env": env, "WorkingDir": "/"}
    if a.entrypoint:
        cfg["Entrypoint"] = json.loads(a.entrypoint)
    if a.cmd:
        cfg["Cmd"] = json.loads(a.cmd)
    if a.user:
        cfg["User"] = a.user
    if a.port:
        cfg["ExposedPorts"] = {f"{port}/tcp": {} for port in a.port}
    if a.label:
        cfg["Labels"] = dict(split_pair(label.replace("=", ":", 1), "--label") for label in a.label)
    config = canonical({
        "architecture": "amd64",
        "os": "linux",
        "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": [digest(layer)]},
        "history": [{"created_by": "tests/cluster/oci_image.py"}],
    })
    manifest = canonical({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA,
        "config": {"mediaType": CONFIG_MEDIA, "digest": digest(config), "size": len(config)},
        "layers": [{"mediaType": LAYER_MEDIA, "digest": digest(layer), "size": len(layer)}],
    })
    tag = a.ref.rsplit(":", 1)[1] if ":" in a.ref.rsplit("/", 1)[-1] else "latest"
    index = canonical({
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA,
        "manifests": [{
            "mediaType": MANIFEST_MEDIA,
            "digest": digest(manifest),
            "size": len(manifest),
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {"io.containerd.image.name": a.ref, "org.opencontainers.image.ref.name": tag},
        }],
    })

    blobs = {digest(b): b for b in (layer, config, manifest)}
    tmp = a.out + ".tmp"
    with tarfile.open(tmp, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        members = [("blobs", None), ("blobs/sha256", None)]
        members += [(f"blobs/sha256/{d.split(':', 1)[1]}", b) for d, b in sorted(blobs.items())]
        members += [("index.json", index), ("oci-layout", canonical({"imageLayoutVersion": "1.0.0"}))]
        for name, data in members:
            if data is None:
                tar.addfile(tarinfo(name, tarfile.DIRTYPE, 0o755))
            else:
                tar.addfile(tarinfo(name, tarfile.REGTYPE, 0o644, size=len(data)), io.BytesIO(data))
    os.replace(tmp, a.out)
    print(digest(manifest))


if __name__ == "__main__":
    main()
