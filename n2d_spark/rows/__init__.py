"""The stages over DataFrame rows: read, clean and vectorize, reject, sample, embed, assign on
the executors, and the fit on the driver's samples that the job and the estimator share."""
