# Dakiya: `make run` starts everything locally, `make test` runs the whole suite.
.PHONY: run test chaos lint fmt migrate example example-cod say fake-shops messages bench-rate bench bench-quick eval-intents

run:
	scripts/setup-venv.sh requirements.txt
	.venv/bin/python scripts/dev.py

test:
	scripts/test.sh

# Fault tests alone (tests/chaos: workers SIGKILLed, Redis and PostgreSQL restarted, provider
# storms); on SQLite, or on PostgreSQL with TEST_DATABASE_URL. `make test` runs them too.
chaos:
	scripts/setup-venv.sh requirements-dev.txt
	.venv/bin/pytest tests/chaos

lint:
	scripts/setup-venv.sh requirements-dev.txt
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/lint-imports  # the layering rule (pyproject.toml [tool.importlinter], README Layout)

fmt:
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

migrate:
	.venv/bin/flask --app wsgi migrate

example:
	.venv/bin/python scripts/post_example.py

# A Shopify cash-on-delivery order (orders/create, signed with SHOPIFY_WEBHOOK_SECRET).
example-cod:
	.venv/bin/python scripts/post_example.py --shopify-cod

# A fake Shopify Admin API on 127.0.0.1:5081 that prints what Dakiya writes back
# (README "Cash on delivery": try the COD round trip with make run).
fake-shops:
	.venv/bin/python -m tests.fakes.shopify_admin

# Write to the local Dakiya as a customer would: make say TEXT="where is my parcel"
# (TAP=OPTOUT:YES taps a button; FROM=<number> writes from another number).
say:
	.venv/bin/python scripts/say.py $(if $(TEXT),"$(TEXT)") $(if $(TAP),--tap "$(TAP)") $(if $(FROM),--from "$(FROM)")

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

# Measure the whole pipeline against issues 8 and 19's targets (docs/BENCHMARKS.md); BENCH_ARGS
# passes options, e.g. `make bench BENCH_ARGS="--db postgres"`. bench-quick: about a minute.
bench:
	.venv/bin/python -m bench.pipeline $(BENCH_ARGS)

bench-quick:
	.venv/bin/python -m bench.pipeline --events 300 --campaign 3000 --naive 100 \
	  --status-messages 300 --combined 1500 --stops 10 --steady-skip 1 --steady-seconds 2 \
	  --naive-timeout 30 --timeout 300 --out bench-results-quick.json $(BENCH_ARGS)

# How well customers are understood, on tests/data/intents (issue 15): precision and
# recall per language and intent, false opt-outs, reply-language accuracy. `-v` lists
# every miss: make eval-intents EVAL_ARGS=-v
eval-intents:
	.venv/bin/python -m tests.intent_eval $(EVAL_ARGS)
