"""spark-submit entry: spark-submit jobs/assign_job.py --model OUT/model --input NEW --output OUT2 [--table db.name --table-mode append] [--allow-pickle]"""

import sys

from n2d_spark.cli import submit_main

if __name__ == "__main__":
    sys.exit(submit_main("assign"))
