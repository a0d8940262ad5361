"""Build hook for the one optional C extension; everything else is in pyproject.toml.

``sensorpipe.access._wire`` decodes window records for ``sensorpipe.open()`` in
one C pass, beside the reader that plans it (:mod:`sensorpipe.access.decode`).
It is optional: where no C compiler is available the build skips it
(``optional=True``) and the reader decodes through protobuf, which returns the
same examples.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("sensorpipe.access._wire", ["src/sensorpipe/access/_wire.c"], optional=True,
                             extra_compile_args=["-O2"])])
