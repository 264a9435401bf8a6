"""spark-submit entry: spark-submit jobs/update_job.py --model OUT/model --input NEW --output OUT2 [--set update.min_topic_rows=100] [--allow-pickle]"""

import sys

from n2d_spark.cli import submit_main

if __name__ == "__main__":
    sys.exit(submit_main("update"))
