"""A fresh clone of the repository in a directory of its own, with its own
virtualenv installed from requirements.txt, as a new host would have it.

Nothing is downloaded: the virtualenv is installed with `pip install --no-index`
from wheels repacked from the distributions already installed in the test's own
virtualenv.
"""
import base64
import csv
import hashlib
import io
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

from packaging.utils import canonicalize_name

# pip writes these when it installs; a wheel has none of them, and RECORD is written anew.
INSTALLED_ONLY = {"INSTALLER", "REQUESTED", "direct_url.json", "RECORD"}
PACKAGING_TOOLS = {"pip", "setuptools"}


def copy_checkout(source, target):
    """The repository's files, as the working tree has them (uncommitted and new files
    included, ignored ones such as .venv and var/ left out), copied into `target`."""
    listed = subprocess.run(["git", "-C", str(source), "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], check=True, capture_output=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        path = source / name
        if path.is_file():   # a tracked file deleted in the working tree is gone from the clone too
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / name)


def make_virtualenv(checkout, wheels):
    """checkout/.venv, with requirements.txt installed from `wheels` only."""
    venv = checkout / ".venv"
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    # The test's own pip runs the install, so the new virtualenv needs no pip of its own.
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
                    "--quiet", "--disable-pip-version-check", "--no-index", "--find-links", str(wheels),
                    "--no-compile", "-r", str(checkout / "requirements.txt")],
                   check=True, capture_output=True)
    return venv / "bin" / "python"


def repack_installed(target):
    """One wheel in `target` for every distribution installed in this interpreter's
    site-packages (pip and setuptools aside). Files installed outside site-packages
    (console scripts, headers) are left out: pip writes console scripts anew from
    the entry points."""
    for distribution in metadata.distributions():
        if canonicalize_name(distribution.metadata["Name"]) not in PACKAGING_TOOLS:
            repack(distribution, target)


def repack(distribution, target):
    site = Path(distribution.locate_file(""))
    dist_info = next(file.parent.name for file in distribution.files
                     if file.name == "METADATA" and file.parent.name.endswith(".dist-info"))
    files = [name for name in map(str, distribution.files or ())
             if not name.startswith("..") and "__pycache__" not in name
             and not (name.startswith(dist_info + "/") and name.split("/", 1)[1] in INSTALLED_ONLY)]
    with zipfile.ZipFile(target / wheel_name(distribution, dist_info), "w", zipfile.ZIP_STORED) as wheel:
        records = [record_line(wheel, site, name) for name in files]
        record = f"{dist_info}/RECORD"
        records.append([record, "", ""])
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(records)
        wheel.writestr(record, text.getvalue())


def record_line(wheel, site, name):
    data = (site / name).read_bytes()
    wheel.writestr(name, data)
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return [name, f"sha256={digest}", str(len(data))]


def wheel_name(distribution, dist_info):
    """name-version-pythons-abis-platforms.whl, the tags taken from the WHEEL file pip kept."""
    tags = [line.split(":", 1)[1].strip().split("-") for line in distribution.read_text("WHEEL").splitlines()
            if line.startswith("Tag:")]
    python, abi, platform = (".".join(sorted({tag[part] for tag in tags})) for part in range(3))
    name, version = dist_info[:-len(".dist-info")].rsplit("-", 1)
    return f"{name}-{version}-{python}-{abi}-{platform}.whl"
