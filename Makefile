# Entry points for people who type make; the scripts do the work.
.PHONY: demo test lint

demo:
	scripts/demo

# make test ARGS="-x -q tests/profiles"
test:
	scripts/test $(ARGS)

lint:
	scripts/lint
