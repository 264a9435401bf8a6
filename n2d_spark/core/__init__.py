"""What every layer shares: the typed config and what its keys mean, column names, errors a user
can fix, label metrics, the filesystem, what a run holds on the cluster (its context and held
resources), the Spark environment it logs, and progress lines."""
