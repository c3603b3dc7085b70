#!/usr/bin/env python3
"""Install uv without venv or pip (Debian ships those as separate packages): download the uv wheel for this
machine from PyPI with the standard library only, check its sha256 against PyPI's, and extract the binary.

    python3 scripts/bootstrap-uv.py VERSION DEST_DIR
"""
import hashlib
import io
import json
import os
import platform
import stat
import sys
import urllib.request
import zipfile

INDEX = os.environ.get("HIVE_PYPI_SIMPLE", "https://pypi.org/simple")   # PEP 691 JSON form of the index


def pick_wheel(files: list[dict], version: str, machine: str) -> dict:
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine.lower(), machine.lower())
    for flavour in ("manylinux", "musllinux"):
        for f in files:
            name = f["filename"]
            if name.startswith(f"uv-{version}-") and name.endswith(".whl") and flavour in name and arch in name:
                return f
    raise SystemExit(f"bootstrap-uv: no uv wheel for {platform.system()} {machine} on PyPI")


def main(version: str, dest: str) -> None:
    request = urllib.request.Request(f"{INDEX}/uv/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=60) as resp:
        index = json.load(resp)
    wheel = pick_wheel(index["files"], version, platform.machine())
    with urllib.request.urlopen(wheel["url"], timeout=300) as resp:
        blob = resp.read()
    if hashlib.sha256(blob).hexdigest() != wheel["hashes"]["sha256"]:
        raise SystemExit(f"bootstrap-uv: sha256 mismatch for {wheel['filename']}")
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        member = next(n for n in zf.namelist() if n.endswith(".data/scripts/uv"))
        data = zf.read(member)
    os.makedirs(dest, exist_ok=True)
    target = os.path.join(dest, "uv")
    with open(target, "wb") as f:
        f.write(data)
    os.chmod(target, os.stat(target).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    print(f"bootstrap-uv: installed {wheel['filename']} -> {target}", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2])
