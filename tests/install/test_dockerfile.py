"""deploy/central/Dockerfile without Docker (no engine here): what it COPYs exists and is
enough to build the collector's two distributions, and it installs from the hashed lock."""

from __future__ import annotations

import fnmatch
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "central" / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending += line.removesuffix("\\").strip() + " "
        if not line.endswith("\\"):
            word, _, rest = pending.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            pending = ""
    return out


def copies() -> list[tuple[list[str], str]]:
    return [
        (argv[:-1], argv[-1])
        for word, args in instructions()
        if word == "COPY"
        for argv in [shlex.split(args)]
    ]


def pip_installs() -> list[list[str]]:
    """Every `pip install ...` of the RUN instructions, as argv."""
    found = []
    for word, args in instructions():
        if word != "RUN":
            continue
        for command in args.split("&&"):
            argv = shlex.split(command)
            if argv[:2] == ["pip", "install"]:
                found.append(argv)
    return found


def dockerignored(relative: str) -> bool:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    parts = Path(relative).parts
    return any(
        fnmatch.fnmatch(relative, p)
        or fnmatch.fnmatch(relative, p.removeprefix("**/"))
        or (p.startswith("**/") and any(fnmatch.fnmatch(part, p[3:]) for part in parts))
        for p in patterns
    )


def test_every_path_it_copies_exists_and_no_agent_code() -> None:
    sources = [s for srcs, _dest in copies() for s in srcs]
    assert sources, "no COPY in the Dockerfile"
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    assert "agent" not in sources, "the collector image must carry no agent code"
    assert not [s for s in sources if s.startswith("agent/")]


def test_it_installs_the_lock_with_hashes_then_our_code_without_deps() -> None:
    installs = pip_installs()
    locks = [a[a.index("-r") + 1] for a in installs if "-r" in a]
    assert locks == [
        "/opt/probefleet/requirements/build.txt",
        "/opt/probefleet/requirements/collector.txt",
    ]
    for argv in installs:
        if "-r" in argv:
            assert "--require-hashes" in argv, argv
        else:
            assert {"--no-deps", "--no-build-isolation"} <= set(argv), argv
            assert [a for a in argv if not a.startswith("-")][2:] == [
                "/opt/probefleet",
                "/opt/probefleet/collector",
            ]
    assert len(installs) == 3


def _wheel_files(folder: Path) -> dict[str, set[str]]:
    return {
        wheel.name: set(zipfile.ZipFile(wheel).namelist()) for wheel in sorted(folder.glob("*.whl"))
    }


@pytest.mark.slow  # builds two wheels: ~5 s
@pytest.mark.timeout(300)
def test_what_it_copies_builds_the_same_two_wheels_as_the_checkout(tmp_path: Path) -> None:
    """The image's /opt/probefleet, rebuilt from the COPY lines (minus .dockerignore), builds
    wheels holding the same files as those built from the whole checkout."""
    image = tmp_path / "image"
    for sources, dest in copies():
        for source in sources:
            target = image / dest.lstrip("/")
            src = ROOT / source
            if dest.endswith("/"):
                target = target / src.name
            if src.is_dir():
                shutil.copytree(
                    src,
                    target,
                    ignore=lambda d, names: [
                        n for n in names if dockerignored(str((Path(d) / n).relative_to(ROOT)))
                    ],
                )
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, target)
    opt = image / "opt" / "probefleet"
    from_image, from_checkout = tmp_path / "from-image", tmp_path / "from-checkout"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "wheel", "--quiet"]
    subprocess.run(
        [*pip, "--no-deps", "--no-build-isolation", "-w", from_image, opt, opt / "collector"],
        check=True,
        capture_output=True,
        timeout=240,
    )
    subprocess.run(
        [ROOT / "scripts/build-wheels.sh", sys.executable, from_checkout, ".", "collector"],
        check=True,
        capture_output=True,
        timeout=240,
    )
    image_wheels, checkout_wheels = _wheel_files(from_image), _wheel_files(from_checkout)
    assert sorted(image_wheels) == sorted(checkout_wheels)
    for name, files in checkout_wheels.items():
        assert image_wheels[name] == files, name
