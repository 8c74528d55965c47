# Dakiya: `make run` starts everything locally, `make test` runs the whole suite.
.PHONY: run test lint fmt migrate example messages bench-rate bench

run:
	scripts/setup-venv.sh requirements.txt
	.venv/bin/python scripts/dev.py

test:
	scripts/test.sh

lint:
	scripts/setup-venv.sh requirements-dev.txt
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

fmt:
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

migrate:
	.venv/bin/flask --app wsgi migrate

example:
	.venv/bin/python scripts/post_example.py

# Re-extract reply texts, merge them into every catalog, and compile the .mo files
# (see locales/README.md; the app also compiles stale catalogs when it loads them).
messages:
	.venv/bin/pybabel extract -F babel.cfg -k N_ -k translate:2 --no-location \
	  --project=Dakiya --version=0.1.0 --copyright-holder=Dakiya -o locales/messages.pot .
	.venv/bin/pybabel update -i locales/messages.pot -d locales --no-fuzzy-matching
	.venv/bin/pybabel compile -d locales --statistics

# Prove the shared send-rate limiter holds its rate (docs/BENCHMARKS.md); not part of `make test`.
bench-rate:
	.venv/bin/python -m bench.ratelimit

# Measure the whole pipeline (webhook -> RQ -> fake Meta API) as it is (docs/BENCHMARKS.md).
bench:
	.venv/bin/python -m bench.pipeline
