# The README's two commands: `make run` (the default job on the synthetic corpus) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ROWS ?= 5000

.PHONY: run test check-java clean

run: check-java $(VENV)/.installed
	$(BIN)/n2d-spark generate --rows $(ROWS) --dates --output data/synthetic-$(ROWS).csv.gz
	$(BIN)/n2d-spark run --config conf/synthetic.yaml --input data/synthetic-$(ROWS).csv.gz --output out/synthetic \
	  --set input.time_col=date

test: check-java $(VENV)/.installed
	$(BIN)/python -m pytest

# The environment is rebuilt when pyproject.toml changes; nothing is installed by hand.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

check-java:
	@command -v java >/dev/null 2>&1 || [ -x "$$JAVA_HOME/bin/java" ] || { \
	  echo "Spark needs Java 17 or newer and none was found: install it (e.g. 'apt-get install openjdk-17-jre-headless') or set JAVA_HOME." >&2; \
	  exit 1; }

clean:
	rm -rf out data spark-warehouse metastore_db derby.log
