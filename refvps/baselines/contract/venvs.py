"""Isolated model environments built from the package registries, cached between runs.

An environment is ``<cache>/<requirements file stem>-<key>`` where the key hashes the
requirements text, refvps's own dependencies and the interpreter version, so a changed pin
builds a new one and an unchanged one is reused. A build holds a lock (two checks at once
build it once) and is marked complete only at its end; an interrupted build is redone.
refvps itself is (re)installed into the environment on every run, without dependencies, from
the source tree the harness runs from, so the code under test is always the current one.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from importlib.metadata import requires
from pathlib import Path

INSTALL_PREFIX = "# refvps-install:"
COMPLETE = ".refvps-complete"


def cache_dir() -> Path:
    """``$REFVPS_ENV_CACHE`` or ``~/.cache/refvps/upstream-envs``."""
    configured = os.environ.get("REFVPS_ENV_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "refvps" / "upstream-envs"


def core_requirements() -> list[str]:
    """refvps's own runtime requirements (no extras), so ``refvps predict`` runs in the env."""
    pyproject = Path(__file__).resolve().parents[3] / "pyproject.toml"
    if pyproject.is_file():  # a source tree: its own pins, even if another refvps is installed
        import tomllib

        return sorted(tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
                      ["dependencies"])
    return sorted(r.split(";")[0].strip() for r in requires("refvps") or []
                  if "extra ==" not in r)


def extra_installs(requirements: str) -> list[list[str]]:
    """The ``# refvps-install: ARGS`` lines of a requirements file, as pip argument lists."""
    return [line[len(INSTALL_PREFIX):].split() for line in requirements.splitlines()
            if line.startswith(INSTALL_PREFIX)]


def env_path(requirements_file: Path) -> Path:
    text = requirements_file.read_text(encoding="utf-8")
    key = hashlib.sha256("\n".join([text, *core_requirements(), sys.version.split()[0]])
                         .encode()).hexdigest()[:12]
    return cache_dir() / f"{requirements_file.stem}-{key}"


def python_of(env: Path) -> Path:
    return env / "bin" / "python"


def _pip(env: Path, args: list[str], log) -> None:
    command = [str(python_of(env)), "-m", "pip", "install", "--disable-pip-version-check",
               "--progress-bar", "off", *args]
    log.write(f"$ {' '.join(command)}\n")
    log.flush()
    subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT)


def ensure_env(requirements_file: Path, log) -> Path:
    """The environment for ``requirements_file``, built now unless a complete one is cached."""
    env = env_path(requirements_file)
    env.parent.mkdir(parents=True, exist_ok=True)
    with open(env.parent / f"{env.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (env / COMPLETE).is_file():
            return env
        shutil.rmtree(env, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(env)], check=True, stdout=log,
                       stderr=subprocess.STDOUT)
        _pip(env, ["-r", str(requirements_file), *core_requirements()], log)
        for args in extra_installs(requirements_file.read_text(encoding="utf-8")):
            _pip(env, args, log)
        frozen = subprocess.run([str(python_of(env)), "-m", "pip", "freeze"], check=True,
                                capture_output=True, text=True).stdout
        (env / COMPLETE).write_text(frozen, encoding="utf-8")
    return env


def install_refvps(env: Path, source_root: Path, log) -> None:
    """refvps from ``source_root`` into ``env`` (editable, no dependencies: they are there)."""
    _pip(env, ["--no-deps", "--quiet", "-e", str(source_root)], log)
