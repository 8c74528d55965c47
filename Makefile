# Dakiya: `make run` starts everything locally, `make test` runs the whole suite.
.PHONY: run test lint fmt migrate example messages

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
