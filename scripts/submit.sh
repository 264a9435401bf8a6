#!/usr/bin/env bash
# Submit the job (jobs/n2d_job.py, or with --job assign jobs/assign_job.py, --job update jobs/update_job.py) with spark-submit and the
# cluster defaults of conf/cluster.yaml:
#
#   scripts/submit.sh --master MASTER [--job run|assign|update] [--archive ENV.tar.gz] [--conf KEY=VALUE ...] [--dry-run] -- JOB ARGS
#
#   MASTER   spark://HOST:PORT (standalone, client deploy mode), yarn (cluster deploy mode),
#            k8s://https://HOST:PORT (cluster deploy mode), or local[N]
#   --archive  an archive from scripts/package_env.sh, shipped as --archives ENV.tar.gz#environment;
#            the executors (and, in cluster deploy mode, the driver) run ./environment/bin/python.
#            Without it the executors run $PYSPARK_PYTHON (default: the driver's interpreter), which
#            must then exist, with the project installed, at the same path on every node.
#   --conf   a Spark conf; it overrides conf/cluster.yaml (repeatable)
#   --dry-run  print the spark-submit line instead of running it
#   JOB ARGS   the job's own: --config conf/imdb.yaml --input ... --output ... [--set key=value ...]
#            (assign, update: --model OUTPUT/model --input ... --output ...). A --config file is shipped
#            with the submission (--files), so a driver on a cluster node finds it too.
#
# In client deploy mode the driver runs here, on $PYSPARK_DRIVER_PYTHON (default .venv/bin/python).
# spark-submit is $SPARK_HOME/bin/spark-submit when SPARK_HOME is set, else the driver venv's.
# N2D_CLUSTER_CONF names another defaults file than conf/cluster.yaml.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
MASTER=""
JOB=run
ARCHIVE=""
DRY_RUN=0
EXTRA_CONFS=()

usage() { sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --master) MASTER="$2"; shift ;;
    --job) JOB="$2"; shift ;;
    --archive) ARCHIVE="$2"; shift ;;
    --conf) EXTRA_CONFS+=("$2"); shift ;;
    --dry-run) DRY_RUN=1 ;;
    -h|--help) usage 0 ;;
    --) shift; break ;;
    *) echo "submit.sh: unknown argument $1 (the job's arguments go after --)" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$MASTER" ] || { echo "submit.sh: --master is required" >&2; exit 2; }
case "$JOB" in
  run) JOB_FILE="$REPO/jobs/n2d_job.py" ;;
  assign) JOB_FILE="$REPO/jobs/assign_job.py" ;;
  update) JOB_FILE="$REPO/jobs/update_job.py" ;;
  *) echo "submit.sh: unknown --job $JOB (run, assign or update)" >&2; exit 2 ;;
esac

case "$MASTER" in
  spark://*) KIND=standalone ;;
  yarn) KIND=yarn ;;
  k8s://*) KIND=kubernetes ;;
  local*) KIND=local ;;
  *) echo "submit.sh: unknown master $MASTER (spark://, yarn, k8s:// or local)" >&2; exit 2 ;;
esac

DRIVER_PYTHON="${PYSPARK_DRIVER_PYTHON:-$REPO/.venv/bin/python}"
EXECUTOR_PYTHON="${PYSPARK_PYTHON:-$DRIVER_PYTHON}"
if [ -n "${SPARK_HOME:-}" ]; then
  SPARK_SUBMIT="$SPARK_HOME/bin/spark-submit"
else
  SPARK_SUBMIT="$(dirname "$DRIVER_PYTHON")/spark-submit"
fi

# conf/cluster.yaml: `common`, then the master's section, as key=value lines.
CONF_FILE="${N2D_CLUSTER_CONF:-$REPO/conf/cluster.yaml}"
mapfile -t DEFAULT_CONFS < <("$DRIVER_PYTHON" - "$CONF_FILE" "$KIND" <<'EOF'
import sys, yaml
with open(sys.argv[1]) as f:
    sections = yaml.safe_load(f) or {}
for section in ("common", sys.argv[2]):
    for key, value in (sections.get(section) or {}).items():
        print(f"{key}={str(value).lower() if isinstance(value, bool) else value}")
EOF
)

conf_value() {  # the last value given for a key: submit.sh's --conf over conf/cluster.yaml
  local key="$1" value="" kv
  for kv in "${DEFAULT_CONFS[@]}" "${EXTRA_CONFS[@]}"; do
    [ "${kv%%=*}" = "$key" ] && value="${kv#*=}"
  done
  printf '%s' "$value"
}
DEPLOY_MODE="$(conf_value spark.submit.deployMode)"
DEPLOY_MODE="${DEPLOY_MODE:-client}"

args=(--master "$MASTER")
for kv in "${DEFAULT_CONFS[@]}"; do args+=(--conf "$kv"); done

# Which Python runs where.
if [ -n "$ARCHIVE" ]; then
  args+=(--archives "$ARCHIVE#environment" --conf spark.pyspark.python=./environment/bin/python)
  if [ "$DEPLOY_MODE" = cluster ]; then
    [ "$KIND" = yarn ] && args+=(--conf spark.yarn.appMasterEnv.PYSPARK_PYTHON=./environment/bin/python)
  else
    args+=(--conf "spark.pyspark.driver.python=$DRIVER_PYTHON")
  fi
  export PYSPARK_PYTHON=./environment/bin/python
else
  args+=(--conf "spark.pyspark.python=$EXECUTOR_PYTHON" --conf "spark.pyspark.driver.python=$DRIVER_PYTHON")
  export PYSPARK_PYTHON="$EXECUTOR_PYTHON"
fi
export PYSPARK_DRIVER_PYTHON="$DRIVER_PYTHON"
if [ "$KIND" = kubernetes ] && [ "$DEPLOY_MODE" = cluster ]; then
  for key in spark.kubernetes.container.image spark.kubernetes.file.upload.path; do
    [ -n "$(conf_value "$key")" ] || { echo "submit.sh: Kubernetes needs --conf $key=..." >&2; exit 2; }
  done
fi

for kv in "${EXTRA_CONFS[@]}"; do args+=(--conf "$kv"); done
# The job's --config travels with the submission: in cluster deploy mode the driver runs on a
# cluster node, where the job finds it by its file name among the shipped files.
job_args=("$@")
for i in "${!job_args[@]}"; do
  case "${job_args[$i]}" in
    --config) args+=(--files "${job_args[$((i + 1))]}") ;;
    --config=*) args+=(--files "${job_args[$i]#--config=}") ;;
  esac
done
args+=("$JOB_FILE" "$@")

if [ "$DRY_RUN" = 1 ]; then
  printf 'PYSPARK_PYTHON=%q PYSPARK_DRIVER_PYTHON=%q %q' "$PYSPARK_PYTHON" "$PYSPARK_DRIVER_PYTHON" "$SPARK_SUBMIT"
  printf ' %q' "${args[@]}"
  printf '\n'
  exit 0
fi
exec "$SPARK_SUBMIT" "${args[@]}"
