# Short names for everyday commands; `python3 dev.py` does the real work (see README).
PYTHON := python3
VENV := .venv/bin

.PHONY: install run test lint fmt typecheck migrate demo

install:  ## create .venv with the runtime and development requirements
	$(PYTHON) dev.py install

run:  ## migrate, seed demo data and serve on http://127.0.0.1:8000/ with a worker and beat
	$(PYTHON) dev.py run

test:  ## lint, format check and the test suite (pass ARGS="-k release" to pytest)
	$(PYTHON) dev.py test $(ARGS)

lint: install
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .

fmt: install
	$(VENV)/ruff check --fix .
	$(VENV)/ruff format .

# The django-stubs plugin imports the settings; a URL that is only parsed keeps the embedded
# database from starting just to type-check.
typecheck: install
	DATABASE_URL=$${DATABASE_URL:-postgresql://typecheck@localhost/typecheck} $(VENV)/mypy .

migrate: install
	$(VENV)/python manage.py migrate --noinput

demo: migrate
	$(VENV)/python manage.py seed_demo
