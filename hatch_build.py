"""Build hook: compile the optional C accelerator ``tracedb/_cstage.c``.

It needs a C compiler, Python's headers and SQLite's (libsqlite3-dev on Debian).
When any is missing the build goes on with a warning and tracedb uses its
pure-Python loader (same rows, slower). ``TRACEDB_PURE_PYTHON=1`` skips it.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sysconfig
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class CStageBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict) -> None:
        if os.environ.get("TRACEDB_PURE_PYTHON", "") not in ("", "0"):
            return
        src = Path(self.root) / "tracedb" / "_cstage.c"
        out = src.with_name("_cstage" + (sysconfig.get_config_var("EXT_SUFFIX") or ".so"))
        cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
        cmd = [*cc, "-shared", "-fPIC", "-O2", "-I" + sysconfig.get_paths()["include"],
               str(src), "-o", str(out), "-lsqlite3"]
        try:
            subprocess.run(cmd, check=True, capture_output=True, text=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            detail = getattr(exc, "stderr", None) or str(exc)
            self.app.display_warning(
                "tracedb: the C accelerator was not built, the pure-Python loader will be "
                f"used ({' '.join(cmd)}: {detail.strip().splitlines()[-1] if detail else exc})")
            return
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        if version != "editable":  # an editable install imports it from the source tree
            build_data["force_include"][str(out)] = f"tracedb/{out.name}"
