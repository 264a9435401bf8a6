"""spark-submit entry: spark-submit jobs/n2d_job.py --config conf/imdb.yaml --input ... --output ..."""

import sys

from n2d_spark.cli import submit_main

if __name__ == "__main__":
    sys.exit(submit_main())
