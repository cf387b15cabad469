"""`pip install .`: build libmuon (and libmuon_cuda where nvcc is found) with
the Makefile and put the shared libraries inside the package, where
python/muon/_lib.py looks first. The build runs scripts/setup.sh like
`make` does, so the Debian packages the library links must be present (as
root it installs them). MARCH (default -march=native) sets the instruction
set, e.g. MARCH=-march=x86-64-v3 for a wheel that other machines can run."""

import os
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

ROOT = os.path.dirname(os.path.abspath(__file__))


class BuildWithLibrary(build_py):
    def run(self):
        super().run()
        build = os.environ.get("MUON_PIP_BUILD", os.path.join(ROOT, "build"))
        cmd = ["make", "-C", ROOT, "BUILD=" + build, "-j%d" % (os.cpu_count() or 1), "lib"]
        if os.environ.get("MARCH"):
            cmd.append("MARCH=" + os.environ["MARCH"])
        subprocess.check_call(cmd)
        dest = os.path.join(self.build_lib, "muon")
        os.makedirs(dest, exist_ok=True)
        # the soname, which libmuon_cuda.so names as its dependency
        shutil.copyfile(os.path.join(build, "libmuon.so.0"), os.path.join(dest, "libmuon.so.0"))
        cuda = os.path.join(build, "libmuon_cuda.so")
        if os.path.exists(cuda):
            shutil.copyfile(cuda, os.path.join(dest, "libmuon_cuda.so"))


class BinaryDistribution(Distribution):
    """The package carries a compiled library: a platform wheel."""

    def has_ext_modules(self):
        return True


setup(cmdclass={"build_py": BuildWithLibrary}, distclass=BinaryDistribution)
