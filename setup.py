"""The one compiled part: MD5 in vector lanes (see triage/analysis/_md5lanes.c).

Everything else is in pyproject.toml. The extension is optional: where it cannot be built (no
C compiler), the scan computes MD5 with OpenSSL through hashlib, as for any CPU without AVX2.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "triage.analysis._md5lanes",
            ["triage/analysis/_md5lanes.c"],
            extra_compile_args=["-O2"],
            optional=True,
        )
    ]
)
