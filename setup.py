"""setuptools build: what pyproject.toml cannot declare.

- The optional C accelerator ``tracedb.ingest._cstage`` (``tracedb/ingest/_cstage.c``,
  linked against libsqlite3), compiled with the compiler and flags Python was built
  with. It needs a C compiler, Python's headers and SQLite's (``libsqlite3-dev`` on
  Debian); when it cannot be built the install goes on with a one-line warning and
  tracedb uses its pure-Python loader (same rows, slower). ``TRACEDB_PURE_PYTHON=1``
  skips it. An editable install (``pip install -e .``) builds it in place, next to
  the source.
- The schema and the named queries live at the top of the repository (one home
  each); the wheel carries copies inside the package, ``tracedb/_migrations`` and
  ``tracedb/_queries``, so an installed tracedb migrates and queries without the
  checkout. An editable install reads the checkout's (``store.engine.resource_dir``).
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py
from setuptools.errors import BaseError, CCompilerError, CompileError, LinkError
from setuptools.warnings import InformationOnly

#: top-level folder -> its place in the wheel
RESOURCES = {"migrations": "tracedb/_migrations", "queries": "tracedb/_queries"}
_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc")
# pip shows a build's warnings: not setuptools' notice on every editable install of
# a flat layout, so that the accelerator's one line stands out
warnings.filterwarnings("ignore", "Editable installation", InformationOnly)


def pure_python() -> bool:
    return os.environ.get("TRACEDB_PURE_PYTHON", "") not in ("", "0")


class BuildPy(build_py):
    """build_py that also copies ``migrations/`` and ``queries/`` into the package."""

    def run(self) -> None:
        if getattr(self, "editable_mode", False):
            return super().run()
        # build/ outlives an in-tree build (pip's): start from an empty package so that
        # a module or a query deleted from the checkout does not linger in the wheel
        shutil.rmtree(Path(self.build_lib) / "tracedb", ignore_errors=True)
        super().run()
        for src, dest in RESOURCES.items():
            shutil.copytree(src, Path(self.build_lib) / dest, ignore=_SKIP)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = super().get_outputs(include_bytecode)
        if getattr(self, "editable_mode", False):
            return outputs
        for src, dest in RESOURCES.items():
            for path in sorted(Path(src).rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                    outputs.append(str(Path(self.build_lib) / dest / path.relative_to(src)))
        return outputs


class NotBuiltWarning(UserWarning):
    """The optional C accelerator was not built."""


class BuildExt(build_ext):
    """build_ext whose optional extension, when not built, says so in one line."""

    def run(self) -> None:
        # setuptools builds in build_lib and then copies in place (editable installs)
        self._in_place = self.inplace or getattr(self, "editable_mode", False)
        if pure_python():
            self._not_built("TRACEDB_PURE_PYTHON is set")
            return
        super().run()

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except (CCompilerError, BaseError) as exc:  # what optional=True lets pass
            why = str(exc)
            if isinstance(exc, CompileError):  # the compiler's own errors are printed above
                why = f"compiling {ext.sources[0]} with {self._tool('compiler_so')} failed"
            elif isinstance(exc, LinkError):
                why = f"linking it with {self._tool('linker_so')} -lsqlite3 failed"
            self._not_built(f"{why}; it needs a C compiler, Python's headers and SQLite's, "
                            "e.g. libsqlite3-dev")

    def _tool(self, which: str) -> str:
        return (getattr(self.compiler, which, None) or ["the C compiler"])[0]

    def _not_built(self, why: str) -> None:
        # a UserWarning: pip shows those of a build from a local folder, even with -q
        warnings.warn(f"tracedb: C accelerator not built ({why}); the pure-Python loader "
                      "will be used", NotBuiltWarning, stacklevel=2)
        if self._in_place:  # an older in-place build would still be imported
            build_py = self.get_finalized_command("build_py")
            for ext in self.extensions:
                name = self.get_ext_fullname(ext.name)
                package_dir = build_py.get_package_dir(name.rpartition(".")[0])
                so = Path(package_dir) / Path(self.get_ext_filename(name)).name
                so.unlink(missing_ok=True)


setup(
    ext_modules=[Extension("tracedb.ingest._cstage", ["tracedb/ingest/_cstage.c"],
                           libraries=["sqlite3"], optional=True)],
    cmdclass={"build_py": BuildPy, "build_ext": BuildExt},
)
