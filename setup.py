"""Build hook for the one optional C extension; everything else is in pyproject.toml.

``sensorpipe._wire`` decodes window records for ``sensorpipe.open()`` about 4x
faster than the pure-Python decoder it stands in for. It is optional: where no
C compiler is available the build skips it (``optional=True``) and
:mod:`sensorpipe.access.decode` uses the Python path, which returns the same
examples.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("sensorpipe._wire", ["src/sensorpipe/_wire.c"], optional=True,
                             extra_compile_args=["-O2"])])
