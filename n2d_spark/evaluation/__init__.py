"""Scores beyond the run's labels (baselines, stability, coherence, agreement with a label column)
and the report: plots and one self-contained report.html."""
