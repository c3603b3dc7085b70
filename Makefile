# Thin wrappers around ./dev.sh, which also works on machines without make.
.PHONY: setup demo test bench gates clean
setup: ; ./dev.sh setup
demo:  ; ./dev.sh demo
test:  ; ./dev.sh test
bench: ; ./dev.sh bench
gates: ; ./dev.sh gates
clean: ; rm -rf .venv .tools demo-run .pytest_cache .test-results
