"""Package marker: tests/unit/models/test_evaluate.py and tests/integration/test_evaluate.py share a
basename, which pytest's default import mode only allows when one of them is in a package."""
