#!/usr/bin/env bash
# Build a relocatable archive of the job's Python environment, with the project installed,
# for executors (and, in cluster deploy mode, the driver) that have none of our packages:
#
#   scripts/package_env.sh [--executors] [--output env.tar.gz] [--python PYTHON] [--python-prefix DIR]
#                          [--constraints-from DRIVER_VENV (default .venv)] [--build-dir DIR (default build/package_env)]
#   spark-submit --archives env.tar.gz#environment --conf spark.pyspark.python=./environment/bin/python ...
#
# It follows PySpark's packaging guide with venv-pack: NumPy, SciPy, PyArrow and TensorFlow are
# native code, which --py-files cannot carry. Two flavours:
#
#   (default)    everything the job needs, TensorFlow included: for a driver that runs on the
#                cluster (YARN or Kubernetes cluster deploy mode) as well as the executors.
#   --executors  only what the executors import: the project (without its dependencies) plus
#                NumPy, pandas, PyArrow, SciPy, PyYAML, Numba, threadpoolctl, scikit-learn, umap-learn and hdbscan (the
#                assign stage runs UMAP's transform there). No TensorFlow, no PySpark: the
#                executors' Python workers import pyspark from the cluster's own Spark
#                (SPARK_HOME/python/lib/pyspark.zip, which Spark puts on their PYTHONPATH). For
#                client deploy mode (always the case on a standalone master), where the driver
#                runs from the submitting machine's environment.
#
# Versions are pinned to the driver's environment (.venv, or --constraints-from) so that what the
# driver pickles the executors can unpickle. The archive is a venv, and a venv links to its base
# interpreter: bin/python points at the interpreter the archive was built with (printed at the
# end), which must exist at that path on every executor, or pass --python-prefix with the path
# of a compatible interpreter prefix (same major.minor version) that does exist there.
# venv-pack is a build tool: it lives in a separate tools venv under the build folder, never in
# the archive nor in the project's dependencies.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
FLAVOUR=full
OUTPUT="$REPO/dist/n2d-env.tar.gz"
DRIVER_ENV="$REPO/.venv"
PYTHON=""
PYTHON_PREFIX=""
BUILD="$REPO/build/package_env"
# What the executors import: n2d_spark.rows.embed and n2d_spark.model.encoder (the embed stage), and
# n2d_spark.rows.assign with umap-learn, scikit-learn and hdbscan (the assign stage unpickles the
# fitted UMAP and clusterer); no TensorFlow: umap is imported with it blocked.
EXECUTOR_PACKAGES=(numpy pandas pyarrow scipy pyyaml numba threadpoolctl scikit-learn umap-learn hdbscan)

usage() { sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --executors) FLAVOUR=executors; OUTPUT="$REPO/dist/n2d-executor-env.tar.gz" ;;
    --output) OUTPUT="$2"; shift ;;
    --python) PYTHON="$2"; shift ;;
    --python-prefix) PYTHON_PREFIX="$2"; shift ;;
    --constraints-from) DRIVER_ENV="$2"; shift ;;
    --build-dir) BUILD="$2"; shift ;;
    -h|--help) usage 0 ;;
    *) echo "package_env.sh: unknown argument $1" >&2; usage 2 >&2 ;;
  esac
  shift
done

started=$(date +%s)

# The archive's interpreter: the one the driver's venv was made from (same Python version), else python3.
if [ -z "$PYTHON" ]; then
  if [ -x "$DRIVER_ENV/bin/python" ]; then
    PYTHON="$("$DRIVER_ENV/bin/python" -c 'import sys; print(getattr(sys, "_base_executable", sys.executable))')"
  else
    PYTHON="$(command -v python3)"
  fi
fi
echo "package_env: $FLAVOUR environment on $("$PYTHON" -c 'import sys; print(sys.version.split()[0])') ($PYTHON)"

rm -rf "$BUILD"
mkdir -p "$BUILD" "$(dirname "$OUTPUT")"

# Pin every package to the driver's version, where the driver's environment exists.
constraints=()
if [ -x "$DRIVER_ENV/bin/python" ]; then
  "$DRIVER_ENV/bin/python" -m pip freeze --exclude-editable | grep -v -i '^n2d-spark' >"$BUILD/constraints.txt"
  constraints=(-c "$BUILD/constraints.txt")
fi

"$PYTHON" -m venv "$BUILD/tools"
"$BUILD/tools/bin/python" -m pip install --quiet venv-pack

"$PYTHON" -m venv "$BUILD/env"
pip=("$BUILD/env/bin/python" -m pip install --quiet --no-warn-script-location)
"${pip[@]}" --upgrade pip
# A regular (not editable) install: venv-pack cannot pack an editable one, and the archive must carry the modules.
if [ "$FLAVOUR" = executors ]; then
  "${pip[@]}" "${constraints[@]}" "${EXECUTOR_PACKAGES[@]}"
  "${pip[@]}" --no-deps "$REPO"
  check='import sys, n2d_spark.model.encoder, numpy, pandas, pyarrow, scipy.sparse, yaml, numba, threadpoolctl; from n2d_spark.model.manifold import import_umap_without_tensorflow as i; i(); import umap, hdbscan, sklearn; assert "tensorflow" not in sys.modules'
else
  "${pip[@]}" "${constraints[@]}" "$REPO"
  check='import n2d_spark.pipeline, tensorflow, umap, pyspark'
fi
"$BUILD/env/bin/python" -c "$check"

prefix=()
[ -n "$PYTHON_PREFIX" ] && prefix=(--python-prefix "$PYTHON_PREFIX")
"$BUILD/tools/bin/venv-pack" --prefix "$BUILD/env" --output "$OUTPUT" --force "${prefix[@]}" >/dev/null

elapsed=$(( $(date +%s) - started ))
size=$(du -h "$OUTPUT" | cut -f1)
unpacked=$(du -sh "$BUILD/env" | cut -f1)
echo "package_env: wrote $OUTPUT ($size; $unpacked unpacked) in ${elapsed}s"
echo "package_env: its bin/python links to $(readlink -f "$BUILD/env/bin/python")${PYTHON_PREFIX:+, rewritten to $PYTHON_PREFIX}: that interpreter must exist on the executors"
echo "package_env: use it with  --archives $OUTPUT#environment --conf spark.pyspark.python=./environment/bin/python"
